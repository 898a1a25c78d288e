//! A small load client for comparing plain and TLS WebSocket viewers
//! (`docs/performance.md`, "HTTPS"): opens N viewers of one stream over `ws://` or `wss://`,
//! reads every message for the given time and prints what arrived. The gateway's CPU is
//! measured from outside (`/proc/PID/stat`); this tool only makes the load.
//!
//! ```sh
//! cargo run --release -p camgate --example wss_viewers -- URL VIEWERS SECONDS [CA.pem]
//! ```
//!
//! With `wss://`, `CA.pem` is the certificate (or local CA) to trust, checked against the
//! URL's host as a browser would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: wss_viewers URL VIEWERS SECONDS [CA.pem]");
        std::process::exit(2);
    }
    let url = args[1].clone();
    let viewers: usize = args[2].parse().expect("VIEWERS is a number");
    let seconds: u64 = args[3].parse().expect("SECONDS is a number");
    let connector = args.get(4).map(|ca| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a usable CA");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    });
    let uri: http::Uri = url.parse().expect("a URL");
    let host = uri
        .host()
        .expect("a host")
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().expect("a port");
    let bytes = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..viewers {
        let (url, host, connector) = (url.clone(), host.clone(), connector.clone());
        let (bytes, frames) = (Arc::clone(&bytes), Arc::clone(&frames));
        tasks.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .expect("connects");
            tcp.set_nodelay(true).expect("nodelay");
            let count = |message: Message| {
                if let Message::Binary(data) = message {
                    bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    frames.fetch_add(1, Ordering::Relaxed);
                }
            };
            match connector {
                Some(connector) => {
                    let name = ServerName::try_from(host).expect("a server name");
                    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
                    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
                        .await
                        .expect("wss");
                    while let Some(Ok(message)) = ws.next().await {
                        count(message);
                    }
                }
                None => {
                    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.expect("ws");
                    while let Some(Ok(message)) = ws.next().await {
                        count(message);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (mb, n) = (
        bytes.load(Ordering::Relaxed) as f64 / 1e6,
        frames.load(Ordering::Relaxed),
    );
    println!(
        "viewers={viewers} seconds={seconds} frames={n} fps_per_viewer={:.2} MB={mb:.1} MB/s={:.1}",
        n as f64 / viewers as f64 / seconds as f64,
        mb / seconds as f64
    );
    for task in tasks {
        task.abort();
    }
}
