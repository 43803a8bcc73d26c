//! A tokio server and a client in one program: the server prints `Received: <message>` and
//! echoes it; the client sends a few messages, reads the echoes, pings, and closes; then the
//! server shuts down gracefully.
//!
//! ```sh
//! cargo run -p framelink-tokio --example tokio_echo                    # tcp://127.0.0.1:0
//! cargo run -p framelink-tokio --example tokio_echo -- udp://127.0.0.1:0
//! ```

use framelink_tokio::{Link, LinkEvent, Server, ServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "tcp://127.0.0.1:0".to_owned());
    let config =
        ServerConfig::new().max_clients(16).responder("framelink-tokio echo", env!("CARGO_PKG_VERSION"));
    let server = Server::bind(&[listen], config).await?;
    let addr = server.local_addrs()[0].clone();
    eprintln!("listening on {addr}");

    // One task per client: print each message and send it back.
    let handle = server.serve(|mut link: Link| async move {
        eprintln!("connected: {}", link.peer_addr());
        loop {
            match link.recv_message().await {
                Ok(Some(message)) => {
                    println!("Received: {}", String::from_utf8_lossy(&message));
                    if let Err(error) = link.send(&message).await {
                        eprintln!("disconnected: {error}");
                        return;
                    }
                }
                Ok(None) => return eprintln!("disconnected: closed"),
                Err(error) => return eprintln!("disconnected: {error}"),
            }
        }
    });

    let mut link = Link::connect(&addr).await?;
    for text in ["Hello, Server!", "a second message", "and a third"] {
        link.send(text.as_bytes()).await?;
    }
    for _ in 0..3 {
        if let LinkEvent::Message(echo) = link.recv().await? {
            println!("echoed: {}", String::from_utf8_lossy(&echo));
        }
    }
    let token = link.ping(0).await?;
    if let LinkEvent::Pong { token: answered, rtt } = link.recv().await?
        && answered == token
    {
        println!("round trip: {rtt:?}");
    }
    link.close().await?;
    handle.shutdown().await;
    Ok(())
}
