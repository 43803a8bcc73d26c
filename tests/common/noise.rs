//! A noisy byte stream, as a serial line is: a copy that drops, flips and inserts bytes (seeded),
//! and the check that every message still crosses once and in order.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use framelink::std::Link;

/// xorshift64*: small, seeded, good enough to place the damage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Copies `from` to `to` until either ends, damaging about one byte in 700 (dropped, a bit
/// flipped, or a stray byte inserted before it) and counting the damaged bytes in `damaged`.
pub(crate) fn noisy_copy(mut from: impl Read, mut to: impl Write, seed: u64, damaged: &AtomicU64) {
    let mut rng = Rng(seed);
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(8192);
    while let Ok(n @ 1..) = from.read(&mut buf) {
        out.clear();
        for &byte in &buf[..n] {
            match rng.next() % 2100 {
                0 => {}
                1 => out.push(byte ^ (1 << (rng.next() % 8))),
                2 => out.extend([rng.next() as u8, byte]),
                _ => {
                    out.push(byte);
                    continue;
                }
            }
            damaged.fetch_add(1, Ordering::Relaxed);
        }
        if to.write_all(&out).is_err() {
            return;
        }
    }
}

/// Sends every message over `link` and checks that the server's handler (which forwards each
/// message it gets to `received`) saw each once and in order.
pub(crate) fn send_once_in_order(link: &mut Link, messages: &[Vec<u8>], received: &Receiver<Vec<u8>>) {
    for message in messages {
        link.send(message).unwrap();
    }
    link.flush(Some(Duration::from_secs(60))).unwrap();
    for (i, expected) in messages.iter().enumerate() {
        let got =
            received.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("message {i} missing"));
        assert_eq!(&got, expected, "message {i}");
    }
    assert!(received.recv_timeout(Duration::from_millis(200)).is_err(), "a message arrived twice");
}
