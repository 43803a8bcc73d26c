//! Unit tests of the service codec and the responder.

use super::*;
use crate::Instant;
use crate::framing::DecoderStats;
use crate::session::{RttStats, Stats};
use crate::wire::{Capabilities, HelloPayload};
use core::time::Duration;
use std::vec::Vec;

fn round_trip(message: ServiceMessage<'_>) {
    let mut buf = [0u8; 512];
    let len = message.emit(&mut buf).unwrap();
    assert_eq!(len, message.encoded_len());
    assert_eq!(buf[0], TAG);
    assert_eq!(ServiceMessage::parse(&buf[..len]), Ok(Some(message)));
    assert!(message.emit(&mut buf[..len - 1]).is_err());
}

#[test]
fn every_message_round_trips() {
    let stats = StatsReply { bytes_received: 1 << 40, srtt_us: Some(1234), ..Default::default() };
    round_trip(ServiceMessage::Echo { id: 1, payload: b"ping" });
    round_trip(ServiceMessage::EchoReply { id: u32::MAX, payload: &[] });
    round_trip(ServiceMessage::Sink { payload: &[0; 100] });
    round_trip(ServiceMessage::Source { id: 3, bytes: 1_000_000, millis: 0, size: 1024 });
    round_trip(ServiceMessage::Stats);
    round_trip(ServiceMessage::Info);
    round_trip(ServiceMessage::SourceData { id: 3, offset: 99, data: &[1, 2, 3] });
    round_trip(ServiceMessage::SourceEnd { id: 3, bytes: 77 });
    round_trip(ServiceMessage::StatsReply(stats));
    round_trip(ServiceMessage::InfoReply(InfoReply::new(
        1, 1, 1024, 16, 65536, 70000, 70000, "board", "0.1.0",
    )));
    round_trip(ServiceMessage::Error { error: ServiceError::UnknownOp(0x42) });
    round_trip(ServiceMessage::Error { error: ServiceError::Malformed(0x03) });
}

#[test]
fn text_is_not_a_service_message_and_bad_ones_are_named() {
    assert_eq!(ServiceMessage::parse(b"Hello, Server!"), Ok(None));
    assert_eq!(ServiceMessage::parse(b""), Ok(None));
    assert_eq!(ServiceMessage::parse(&[TAG]), Err(ServiceError::UnknownOp(0)));
    assert_eq!(ServiceMessage::parse(&[TAG, 0x42]), Err(ServiceError::UnknownOp(0x42)));
    assert_eq!(ServiceMessage::parse(&[TAG, op::ECHO, 1, 2]), Err(ServiceError::Malformed(op::ECHO)));
    // SOURCE without any limit, or with messages too small for their header.
    let mut buf = [0u8; 32];
    let n = ServiceMessage::Source { id: 1, bytes: 0, millis: 0, size: 100 }.emit(&mut buf).unwrap();
    assert_eq!(ServiceMessage::parse(&buf[..n]), Err(ServiceError::Malformed(op::SOURCE)));
    let n = ServiceMessage::Source { id: 1, bytes: 10, millis: 0, size: 14 }.emit(&mut buf).unwrap();
    assert_eq!(ServiceMessage::parse(&buf[..n]), Err(ServiceError::Malformed(op::SOURCE)));
    // An INFO reply whose name is not UTF-8.
    let n = ServiceMessage::InfoReply(InfoReply::new(1, 0, 1, 1, 1, 1, 1, "ab", "")).emit(&mut buf).unwrap();
    buf[22] = 0xFF;
    assert_eq!(ServiceMessage::parse(&buf[..n]), Err(ServiceError::Malformed(op::INFO_REPLY)));
}

#[test]
fn the_pattern_is_offset_mod_251_across_periods() {
    for (offset, len) in [(0u64, 0usize), (0, 1), (250, 3), (1000, 600), (u64::MAX - 700, 700)] {
        let mut data = std::vec![0u8; len];
        fill_pattern(offset, &mut data);
        assert!(data.iter().enumerate().all(|(i, &b)| b == ((offset + i as u64) % 251) as u8), "{offset}");
        assert!(check_pattern(offset, &data));
        // A changed byte shows wherever it is: in the first period, in the middle, last.
        for at in [0, len / 2, 251, 252, len.saturating_sub(1)].into_iter().filter(|&at| at < len) {
            data[at] ^= 1;
            assert!(!check_pattern(offset, &data), "byte {at} of {len} changed");
            data[at] ^= 1;
        }
    }
}

#[test]
fn a_source_limited_by_time_only_streams_full_messages() {
    let mut r = Responder::new("unit", "1");
    let mut req = [0u8; 64];
    let n = ServiceMessage::Source { id: 8, bytes: 0, millis: 1000, size: 100 }.emit(&mut req).unwrap();
    let _ = r.handle(Instant::ZERO, &req[..n], &mut [0; 64]);
    assert_eq!(r.source_need(), Some(100));
    let mut out = [0u8; 128];
    assert_eq!(r.poll_source(Instant::ZERO, &mut out), Some(100));
}

#[test]
fn the_pattern_catches_a_shift() {
    let mut data = [0u8; 600];
    fill_pattern(1000, &mut data);
    assert!(check_pattern(1000, &data));
    assert!(!check_pattern(1001, &data));
    assert_eq!(pattern_byte(251), 0);
}

