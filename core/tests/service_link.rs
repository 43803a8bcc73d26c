//! The responder over a real session pair: what `framelink ping`, `bench` and `info` do,
//! in memory.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use framelink_core::Instant;
use framelink_core::connection::Connection;
use framelink_core::framing::LengthDelimitedDecoder;
use framelink_core::service::{Responder, ResponderDriver, ServiceMessage, check_pattern};
use framelink_core::session::{Config, Event, Session};

type Link = Connection<LengthDelimitedDecoder<4200>, Vec<u8>>;

struct Pair {
    client: Link,
    server: Link,
    driver: ResponderDriver<'static, Vec<u8>>,
    plain: Vec<Vec<u8>>,
    wire: Vec<u8>,
}

impl Pair {
    fn new() -> Self {
        let config = Config::new().max_payload(4096);
        let buf = || vec![0u8; 64 * 1024];
        let t0 = Instant::ZERO;
        let client =
            Link::new(Session::client(config, 1, buf(), buf(), t0), LengthDelimitedDecoder::new(), buf());
        let server =
            Link::new(Session::server(config, buf(), buf(), t0), LengthDelimitedDecoder::new(), buf());
        let driver = ResponderDriver::new(Responder::new("test responder", "1.0"), vec![0u8; 64 * 1024 + 6]);
        let mut pair = Self { client, server, driver, plain: Vec::new(), wire: vec![0u8; 256 * 1024] };
        pair.pump();
        assert_eq!(pair.client.session_mut().poll_event(), Some(Event::Connected));
        pair
    }

    /// Moves bytes both ways and lets the responder work until everything is quiet.
    fn pump(&mut self) {
        let now = Instant::ZERO;
        for _ in 0..10_000 {
            let n = self.client.poll_transmit(now, &mut self.wire).unwrap();
            self.server.handle_bytes(now, &self.wire[..n]);
            let decoder = self.server.decoder_stats();
            let plain = &mut self.plain;
            self.driver.poll(now, self.server.session_mut(), decoder, |event| {
                if let Event::Message(m) = event {
                    plain.push(m.to_vec());
                }
            });
            let m = self.server.poll_transmit(now, &mut self.wire).unwrap();
            self.client.handle_bytes(now, &self.wire[..m]);
            if n == 0 && m == 0 {
                return;
            }
        }
        panic!("never quiet");
    }

    fn request(&mut self, message: ServiceMessage<'_>) {
        let mut buf = vec![0u8; message.encoded_len()];
        message.emit(&mut buf).unwrap();
        self.client.session_mut().send(Instant::ZERO, &buf).unwrap();
    }

    /// Replies the client received, copied out.
    fn replies(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(event) = self.client.session_mut().poll_event() {
            if let Event::Message(m) = event {
                out.push(m.to_vec());
            }
        }
        out
    }
}

#[test]
fn echo_answers_every_ping_in_order() {
    let mut pair = Pair::new();
    for id in 0..50u32 {
        pair.request(ServiceMessage::Echo { id, payload: &[id as u8; 64] });
    }
    pair.pump();
    let replies = pair.replies();
    assert_eq!(replies.len(), 50);
    for (id, reply) in replies.iter().enumerate() {
        let id = id as u32;
        assert_eq!(
            ServiceMessage::parse(reply),
            Ok(Some(ServiceMessage::EchoReply { id, payload: &[id as u8; 64] }))
        );
    }
}

#[test]
fn sink_counts_and_text_passes_through() {
    let mut pair = Pair::new();
    let chunk = vec![0x55u8; 16 * 1024];
    for _ in 0..64 {
        pair.request(ServiceMessage::Sink { payload: &chunk });
        pair.pump();
    }
    pair.client.session_mut().send(Instant::ZERO, b"Hello, Server!").unwrap();
    pair.request(ServiceMessage::Stats);
    pair.pump();
    assert_eq!(pair.plain, [b"Hello, Server!".to_vec()]);
    let replies = pair.replies();
    let Ok(Some(ServiceMessage::StatsReply(stats))) = ServiceMessage::parse(&replies[0]) else { panic!() };
    assert_eq!((stats.sink_messages, stats.sink_bytes), (64, 64 * 16 * 1024));
    assert_eq!(stats.messages_received, 66);
}

#[test]
fn the_reply_buffer_is_lent_out_only_while_nothing_waits_in_it() {
    let mut pair = Pair::new();
    assert!(pair.driver.idle_buffer_mut().is_some(), "nothing asked yet");
    pair.request(ServiceMessage::Source { id: 5, bytes: 1 << 20, millis: 0, size: 8192 });
    pair.pump();
    assert!(pair.driver.idle_buffer_mut().is_none(), "a SOURCE stream is running");
    let mut ended = false;
    for _ in 0..10_000 {
        let replies = pair.replies();
        ended |= replies
            .iter()
            .any(|r| matches!(ServiceMessage::parse(r), Ok(Some(ServiceMessage::SourceEnd { .. }))));
        pair.pump();
        if ended && pair.replies().is_empty() {
            break;
        }
    }
    assert!(ended, "the stream ended");
    assert!(pair.driver.idle_buffer_mut().is_some(), "the stream is over");
}

#[test]
fn source_streams_a_verifiable_megabyte_within_the_window() {
    let mut pair = Pair::new();
    pair.request(ServiceMessage::Source { id: 3, bytes: 1 << 20, millis: 0, size: 8192 });
    let mut received = 0u64;
    let mut end = None;
    for _ in 0..10_000 {
        pair.pump();
        for reply in pair.replies() {
            match ServiceMessage::parse(&reply).unwrap().unwrap() {
                ServiceMessage::SourceData { id: 3, offset, data } => {
                    assert_eq!(offset, received, "in order, nothing missing");
                    assert!(check_pattern(offset, data));
                    received += data.len() as u64;
                }
                ServiceMessage::SourceEnd { id: 3, bytes } => end = Some(bytes),
                other => panic!("{other:?}"),
            }
        }
        if end.is_some() {
            break;
        }
    }
    assert_eq!((received, end), (1 << 20, Some(1 << 20)));
}

#[test]
fn info_describes_the_responder_and_its_limits() {
    let mut pair = Pair::new();
    pair.request(ServiceMessage::Info);
    pair.pump();
    let replies = pair.replies();
    let Ok(Some(ServiceMessage::InfoReply(info))) = ServiceMessage::parse(&replies[0]) else { panic!() };
    assert_eq!((info.name, info.software), ("test responder", "1.0"));
    assert_eq!((info.max_payload, info.rx_buffer, info.tx_buffer), (4096, 65536, 65536));
    assert_eq!(info.version, 1);
}
