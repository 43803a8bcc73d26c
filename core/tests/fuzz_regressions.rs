//! Regressions found by the fuzz targets in `fuzz/` (see `fuzz/README.md`), replayed through the
//! public API on a small deterministic link.
//!
//! Each test names the target and the invariant that caught the bug. A test for a bug not fixed
//! yet is `#[ignore]`d with the reason; run those with `cargo test -p framelink-core --test
//! fuzz_regressions -- --ignored`, and drop the `ignore` with the fix.

// Test binaries built with `defmt` need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::collections::VecDeque;
use std::time::Duration;

use framelink_core::Instant;
use framelink_core::session::{CloseReason, Config, Event, Session, State};
use framelink_core::wire::{PacketType, Repr};

type S = Session<Vec<u8>, 16>;

/// Two sessions joined by a perfect link: every packet arrives, in order, `latency` after it
/// was sent. Time jumps to the next arrival or deadline.
struct Link {
    now: Instant,
    latency: Duration,
    sides: [S; 2],
    /// DATA packets from the server are lost until then.
    server_data_lost_until: Instant,
    /// The client's application reads nothing until then.
    client_reads_from: Instant,
    /// Packets on their way from side `i` to the other, with their arrival time.
    flight: [VecDeque<(Instant, Vec<u8>)>; 2],
    /// Messages each side's application received.
    received: [Vec<Vec<u8>>; 2],
    closed: [Option<CloseReason>; 2],
    buf: Vec<u8>,
}

impl Link {
    fn new(client: S, server: S, latency: Duration) -> Self {
        Self {
            now: Instant::ZERO,
            latency,
            sides: [client, server],
            server_data_lost_until: Instant::ZERO,
            client_reads_from: Instant::ZERO,
            flight: [VecDeque::new(), VecDeque::new()],
            received: [Vec::new(), Vec::new()],
            closed: [None; 2],
            buf: vec![0; 2048],
        }
    }

    /// The driver loop for both sides: transmit, then read events.
    fn drain(&mut self) {
        for side in 0..2 {
            while let Some(len) = self.sides[side].poll_transmit(self.now, &mut self.buf).unwrap() {
                let at = self.now + self.latency;
                let lost = side == 1
                    && self.now < self.server_data_lost_until
                    && Repr::parse(&self.buf[..len]).is_ok_and(|p| p.kind == PacketType::Data);
                if !lost {
                    self.flight[side].push_back((at, self.buf[..len].to_vec()));
                }
            }
            if side == 0 && self.now < self.client_reads_from {
                continue;
            }
            while let Some(event) = self.sides[side].poll_event() {
                match event {
                    Event::Message(m) => self.received[side].push(m.to_vec()),
                    Event::Closed(reason) => self.closed[side] = Some(reason),
                    _ => {}
                }
            }
        }
    }

    /// Runs until `done` holds or nothing is left to happen before `limit`.
    fn run_until(&mut self, limit: Instant, mut done: impl FnMut(&Self) -> bool) {
        self.drain();
        while !done(self) {
            let arrival = self.flight.iter().filter_map(|q| q.front().map(|(at, _)| *at)).min();
            let deadline = self.sides.iter().filter_map(S::poll_timeout).min();
            let Some(next) = arrival.into_iter().chain(deadline).min().filter(|&t| t <= limit) else {
                return;
            };
            self.now = self.now.max(next);
            for from in 0..2 {
                while self.flight[from].front().is_some_and(|(at, _)| *at <= self.now) {
                    let (_, bytes) = self.flight[from].pop_front().unwrap();
                    let repr = Repr::parse(&bytes).unwrap();
                    self.sides[1 - from].handle_packet(self.now, &repr);
                }
            }
            for side in &mut self.sides {
                if side.poll_timeout().is_some_and(|t| t <= self.now) {
                    side.handle_timeout(self.now);
                }
            }
            self.drain();
        }
    }
}

/// Target `session`, invariant "no dead link declared on a perfect link while the peer is heard".
///
/// A side that calls `close` while its peer still has a long transfer for it retransmits CLOSE
/// on every retransmission timeout, and the peer, DRAINING, ignores those CLOSEs until its own
/// data is acknowledged (PROTOCOL.md 10.6). The CLOSING side counts each of them towards
/// `max_retransmits` even while it accepts the peer's DATA the whole time (the close timer
/// counts that DATA as progress, the dead-link limit does not), so after about a minute with the
/// default timers it ends with `TimedOut(DeadLink)`: the close fails and the rest of the
/// peer's messages are lost, on a link that lost nothing.
///
/// Found by the fuzzer as a client whose CLOSE went unanswered while the server's data was held
/// up, and that declared a dead link 60 ms before the server's CLOSE-ACK, while still receiving
/// the server's DATA (minimised input, in hex:
/// `5742fb091409fb0057053939393939393939393964cb005757575757575757`).
#[test]
fn close_during_a_long_peer_transfer_ends_gracefully() {
    // The client takes one 64-byte DATA packet at a time (a slow serial link, say); the server
    // has 64 KiB queued for it: about 1000 round trips of 100 ms to drain.
    let client_config = Config::new().retransmit(true).max_payload(64).window(1);
    let client = S::client(client_config, 0x5EED, vec![0; 1024], vec![0; 1024], Instant::ZERO);
    let server = S::server(Config::new(), vec![0; 64 * 1024], vec![0; 1024], Instant::ZERO);
    let mut link = Link::new(client, server, Duration::from_millis(50));

    link.run_until(Instant::from_millis(1_000), |l| l.sides.iter().all(|s| s.state() == State::Established));
    let message = [0x55u8; 1000];
    let mut queued = 0;
    while link.sides[1].send(link.now, &message).is_ok() {
        queued += 1;
    }
    assert!(queued > 60);
    link.sides[0].close(link.now);

    link.run_until(Instant::from_millis(600_000), |l| l.closed.iter().all(Option::is_some));

    // Before the fix: 41 of the 65 messages; the client ended with TimedOut(DeadLink) at 69
    // virtual seconds, and the server, no longer heard, with TimedOut(Idle) 30 s later.
    assert_eq!(
        (link.received[0].len(), link.closed),
        (queued, [Some(CloseReason::Local), Some(CloseReason::Peer)]),
        "messages the client received, and how both sides ended (at {:?})",
        link.now
    );
}

