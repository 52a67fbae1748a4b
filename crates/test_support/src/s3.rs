//! A real S3-compatible server for tests: moto in server mode (PyPI `moto[server]`), installed on first use.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub fn start() -> S3Server {
        crate::tools::ensure_moto();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("address")
            .port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (the S3 tests need `pip install moto[server]`)");
        let server = S3Server { port, child };
        let started = Instant::now();
        while server.request("GET", "/", "").is_none() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket; answers its name.
    pub fn bucket(&self, name: &str) -> String {
        let status = self.request("PUT", &format!("/{name}"), "");
        assert_eq!(status, Some(200), "creating bucket {name}");
        name.to_owned()
    }

    /// Whether the object is there, asked by listing its key (moto refuses unsigned HEAD requests).
    pub fn object_exists(&self, bucket: &str, key: &str) -> bool {
        self.listing(bucket).contains(&format!("<Key>{key}</Key>"))
    }

    /// The keys in a bucket (moto's XML answer, for messages).
    pub fn listing(&self, bucket: &str) -> String {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "GET /{bucket}?list-type=2 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        let _ = stream.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    /// A plain HTTP request (moto does not check signatures); answers the status.
    fn request(&self, method: &str, path: &str, body: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut head = [0u8; 64];
        let read = stream.read(&mut head).ok()?;
        let text = String::from_utf8_lossy(&head[..read]);
        text.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
