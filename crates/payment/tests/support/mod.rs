//! The simulator binary as the connector tests start it, and the booking line they pay.

use std::ffi::OsStr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amtsweg_catalogue::domain::Booking;
use amtsweg_payment::model::BookingLine;

/// A running `amtsweg-epaybl-sim` (mandant `LEIPZIG`, Bewirtschafter `12345678`), stopped when dropped.
pub struct Sim {
    child: Child,
    pub port: u16,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the simulator on a free port with the notification `secret` and `extra` arguments (TLS files, say).
pub fn start_simulator<S: AsRef<OsStr>>(secret: &str, extra: &[S]) -> Sim {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_amtsweg-epaybl-sim"))
        .args([
            "--port",
            &port.to_string(),
            "--mandant",
            "LEIPZIG",
            "--bewirtschafter",
            "12345678",
        ])
        .args(extra)
        .env("AMTSWEG_SIM_SECRET", secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the simulator starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the simulator listens"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Sim { child, port }
}

/// A booking line of the resident parking permit.
pub fn booking(amount_cents: i64) -> BookingLine {
    BookingLine {
        amount_cents,
        booking: Booking {
            haushaltsstelle: "1.2.2.1.01".into(),
            objektnummer: "12210000".into(),
            buchungstext: "BEWOHNERPARKAUSWEIS".into(),
        },
    }
}