/// Target `session`, the same invariant, another way in: a 10-million-execution run.
///
/// The client closes while the server's DATA has been lost and the server, its retransmission
/// timeout backed off to many seconds, is slow to send it again. The server (DRAINING) answers
/// the client's keepalive PINGs but not its repeated CLOSEs (PROTOCOL.md 10.6), and the client
/// counted every CLOSE retransmission towards `max_retransmits`: it declared a dead link while
/// hearing its peer every second. A CLOSING side that hears its peer now leaves the wait to its
/// close timer.
#[test]
fn a_closer_that_hears_its_peer_waits_for_its_data() {
    let client_config = Config::new()
        .retransmit(true)
        .max_rto(Duration::from_secs(1))
        .keepalive(Duration::from_secs(1))
        .close_timeout(Duration::from_secs(120));
    let server_config = Config::new().retransmit(true).max_rto(Duration::from_secs(60));
    let client = S::client(client_config, 0x5EED, vec![0; 4096], vec![0; 4096], Instant::ZERO);
    let server = S::server(server_config, vec![0; 4096], vec![0; 4096], Instant::ZERO);
    let mut link = Link::new(client, server, Duration::from_millis(10));
    link.run_until(Instant::from_millis(1_000), |l| l.sides.iter().all(|s| s.state() == State::Established));

    // The server's message is lost, again and again, for 30 s; the client closes meanwhile.
    link.server_data_lost_until = Instant::from_millis(30_000);
    link.sides[1].send(link.now, &[0xAA; 500]).unwrap();
    link.run_until(Instant::from_millis(1_000), |_| false);
    link.sides[0].close(link.now);
    link.run_until(Instant::from_millis(600_000), |l| l.closed.iter().all(Option::is_some));

    // Before the fix: the client ended with TimedOut(DeadLink) about 12 s in, the message lost.
    assert_eq!(
        (link.received[0].len(), link.closed),
        (1, [Some(CloseReason::Local), Some(CloseReason::Peer)]),
        "messages the client received, and how both sides ended (at {:?})",
        link.now
    );
    assert!(
        link.now > Instant::from_millis(30_000),
        "the message went through after the loss, at {:?}",
        link.now
    );
}

/// Target `session`, the same invariant once more: a closer with a short retransmission
/// timeout (100 ms) whose peer cannot drain yet, because the closer's own application has not
/// read what it was sent (no credit). The DRAINING peer had nothing to send and ignored the
/// repeated CLOSEs, so the closer heard nothing for ten timeouts and declared a dead link
/// although the peer was fine. A DRAINING side now answers a repeated CLOSE with an ACK
/// (PROTOCOL.md 10.6).
#[test]
fn a_draining_peer_answers_a_repeated_close() {
    let client_config = Config::new()
        .retransmit(true)
        .max_rto(Duration::from_millis(100))
        .close_timeout(Duration::from_secs(60));
    let client = S::client(client_config, 0x5EED, vec![0; 4096], vec![0; 2048], Instant::ZERO);
    let server = S::server(Config::new().retransmit(true), vec![0; 8192], vec![0; 4096], Instant::ZERO);
    let mut link = Link::new(client, server, Duration::from_millis(10));
    link.run_until(Instant::from_millis(1_000), |l| l.sides.iter().all(|s| s.state() == State::Established));

    // The client's application is busy for 3 s: the server's 6 KB cannot all go meanwhile.
    link.client_reads_from = link.now + Duration::from_secs(3);
    for _ in 0..6 {
        link.sides[1].send(link.now, &[0xBB; 1000]).unwrap();
    }
    link.sides[0].close(link.now);
    link.run_until(Instant::from_millis(120_000), |l| l.closed.iter().all(Option::is_some));

    // Before the fix: TimedOut(DeadLink) on the client 1 s after its CLOSE, 2 messages read.
    assert_eq!(
        (link.received[0].len(), link.closed),
        (6, [Some(CloseReason::Local), Some(CloseReason::Peer)]),
        "messages the client received, and how both sides ended (at {:?})",
        link.now
    );
}
