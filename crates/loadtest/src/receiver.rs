//! A webhook receiver: answers every POST with 204 and counts the deliveries by their `webhook-id`, so that the
//! report can say whether every event arrived, and how many arrived more than once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Deliveries {
    by_id: Mutex<HashMap<String, u32>>,
}

impl Deliveries {
    /// (distinct deliveries, deliveries received more than once)
    pub fn counts(&self) -> (usize, usize) {
        let by_id = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        (by_id.len(), by_id.values().filter(|n| **n > 1).count())
    }
}

/// Starts the receiver on a free loopback port; answers its URL and the counter.
pub async fn start() -> anyhow::Result<(String, Arc<Deliveries>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let deliveries = Arc::new(Deliveries::default());
    let counter = deliveries.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                // One request after the other on a kept-alive connection.
                loop {
                    let mut length = 0usize;
                    let mut id = None;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        match reader.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let trimmed = line.trim_end();
                        if trimmed.is_empty() && !first {
                            break;
                        }
                        first = false;
                        if let Some((name, value)) = trimmed.split_once(':') {
                            match name.trim().to_ascii_lowercase().as_str() {
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                "webhook-id" => id = Some(value.trim().to_owned()),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    if let Some(id) = id {
                        *counter
                            .by_id
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(id)
                            .or_default() += 1;
                    }
                    if write
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, deliveries))
}
