//! Both connectors over mutual TLS against the simulator binary, with a CA, a server certificate and client
//! certificates generated for the test: with the configured client certificate a payment is created, paid and read
//! back as paid (ePayBL and XBezahldienste); without one, or with one of another CA, the platform is not reached.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};

use amtsweg_payment::epaybl::{Epaybl, EpayblSettings};
use amtsweg_payment::model::Observed;
use amtsweg_payment::provider::{Order, Provider, ProviderError, Reference, Urls};
use amtsweg_payment::xbezahldienste::{Xbezahldienste, XbezahldiensteSettings};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use support::{booking, start_simulator};

mod support;

/// A CA that issues certificates into `dir`.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Issues a certificate for `names`; writes `{stem}.pem` and `{stem}.key` and answers their paths.
    fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// A client that presents `identity` and trusts `ca` (the simulator serves its Paypage on the same listener).
fn browser((certificate, key): &(PathBuf, PathBuf), ca: &Path) -> reqwest::Client {
    let mut pem = std::fs::read(certificate).unwrap();
    pem.push(b'\n');
    pem.extend(std::fs::read(key).unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .build()
        .unwrap()
}

fn connector(port: u16, ca: &Path, client: Option<(PathBuf, PathBuf)>) -> Epaybl {
    let (client_certificate, client_key) = match client {
        Some((cert, key)) => (Some(cert), Some(key)),
        None => (None, None),
    };
    Epaybl::new(EpayblSettings {
        base_url: format!("https://localhost:{port}"),
        mandant: "LEIPZIG".into(),
        bewirtschafter: "12345678".into(),
        secret: "geheim".to_owned().into(),
        kennzeichen_mahnverfahren: "11000".into(),
        zahlverfahrencodes: Vec::new(),
        kassenzeichen_len: 12,
        client_certificate,
        client_key,
        ca_certificate: Some(ca.to_owned()),
    })
    .expect("connector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_client_certificate_reaches_the_platform() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("Testwurzel ePayBL");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.pem).unwrap();
    let (server_cert, server_key) = ca.issue(dir.path(), "server", &["localhost", "127.0.0.1"]);
    let client = ca.issue(dir.path(), "client", &["amtsweg.leipzig.example"]);
    let stranger_ca = Ca::new("Fremde Wurzel");
    let stranger = stranger_ca.issue(dir.path(), "stranger", &["fremd.example"]);

    let args = [
        "--tls-cert".as_ref(),
        server_cert.as_os_str(),
        "--tls-key".as_ref(),
        server_key.as_os_str(),
        "--client-ca".as_ref(),
        ca_path.as_os_str(),
    ];
    let sim = start_simulator::<&std::ffi::OsStr>("geheim", &args);
    let port = sim.port;

    let bookings = [booking(3070)];
    let order = Order {
        transaction_number: "AW0000000000000000000000000003",
        kassenzeichen: None,
        amount_cents: 3070,
        purpose: "2026-000001",
        description: "Bewohnerparkausweis",
        bookings: &bookings,
        due_on: "2026-12-15",
        urls: Urls {
            notify: "https://127.0.0.1:9/notify".into(),
            success: "https://127.0.0.1:9/ok".into(),
            error: "https://127.0.0.1:9/error".into(),
            cancel: "https://127.0.0.1:9/cancel".into(),
        },
    };
    let created = connector(port, &ca_path, Some(client.clone()))
        .create(&order)
        .await
        .expect("over mutual TLS");
    assert!(
        created
            .paypage_url
            .starts_with(&format!("https://127.0.0.1:{port}/paypage/"))
    );

    // The happy path over mutual TLS: paid on the Paypage, read back as paid.
    let reference = Reference {
        transaction_number: order.transaction_number,
        kassenzeichen: Some(&created.kassenzeichen),
        provider_ref: None,
        amount_cents: 3070,
    };
    let epaybl = connector(port, &ca_path, Some(client.clone()));
    assert_eq!(epaybl.status(reference).await.unwrap(), Observed::Open);
    let browser = browser(&client, &ca_path);
    let paid = browser
        .post(&created.paypage_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(
        epaybl.status(reference).await.unwrap(),
        Observed::Paid { amount_cents: 3070 }
    );

    // XBezahldienste over the same mutual TLS.
    let xbezahl = Xbezahldienste::new(XbezahldiensteSettings {
        base_url: format!("https://localhost:{port}"),
        originator_id: "LEIPZIG".into(),
        endpoint_id: "12345678".into(),
        kassenzeichen_len: 12,
        client_certificate: Some(client.0.clone()),
        client_key: Some(client.1.clone()),
        ca_certificate: Some(ca_path.clone()),
    })
    .unwrap();
    let x_order = Order {
        transaction_number: "AW0000000000000000000000000004",
        ..order.clone()
    };
    let x_created = xbezahl.create(&x_order).await.expect("over mutual TLS");
    let x_reference = Reference {
        transaction_number: x_order.transaction_number,
        kassenzeichen: Some(&x_created.kassenzeichen),
        provider_ref: x_created.provider_ref.as_deref(),
        amount_cents: 3070,
    };
    assert_eq!(xbezahl.status(x_reference).await.unwrap(), Observed::Open);
    let paid = browser
        .post(&x_created.paypage_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(
        xbezahl.status(x_reference).await.unwrap(),
        Observed::Paid { amount_cents: 3070 }
    );

    for (who, certificate) in [("no client certificate", None), ("another CA's", Some(stranger))] {
        let refused = connector(port, &ca_path, certificate).create(&order).await;
        assert!(
            matches!(refused, Err(ProviderError::Unavailable(_))),
            "{who}: {refused:?}"
        );
    }
}
