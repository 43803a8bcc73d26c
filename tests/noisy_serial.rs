//! A noisy serial line made of ptys: a [`Server`] on one socat pair, a [`Link`] on another, and
//! a relay in this test between the two inner ends that drops, corrupts and inserts bytes
//! (seeded). The COBS decoder resynchronises, the CRC rejects the damage, retransmission repairs
//! it: every message arrives once and in order, and the responder's STATS counts the CRC errors
//! and the resynchronisations.
//!
//! Skipped, saying so, without socat, unless `FRAMELINK_REQUIRE_SERIAL` is set (CI).

mod common;

use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use framelink::core::service::ServiceMessage;
use framelink::std::{Addr, Link, LinkEvent, PeerInfo, Reply, Server, ServerConfig};

use common::noise::{noisy_copy, send_once_in_order};
use common::socat::{self, PtyPair, TempDir};

/// xorshift64*: seeded, the same damage for the same bytes.
fn open(path: &std::path::Path) -> File {
    OpenOptions::new().read(true).write(true).open(path).expect("open a pty")
}

#[test]
fn every_message_crosses_a_noisy_serial_line_once_and_in_order() {
    if !socat::available("every_message_crosses_a_noisy_serial_line_once_and_in_order") {
        return;
    }
    let dir = TempDir::new("noisy-serial");
    let (server_side, client_side) = (PtyPair::new(&dir.0, "server"), PtyPair::new(&dir.0, "client"));

    // The relay: server_side.b <-> client_side.a, damaging both ways.
    let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (near, far) = (open(&client_side.a), open(&server_side.b));
    let (near2, far2) = (near.try_clone().unwrap(), far.try_clone().unwrap());
    let (up2, down2) = (Arc::clone(&up), Arc::clone(&down));
    thread::spawn(move || noisy_copy(near, far, 1, &up2));
    thread::spawn(move || noisy_copy(far2, near2, 2, &down2));

    let (tx, rx) = channel::<Vec<u8>>();
    let tx = Mutex::new(tx);
    let handler = move |_: &PeerInfo, message: &[u8], _: &mut Reply<'_>| {
        let _ = tx.lock().unwrap().send(message.to_vec());
    };
    let listen: Addr = server_side.addr_a().parse().unwrap();
    let config = ServerConfig::new().responder("noisy line", "0");
    let server = Server::bind(&[listen], config).unwrap().spawn(handler).unwrap();

    let addr: Addr = client_side.addr_b().parse().unwrap();
    let mut link = Link::connect(&addr).unwrap();
    // No byte 0xFA: a message that starts with it is a request to the responder.
    let messages: Vec<Vec<u8>> =
        (0..300u32).map(|i| (0..(i * 13) % 700).map(|j| ((i + j) % 250) as u8).collect()).collect();
    send_once_in_order(&mut link, &messages, &rx);
    let retransmits = link.stats().retransmits;
    assert!(retransmits > 0, "the damage cost retransmissions: {:?}", link.stats());

    // The responder's STATS: what its decoder saw of the damage on the way up.
    let mut request = [0u8; 8];
    let len = ServiceMessage::Stats.emit(&mut request).unwrap();
    link.send(&request[..len]).unwrap();
    let stats = loop {
        match link.next_event(Some(Duration::from_secs(30))).unwrap() {
            Some(LinkEvent::Message(reply)) => {
                if let Ok(Some(ServiceMessage::StatsReply(stats))) = ServiceMessage::parse(&reply) {
                    break stats;
                }
            }
            Some(_) => {}
            None => panic!("no STATS reply"),
        }
    };
    let damaged = up.load(Ordering::Relaxed);
    assert!(stats.crc_errors > 0 && stats.resyncs > 0, "{stats:?}");
    assert!(stats.decode_errors >= stats.crc_errors, "{stats:?}");
    // Each damaged byte spoils at most two frames (a 0x00 inserted or made splits one).
    assert!(stats.resyncs <= 2 * damaged, "{} resyncs for {damaged} damaged bytes", stats.resyncs);
    link.close().unwrap();
    server.shutdown();
    eprintln!(
        "damaged bytes: {damaged} up, {} down; server: {} CRC errors, {} resyncs; client: {} retransmits",
        down.load(Ordering::Relaxed),
        stats.crc_errors,
        stats.resyncs,
        retransmits
    );
}
