//! COBS over a noisy byte stream (a serial line): bytes dropped, flipped and inserted. The COBS
//! decoder resynchronises at the next delimiter, the CRC rejects what was damaged, and
//! retransmission repairs the loss: every message arrives once and in order.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::collections::VecDeque;

use framelink_core::Instant;
use framelink_core::connection::Connection;
use framelink_core::framing::CobsDecoder;
use framelink_core::session::{CloseReason, Config, Event, Session, State};

type Serial = Connection<CobsDecoder<600>, Vec<u8>>;

mod common;

use common::Rng;

/// A byte pipe with a 2 ms latency that damages bytes as they pass.
struct NoisyLine {
    bytes: VecDeque<(u64, u8)>,
    dropped: u64,
    flipped: u64,
    inserted: u64,
}

impl NoisyLine {
    fn new() -> Self {
        Self { bytes: VecDeque::new(), dropped: 0, flipped: 0, inserted: 0 }
    }

    fn send(&mut self, rng: &mut Rng, now: u64, data: &[u8]) {
        for &byte in data {
            if rng.one_in(2000) {
                self.dropped += 1;
                continue;
            }
            let mut byte = byte;
            if rng.one_in(2000) {
                byte ^= 1 << (rng.next() % 8);
                self.flipped += 1;
            }
            if rng.one_in(4000) {
                self.bytes.push_back((now + 2000, rng.next() as u8));
                self.inserted += 1;
            }
            self.bytes.push_back((now + 2000, byte));
        }
    }

    fn receive(&mut self, now: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while self.bytes.front().is_some_and(|&(at, _)| at <= now) {
            out.push(self.bytes.pop_front().unwrap().1);
        }
        out
    }
}

fn message(i: usize) -> Vec<u8> {
    (0..(i * 37) % 900).map(|j| (i + j) as u8).collect()
}

#[test]
fn every_message_crosses_a_line_that_drops_flips_and_inserts_bytes() {
    let config = Config::new().retransmit(true).max_payload(256);
    cross_a_noisy_line(config, 4096);
}

#[test]
fn growable_buffers_that_start_empty_do_the_same() {
    let config =
        Config::new().retransmit(true).max_payload(256).max_send_buffer(4096).max_receive_buffer(4096);
    cross_a_noisy_line(config, 0);
}

/// 400 messages cross the noisy line, client to server, over session buffers that start with
/// `initial` bytes (and grow if `config` lets them).
fn cross_a_noisy_line(config: Config, initial: usize) {
    let mut rng = Rng(0x5EED);
    let buf = || vec![0u8; 4096];
    let storage = || vec![0u8; initial];
    let t0 = Instant::ZERO;
    let mut client =
        Serial::new(Session::client(config, 77, storage(), storage(), t0), CobsDecoder::new(), buf());
    let mut server =
        Serial::new(Session::server(config, storage(), storage(), t0), CobsDecoder::new(), buf());
    let (mut up, mut down) = (NoisyLine::new(), NoisyLine::new());
    let count = 400;
    let (mut sent, mut received) = (0, 0);
    let mut closed = (None, None);
    let mut wire = vec![0u8; 8192];
    for step in 0..3_000_000u64 {
        let now_us = step * 100; // 100 us per step: 300 virtual seconds at most
        let now = Instant::from_micros(now_us);
        client.handle_bytes(now, &down.receive(now_us));
        server.handle_bytes(now, &up.receive(now_us));
        for side in [&mut client, &mut server] {
            if side.session().poll_timeout().is_some_and(|t| t <= now) {
                side.session_mut().handle_timeout(now);
            }
        }
        if client.session().state() == State::Established {
            while sent < count && client.session_mut().send(now, &message(sent)).is_ok() {
                sent += 1;
            }
            if sent == count {
                client.session_mut().close(now);
            }
        }
        let n = client.poll_transmit(now, &mut wire).unwrap();
        up.send(&mut rng, now_us, &wire[..n]);
        let n = server.poll_transmit(now, &mut wire).unwrap();
        down.send(&mut rng, now_us, &wire[..n]);
        while let Some(event) = server.session_mut().poll_event() {
            match event {
                Event::Message(m) => {
                    assert_eq!(m, &message(received)[..], "message {received}");
                    received += 1;
                }
                Event::Closed(reason) => closed.1 = Some(reason),
                _ => {}
            }
        }
        while let Some(event) = client.session_mut().poll_event() {
            if let Event::Closed(reason) = event {
                closed.0 = Some(reason);
            }
        }
        if closed.0.is_some() && closed.1.is_some() {
            break;
        }
    }
    assert_eq!(received, count);
    for side in [&client, &server] {
        let session = side.session();
        assert_eq!((session.send_buffer_capacity(), session.receive_buffer_capacity()), (4096, 4096));
    }
    assert_eq!(closed, (Some(CloseReason::Local), Some(CloseReason::Peer)));
    assert!(up.dropped + up.flipped + up.inserted > 20, "the line was noisy");
    let decoder = server.decoder_stats();
    assert!(decoder.crc_errors + decoder.errors > 0 && decoder.resyncs > 0, "{decoder:?}");
    assert!(decoder.dropped_bytes > 0);
    assert!(client.session().stats().retransmits > 0);
    assert_eq!(server.session().stats().crc_errors, decoder.crc_errors);
}
