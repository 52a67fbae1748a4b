//! The HTTP edge: a body that stops arriving is answered 408 without holding its connection, metrics can be kept
//! behind a token or on their own address, and what the HTTP codec itself refuses is pinned down — the README lists
//! those answers, which come without a problem body because the framework writes them before any of our code runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use reqwest::StatusCode;
use secrecy::SecretString;

/// Sends raw bytes and reads until the server closes the connection (or `wait` passes); returns the answer and
/// whether the connection was closed.
fn raw(app: &TestApp, bytes: &[u8], wait: Duration) -> (String, bool) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(wait)).expect("timeout");
    stream.write_all(bytes).expect("send");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

async fn a_body_that_stops_arriving_is_answered_408(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.server.body_idle_timeout_secs = 1)
        .spawn()
        .await
        .unwrap();
    let started = Instant::now();
    let request = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: amtsweg\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email";
    let (answer, closed) = tokio::task::block_in_place(|| raw(&app, request, Duration::from_secs(10)));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(closed, "the connection is closed after a 408");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The timeout is for a pause, not for the whole body: a slow upload that keeps sending gets through.
async fn a_slow_body_that_keeps_coming_is_read(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.server.body_idle_timeout_secs = 1)
        .spawn()
        .await
        .unwrap();
    let body = br#"{"email": "langsam@example.de", "password": "ein falsches passwort"}"#;
    let answer = tokio::task::block_in_place(|| {
        let address = app.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let head = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: amtsweg\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("head");
        for chunk in body.chunks(12) {
            std::thread::sleep(Duration::from_millis(400));
            stream.write_all(chunk).expect("chunk");
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("login_failed"), "{answer}");
}

async fn metrics_can_need_a_token(backend: Backend) {
    let token = "ein-langes-metrik-token";
    let app = TestApp::builder(backend)
        .configure(move |settings| settings.metrics.token = Some(SecretString::from(token)))
        .spawn()
        .await
        .unwrap();
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let wrong = app.get_as("/metrics", "ein-anderes-metrik-token").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app.get_as("/metrics", token).await;
    assert_eq!(right.status(), StatusCode::OK);
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("amtsweg_http_requests_total")
    );
}

async fn metrics_can_have_their_own_address(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.metrics.listen = Some("127.0.0.1:0".into()))
        .spawn()
        .await
        .unwrap();
    let port = app.metrics_port.expect("a metrics listener");
    let main = app.get("/metrics").await;
    assert_eq!(main.status(), StatusCode::NOT_FOUND, "not on the main address");
    let metrics = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let api = app
        .client
        .get(format!("http://127.0.0.1:{port}/api/v1/procedures"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        StatusCode::NOT_FOUND,
        "the API is not served on the metrics address"
    );
    assert_eq!(app.get("/api/v1/procedures").await.status(), StatusCode::OK);
}

/// What the HTTP codec refuses before routing: a bare status, no body, the connection closed. Listed in the README;
/// if an upgrade of the framework changes it, this test says so.
async fn codec_rejections_are_bare_and_close_the_connection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut big_header = b"GET /health/live HTTP/1.1\r\nHost: amtsweg\r\nX-Big: ".to_vec();
    big_header.extend(std::iter::repeat_n(b'a', 200_000));
    big_header.extend_from_slice(b"\r\n\r\n");
    let mut many_headers = b"GET /health/live HTTP/1.1\r\nHost: amtsweg\r\n".to_vec();
    for i in 0..120 {
        many_headers.extend_from_slice(format!("X-H{i}: a\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("header section over 128 KiB", big_header, "HTTP/1.1 431"),
        ("more than 96 headers", many_headers, "HTTP/1.1 431"),
        (
            "a header line without a colon",
            b"GET /health/live HTTP/1.1\r\nHost: amtsweg\r\nBad Header\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "raw bytes that are not UTF-8 in the path",
            b"GET /api/v1/procedures/\xff\xfe HTTP/1.1\r\nHost: amtsweg\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            "a Content-Length that is not a number",
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: amtsweg\r\nContent-Length: abc\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
    ];
    for (case, bytes, status) in cases {
        let (answer, closed) = tokio::task::block_in_place(|| raw(&app, &bytes, Duration::from_secs(5)));
        assert!(answer.starts_with(status), "{case}: {answer}");
        assert!(answer.contains("content-length: 0"), "{case}: {answer}");
        assert!(closed, "{case}: the connection is closed");
    }
    // Percent-encoded bytes that are not UTF-8 reach the routes and get the usual problem.
    let encoded = app.get("/api/v1/procedures/%FF%FE").await;
    assert_eq!(encoded.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        encoded.headers()["content-type"],
        "application/problem+json; charset=utf-8"
    );
}

backend_tests!(
    a_body_that_stops_arriving_is_answered_408,
    a_slow_body_that_keeps_coming_is_read,
    metrics_can_need_a_token,
    metrics_can_have_their_own_address,
    codec_rejections_are_bare_and_close_the_connection,
);