fn state() -> LinkState {
    let stats = Stats { messages_received: 5, ..Default::default() };
    let decoder = DecoderStats { resyncs: 2, crc_errors: 1, ..Default::default() };
    LinkState {
        stats,
        rtt: RttStats::default(),
        decoder,
        local: HelloPayload {
            version: 1,
            supports: Capabilities::RETRANSMIT,
            requires: Capabilities::NONE,
            max_payload: 512,
            window: 8,
            session_id: 9,
            max_message: 4000,
            credit: 4096,
            cookie: None,
        },
        rx_buffer: 4096,
        tx_buffer: 2048,
    }
}

#[test]
fn echo_sink_stats_and_info() {
    let mut r = Responder::new("unit", "test 1.0");
    let mut out = [0u8; 256];
    let mut req = [0u8; 256];
    let n = ServiceMessage::Sink { payload: &[0; 100] }.emit(&mut req).unwrap();
    assert_eq!(r.handle(Instant::ZERO, &req[..n], &mut out), Handled::Done);
    let n = ServiceMessage::Echo { id: 5, payload: b"abc" }.emit(&mut req).unwrap();
    assert_eq!(r.handle(Instant::ZERO, &req[..n], &mut out), Handled::Reply(9));
    let n = ServiceMessage::Stats.emit(&mut req).unwrap();
    assert_eq!(r.handle(Instant::ZERO, &req[..n], &mut out), Handled::Describe(Describe::Stats));
    let len = r.describe(Describe::Stats, &state(), &mut out).unwrap();
    let Ok(Some(ServiceMessage::StatsReply(s))) = ServiceMessage::parse(&out[..len]) else { panic!() };
    assert_eq!((s.sink_messages, s.sink_bytes, s.echoes, s.messages_received), (1, 100, 1, 5));
    assert_eq!((s.resyncs, s.crc_errors, s.srtt_us), (2, 1, None));
    let len = r.describe(Describe::Info, &state(), &mut out).unwrap();
    let Ok(Some(ServiceMessage::InfoReply(i))) = ServiceMessage::parse(&out[..len]) else { panic!() };
    assert_eq!(
        (i.name, i.software, i.max_payload, i.window, i.capabilities),
        ("unit", "test 1.0", 512, 8, 1)
    );
}

#[test]
fn an_echo_too_big_for_the_reply_buffer_is_refused_not_cut() {
    let mut r = Responder::new("unit", "1");
    let mut req = [0u8; 128];
    let n = ServiceMessage::Echo { id: 1, payload: &[7; 100] }.emit(&mut req).unwrap();
    let mut out = [0u8; 64];
    let Handled::Reply(len) = r.handle(Instant::ZERO, &req[..n], &mut out) else { panic!() };
    assert_eq!(
        ServiceMessage::parse(&out[..len]),
        Ok(Some(ServiceMessage::Error { error: ServiceError::Malformed(op::ECHO) }))
    );
}

/// (offset, length) of each SOURCE-DATA, then the SOURCE-END's (id, bytes).
type Drained = (Vec<(u64, usize)>, Option<(u32, u64)>);

fn drain_source(r: &mut Responder<'_>, now: Instant) -> Drained {
    let mut out = [0u8; 128];
    let mut data = Vec::new();
    while let Some(len) = r.poll_source(now, &mut out) {
        match ServiceMessage::parse(&out[..len]).unwrap().unwrap() {
            ServiceMessage::SourceData { offset, data: d, .. } => {
                assert!(check_pattern(offset, d));
                data.push((offset, d.len()));
            }
            ServiceMessage::SourceEnd { id, bytes } => return (data, Some((id, bytes))),
            other => panic!("{other:?}"),
        }
    }
    (data, None)
}

#[test]
fn source_sends_exactly_the_bytes_asked_then_ends() {
    let mut r = Responder::new("unit", "1");
    let mut req = [0u8; 64];
    let n = ServiceMessage::Source { id: 4, bytes: 250, millis: 0, size: 114 }.emit(&mut req).unwrap();
    assert_eq!(r.handle(Instant::ZERO, &req[..n], &mut [0; 64]), Handled::Done);
    assert_eq!(r.source_need(), Some(114));
    assert_eq!(ServiceMessage::SourceEnd { id: 0, bytes: 0 }.encoded_len(), message::SOURCE_END_LEN);
    let (data, end) = drain_source(&mut r, Instant::ZERO);
    assert_eq!(data, [(0, 100), (100, 100), (200, 50)]);
    assert_eq!(end, Some((4, 250)));
    assert_eq!(r.source_need(), None);
}

#[test]
fn source_by_time_ends_at_the_deadline_and_a_new_request_ends_the_old() {
    let mut r = Responder::new("unit", "1");
    let mut req = [0u8; 64];
    let n = ServiceMessage::Source { id: 1, bytes: 0, millis: 10, size: 64 }.emit(&mut req).unwrap();
    let _ = r.handle(Instant::ZERO, &req[..n], &mut [0; 64]);
    let mut out = [0u8; 64];
    for _ in 0..3 {
        assert!(r.poll_source(Instant::from_millis(9), &mut out).is_some());
    }
    let n2 = ServiceMessage::Source { id: 2, bytes: 0, millis: 10, size: 64 }.emit(&mut req).unwrap();
    let _ = r.handle(Instant::from_millis(9), &req[..n2], &mut [0; 64]);
    let len = r.poll_source(Instant::from_millis(9), &mut out).unwrap();
    assert_eq!(ServiceMessage::parse(&out[..len]), Ok(Some(ServiceMessage::SourceEnd { id: 1, bytes: 150 })));
    let (_, end) = drain_source(&mut r, Instant::from_millis(9) + Duration::from_millis(10));
    assert_eq!(end, Some((2, 0)));
}
