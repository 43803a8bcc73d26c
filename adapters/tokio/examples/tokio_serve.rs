//! `framelink serve` on tokio: listens on each address given (default tcp://127.0.0.1:7878),
//! answers the test service (so `framelink ping|bench|info` work against it), prints
//! `Received: <message>` for every other message, and shuts down gracefully at Ctrl-C.
//!
//! ```sh
//! cargo run -p framelink-tokio --example tokio_serve -- tcp://127.0.0.1:7878 udp://127.0.0.1:7878
//! framelink info udp://127.0.0.1:7878
//! ```

use framelink_tokio::{Link, Server, ServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: Vec<String> = std::env::args().skip(1).collect();
    if listen.is_empty() {
        listen.push("tcp://127.0.0.1:7878".to_owned());
    }
    let config = ServerConfig::new().responder("framelink-tokio serve", env!("CARGO_PKG_VERSION"));
    let server = Server::bind(&listen, config).await?;
    for addr in server.local_addrs() {
        eprintln!("listening on {addr}");
    }
    let handle = server.serve(|mut link: Link| async move {
        // Service requests are answered inside `recv_message`; the rest is ours.
        while let Ok(Some(message)) = link.recv_message().await {
            println!("Received: {}", String::from_utf8_lossy(&message));
        }
    });
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping: closing every session");
    handle.shutdown().await;
    Ok(())
}
