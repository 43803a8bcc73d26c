//! The service vectors of `docs/PROTOCOL.md` section 14, checked against the code: each hex
//! block must parse to the message named here and be written back byte for byte.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use framelink_core::service::{InfoReply, ServerCounters, ServiceError, ServiceMessage, StatsReply};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// (name, hex) of every `service-vector:` block in the document.
fn vectors() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in DOC.lines() {
        if let Some(name) = line.strip_prefix("service-vector: ") {
            out.push((name.trim().to_owned(), Vec::new()));
        } else if let (Some(hex), Some(last)) = (line.strip_prefix("hex: "), out.last_mut()) {
            for byte in hex.split_whitespace() {
                last.1.push(u8::from_str_radix(byte, 16).expect("hex byte"));
            }
        }
    }
    out
}

fn expected(name: &str) -> ServiceMessage<'static> {
    let mut stats = StatsReply::default();
    (stats.messages_received, stats.bytes_received, stats.messages_sent, stats.bytes_sent) = (3, 300, 2, 200);
    (stats.packets_received, stats.packets_sent) = (5, 4);
    (stats.srtt_us, stats.min_rtt_us) = (Some(450), Some(310));
    (stats.sink_messages, stats.sink_bytes, stats.echoes) = (1, 100, 2);
    match name {
        "echo" => ServiceMessage::Echo { id: 7, payload: b"hi" },
        "echo-reply" => ServiceMessage::EchoReply { id: 7, payload: b"hi" },
        "sink" => ServiceMessage::Sink { payload: &[0xAA, 0xBB] },
        "source" => ServiceMessage::Source { id: 9, bytes: 1_000_000, millis: 0, size: 1024 },
        "source-data" => ServiceMessage::SourceData { id: 9, offset: 250, data: &[250, 0, 1] },
        "source-end" => ServiceMessage::SourceEnd { id: 9, bytes: 1_000_000 },
        "stats" => ServiceMessage::Stats,
        "stats-reply" => ServiceMessage::StatsReply(stats),
        "stats-reply-server" => {
            let mut server = ServerCounters::default();
            (server.clients, server.accepted, server.refused_busy, server.handshake_timeouts) = (2, 10, 1, 3);
            (server.too_large, server.stray_datagrams, server.auth_failures) = (1, 7, 4);
            stats.server = Some(server);
            ServiceMessage::StatsReply(stats)
        }
        "info" => ServiceMessage::Info,
        "info-reply" => ServiceMessage::InfoReply(InfoReply::new(
            1, 1, 1024, 16, 65536, 262_144, 262_144, "qemu", "0.1.0",
        )),
        "error" => ServiceMessage::Error { error: ServiceError::UnknownOp(0x42) },
        other => panic!("PROTOCOL.md has a service vector the test does not know: {other}"),
    }
}

#[test]
fn every_service_vector_parses_and_re_encodes_byte_for_byte() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 12, "one vector per service message, STATS-REPLY with and without a server");
    for (name, bytes) in &vectors {
        let want = expected(name);
        assert_eq!(ServiceMessage::parse(bytes), Ok(Some(want)), "{name}");
        let mut out = [0u8; 256];
        assert!(want.encoded_len() <= out.len());
        let len = want.emit(&mut out).unwrap();
        assert_eq!(&out[..len], &bytes[..], "{name}");
    }
}
