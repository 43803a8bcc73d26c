//! Two sessions joined by in-memory byte pipes, through the real framings, with every read cut
//! at a random size: every message arrives once, whole and in order, both ways at once.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::collections::VecDeque;

use framelink_core::Instant;
use framelink_core::framing::{Cobs, CobsDecoder, Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder};
use framelink_core::session::{CloseReason, Config, Event, Session, State};
use framelink_core::wire::MAX_PACKET;

type S = Session<Vec<u8>, 32>;

mod common;

use common::Rng;

/// The message number `i` of a run: its length comes from the generator, its bytes from `i`.
fn message(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

/// One direction of traffic: what to send and what must arrive.
struct Flow {
    lens: Vec<usize>,
    sent: usize,
    received: usize,
}

impl Flow {
    fn new(rng: &mut Rng, count: usize, max: usize) -> Self {
        // Mostly small messages, one in eight up to the maximum.
        let lens = (0..count)
            .map(|_| if rng.below(8) == 0 { rng.below(max as u64 + 1) } else { rng.below(300) } as usize)
            .collect();
        Self { lens, sent: 0, received: 0 }
    }
}

struct End<D> {
    session: S,
    decoder: Box<D>,
    flow: Flow,
    closed: Option<CloseReason>,
}

impl<D: Decoder> End<D> {
    fn send_some(&mut self, now: Instant) {
        while self.flow.sent < self.flow.lens.len() {
            let msg = message(self.flow.sent as u64, self.flow.lens[self.flow.sent]);
            match self.session.send(now, &msg) {
                Ok(()) => self.flow.sent += 1,
                Err(_) => break,
            }
        }
    }

    fn transmit<E: Encoder>(&mut self, now: Instant, pipe: &mut VecDeque<u8>) {
        let mut packet = vec![0u8; MAX_PACKET];
        let mut frame = vec![0u8; E::max_encoded_len(MAX_PACKET)];
        while let Some(len) = self.session.poll_transmit(now, &mut packet).unwrap() {
            let n = E::encode(&packet[..len], &mut frame).unwrap();
            pipe.extend(&frame[..n]);
        }
    }

    fn receive(&mut self, now: Instant, pipe: &mut VecDeque<u8>, rng: &mut Rng, peer_lens: &[usize]) {
        let take = (rng.below(3000) as usize + 1).min(pipe.len());
        let chunk: Vec<u8> = pipe.drain(..take).collect();
        let mut input = &chunk[..];
        while !input.is_empty() {
            let decoded = self.decoder.decode(input);
            input = &input[decoded.consumed..];
            match decoded.frame {
                Some(Ok(repr)) => self.session.handle_packet(now, &repr),
                Some(Err(err)) => panic!("a clean pipe produced {err}"),
                None => {}
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Message(m) => {
                    let i = self.flow.received;
                    assert!(i < peer_lens.len(), "more messages than were sent");
                    assert_eq!(m, &message(i as u64, peer_lens[i])[..], "message {i}");
                    self.flow.received += 1;
                }
                Event::Closed(reason) => self.closed = Some(reason),
                _ => {}
            }
        }
    }
}

fn run<E: Encoder, D: Decoder>(make: fn() -> Box<D>, count: usize, max_message: usize, seed: u64) {
    let mut rng = Rng(seed);
    let t0 = Instant::ZERO;
    let config = Config::new().max_payload(1400).max_message(max_message as u32);
    let buf = || vec![0u8; 2 * max_message + 8];
    let mut client = End {
        session: S::client(config, 42, buf(), buf(), t0),
        decoder: make(),
        flow: Flow::new(&mut rng, count, max_message),
        closed: None,
    };
    let mut server = End {
        session: S::server(config, buf(), buf(), t0),
        decoder: make(),
        flow: Flow::new(&mut rng, count, max_message),
        closed: None,
    };
    let (mut to_server, mut to_client) = (VecDeque::new(), VecDeque::new());
    let mut now = t0;
    for step in 0..2_000_000u64 {
        now = Instant::from_micros(step);
        if client.session.state() == State::Established || server.session.state() == State::Established {
            client.send_some(now);
            server.send_some(now);
        }
        if client.flow.sent == count && server.flow.sent == count {
            client.session.close(now);
        }
        client.transmit::<E>(now, &mut to_server);
        server.transmit::<E>(now, &mut to_client);
        client.receive(now, &mut to_client, &mut rng, &server.flow.lens);
        server.receive(now, &mut to_server, &mut rng, &client.flow.lens);
        if client.closed.is_some() && server.closed.is_some() {
            break;
        }
    }
    assert_eq!(client.closed, Some(CloseReason::Local), "client ended at {now:?}");
    assert_eq!(server.closed, Some(CloseReason::Peer));
    assert_eq!((client.flow.received, server.flow.received), (count, count));
    let stats = server.session.stats();
    assert_eq!(stats.messages_received, count as u64);
    assert_eq!((stats.duplicates, stats.ignored, stats.decode_errors), (0, 0, 0));
}

#[test]
fn ten_thousand_messages_each_way_over_length_delimited() {
    run::<LengthDelimited, _>(|| Box::new(LengthDelimitedDecoder::<MAX_PACKET>::new()), 10_000, 16 * 1024, 1);
}

#[test]
fn two_thousand_messages_each_way_over_cobs() {
    run::<Cobs, _>(|| Box::new(CobsDecoder::<MAX_PACKET>::new()), 2_000, 8 * 1024, 2);
}

#[test]
fn messages_of_256_kib_cross_when_the_buffers_allow_them() {
    run::<LengthDelimited, _>(|| Box::new(LengthDelimitedDecoder::<MAX_PACKET>::new()), 40, 256 * 1024, 3);
}
