//! The ePayBL simulator as its own process, for developing against a payment platform that is not this service.
//!
//! `amtsweg-epaybl-sim --port 8090 --secret S` serves the interface under `/`, the Paypage under `/paypage/…`
//! and the switches under `/control` (GET/PUT JSON; `POST /control/release` delivers held notifications).
//! With `--tls-cert FILE --tls-key FILE` it speaks HTTPS; with `--client-ca FILE` as well it requires a client
//! certificate issued by that CA (mutual TLS, as ePayBL does).

use actix_web::{App, HttpServer};
use amtsweg_payment::sim::{SimSettings, Simulator};

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    mandant: String,
    bewirtschafter: String,
    secret: String,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    client_ca: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 8090,
        mandant: "SIMULATOR".into(),
        bewirtschafter: "00000000".into(),
        secret: std::env::var("AMTSWEG_SIM_SECRET").unwrap_or_default(),
        tls_cert: None,
        tls_key: None,
        client_ca: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => args.port = value()?.parse().map_err(|_| "--port needs a number".to_owned())?,
            "--mandant" => args.mandant = value()?,
            "--bewirtschafter" => args.bewirtschafter = value()?,
            "--secret" => args.secret = value()?,
            "--tls-cert" => args.tls_cert = Some(value()?),
            "--tls-key" => args.tls_key = Some(value()?),
            "--client-ca" => args.client_ca = Some(value()?),
            "--help" | "-h" => {
                return Err("usage: amtsweg-epaybl-sim [--host H] [--port P] [--mandant M] [--bewirtschafter B] --secret S (or AMTSWEG_SIM_SECRET)".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some()
        || (args.client_ca.is_some() && args.tls_cert.is_none())
    {
        return Err("--tls-cert and --tls-key go together; --client-ca needs them".into());
    }
    if args.secret.is_empty() {
        return Err("--secret (or AMTSWEG_SIM_SECRET) is needed: it signs the notifications".into());
    }
    Ok(args)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let listener = std::net::TcpListener::bind((args.host.as_str(), args.port))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match server_config(cert, key, args.client_ca.as_deref()) {
            Ok(config) => Some(config),
            Err(message) => {
                eprintln!("{message}");
                std::process::exit(2);
            }
        },
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}:{}", args.host, listener.local_addr()?.port());
    let simulator = Simulator::new(
        SimSettings {
            mandant: args.mandant.clone(),
            bewirtschafter: args.bewirtschafter.clone(),
            secret: args.secret,
            base_path: String::new(),
            originator_id: args.mandant.clone(),
            endpoint_id: args.bewirtschafter.clone(),
        },
        &base,
    );
    eprintln!("ePayBL SIMULATOR (no real payments) listening on {base}");
    let server = HttpServer::new(move || {
        let simulator = simulator.clone();
        App::new().configure(move |cfg| simulator.configure(cfg))
    })
    .workers(1);
    match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?.run().await,
        None => server.listen(listener)?.run().await,
    }
}

/// The TLS configuration: the server's certificate and key, and — with a client CA — mutual TLS.
fn server_config(cert: &str, key: &str, client_ca: Option<&str>) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|err| format!("{cert}: {err}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|err| format!("{key}: {err}"))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|err| format!("{ca}: {err}"))? {
                roots
                    .add(cert.map_err(|err| format!("{ca}: {err}"))?)
                    .map_err(|err| format!("{ca}: {err}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(std::sync::Arc::new(roots))
                .build()
                .map_err(|err| format!("client CA: {err}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|err| format!("certificate: {err}"))
}
