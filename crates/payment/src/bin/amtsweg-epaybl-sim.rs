//! The ePayBL simulator as its own process, for developing against a payment platform that is not this service.
//!
//! `amtsweg-epaybl-sim --port 8090 --secret S` serves the interface under `/`, the Paypage under `/paypage/…`
//! and the switches under `/control` (GET/PUT JSON; `POST /control/release` delivers held notifications).

use actix_web::{App, HttpServer};
use amtsweg_payment::sim::{SimSettings, Simulator};

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    mandant: String,
    bewirtschafter: String,
    secret: String,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 8090,
        mandant: "SIMULATOR".into(),
        bewirtschafter: "00000000".into(),
        secret: std::env::var("AMTSWEG_SIM_SECRET").unwrap_or_default(),
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
            "--help" | "-h" => {
                return Err("usage: amtsweg-epaybl-sim [--host H] [--port P] [--mandant M] [--bewirtschafter B] --secret S (or AMTSWEG_SIM_SECRET)".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
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
    let base = format!("http://{}:{}", args.host, listener.local_addr()?.port());
    let simulator = Simulator::new(
        SimSettings {
            mandant: args.mandant,
            bewirtschafter: args.bewirtschafter,
            secret: args.secret,
            base_path: String::new(),
        },
        &base,
    );
    eprintln!("ePayBL SIMULATOR (no real payments) listening on {base}");
    HttpServer::new(move || {
        let simulator = simulator.clone();
        App::new().configure(move |cfg| simulator.configure(cfg))
    })
    .workers(1)
    .listen(listener)?
    .run()
    .await
}
