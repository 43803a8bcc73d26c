//! COBS over a noisy byte stream on real sockets: a TCP proxy between a `tcp+cobs://` client
//! and server drops, flips and inserts bytes (seeded), as a bad serial line behind a
//! serial-to-TCP bridge would. The COBS decoder resynchronises, the CRC rejects the damage and
//! retransmission repairs it: every message arrives once and in order.

mod common;

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Sender, channel};
use std::thread;

use framelink::std::{Addr, Link, LinkConfig, PeerInfo, Reply, Server, ServerConfig};

use common::noise::{noisy_copy, send_once_in_order};

/// A one-connection proxy on 127.0.0.1 towards `target`.
fn noisy_proxy(target: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else { return };
        let Ok(server) = TcpStream::connect(target) else { return };
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let damaged = AtomicU64::new(0);
        thread::scope(|scope| {
            scope.spawn(|| {
                noisy_copy(&client, &server, 1, &damaged);
                let _ = server.shutdown(Shutdown::Write);
            });
            noisy_copy(&s2, &c2, 2, &damaged);
            let _ = c2.shutdown(Shutdown::Write);
        });
    });
    addr
}

#[test]
fn every_message_crosses_a_noisy_serial_stream_once_and_in_order() {
    let (tx, rx) = channel::<Vec<u8>>();
    let tx = Mutex::new(tx);
    let handler = move |_: &PeerInfo, message: &[u8], _: &mut Reply<'_>| {
        let sender: &Sender<Vec<u8>> = &tx.lock().unwrap();
        let _ = sender.send(message.to_vec());
    };
    let server = Server::bind(&["tcp+cobs://127.0.0.1:0"], ServerConfig::new()).unwrap();
    let server = server.spawn(handler).unwrap();
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    let proxy = noisy_proxy(target);
    let addr: Addr = format!("tcp+cobs://{proxy}").parse().unwrap();
    let mut link = Link::connect_with(&addr, &LinkConfig::new().max_payload(256)).unwrap();
    let messages: Vec<Vec<u8>> =
        (0..300u32).map(|i| (0..(i * 13) % 700).map(|j| (i + j) as u8).collect()).collect();
    send_once_in_order(&mut link, &messages, &rx);
    let stats = link.stats();
    let decoder = link.decoder_stats();
    assert!(stats.retransmits > 0, "the damage cost retransmissions: {stats:?}");
    link.close().unwrap();
    server.shutdown();
    eprintln!(
        "client: {} retransmits, {} decode errors, {} resyncs",
        stats.retransmits, decoder.errors, decoder.resyncs
    );
}
