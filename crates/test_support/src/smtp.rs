//! A real SMTP server for tests: aiosmtpd (PyPI) storing every message in a Maildir that tests read.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;

pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

/// A received message, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
}

impl Mail {
    /// A message as received (RFC 5322); `None` when it cannot be read or names no recipient.
    pub fn parse(raw: &[u8]) -> Option<Mail> {
        let message = MessageParser::default().parse(raw)?;
        Some(Mail {
            to: message.to()?.first()?.address()?.to_owned(),
            subject: message.subject().unwrap_or_default().to_owned(),
            body: message.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
            message_id: message.message_id().map(str::to_owned),
        })
    }

    /// The first `token=…` value of a link in the body.
    pub fn token(&self) -> String {
        let start = self.body.find("token=").expect("a link with a token") + "token=".len();
        self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address")
        .port()
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(free_port())
    }

    /// On a given port, e.g. one the service was configured with while nothing listened there.
    pub fn start_on(port: u16) -> SmtpServer {
        crate::tools::ensure_aiosmtpd();
        let maildir = tempfile::tempdir().expect("maildir");
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("box"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (the SMTP tests need `pip install aiosmtpd`)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "aiosmtpd did not start; is it installed (pip install aiosmtpd)?"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { port, maildir, child }
    }

    fn files(&self) -> Vec<PathBuf> {
        let new = self.maildir.path().join("box").join("new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(new)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| {
                        (
                            e.metadata()
                                .and_then(|m| m.modified())
                                .unwrap_or(std::time::UNIX_EPOCH),
                            e.path(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.into_iter().map(|(_, path)| path).collect()
    }

    /// Every message received so far, oldest first.
    pub fn all(&self) -> Vec<Mail> {
        self.files()
            .into_iter()
            .filter_map(|path| {
                let raw = std::fs::read(path).ok()?;
                Mail::parse(&raw)
            })
            .collect()
    }

    /// Messages to `address` (case-insensitive).
    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.all()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(address))
            .collect()
    }

    /// Waits until `address` has received `count` messages and returns them.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let mails = self.to(address);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{address} received {} of {count} mails: {mails:#?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
