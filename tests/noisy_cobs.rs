//! COBS over a noisy byte stream on real sockets: a TCP proxy between a `tcp+cobs://` client
//! and server drops, flips and inserts bytes (seeded), as a bad serial line behind a
//! serial-to-TCP bridge would. The COBS decoder resynchronises, the CRC rejects the damage and
//! retransmission repairs it: every message arrives once and in order.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::thread;
use std::time::Duration;

use framelink::std::{Addr, Link, LinkConfig, PeerInfo, Reply, Server, ServerConfig};

/// xorshift64*: seeded, the same damage on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Copies `from` to `to`, damaging one byte in about 700: dropped, flipped or a stray byte
/// inserted. Returns when either side closes.
fn noisy_copy(mut from: TcpStream, mut to: TcpStream, seed: u64) {
    let mut rng = Rng(seed);
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(8192);
    while let Ok(n @ 1..) = from.read(&mut buf) {
        out.clear();
        for &byte in &buf[..n] {
            match rng.next() % 2100 {
                0 => continue,
                1 => out.push(byte ^ (1 << (rng.next() % 8))),
                2 => out.extend([rng.next() as u8, byte]),
                _ => out.push(byte),
            }
        }
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A one-connection proxy on 127.0.0.1 towards `target`.
fn noisy_proxy(target: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else { return };
        let Ok(server) = TcpStream::connect(target) else { return };
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let up = thread::spawn(move || noisy_copy(client, server, 1));
        noisy_copy(s2, c2, 2);
        let _ = up.join();
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
    let server = Server::bind(&["tcp+cobs://127.0.0.1:0".parse().unwrap()], ServerConfig::new()).unwrap();
    let server = server.spawn(handler).unwrap();
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    let proxy = noisy_proxy(target);
    let addr: Addr = format!("tcp+cobs://{proxy}").parse().unwrap();
    let mut link = Link::connect(&addr, &LinkConfig::new().max_payload(256)).unwrap();
    let messages: Vec<Vec<u8>> =
        (0..300u32).map(|i| (0..(i * 13) % 700).map(|j| (i + j) as u8).collect()).collect();
    for message in &messages {
        link.send(message).unwrap();
    }
    link.flush(Some(Duration::from_secs(60))).unwrap();
    for (i, expected) in messages.iter().enumerate() {
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("message {i} missing"));
        assert_eq!(&got, expected, "message {i}");
    }
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "a message arrived twice");
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
