//! `ServiceMessage::parse` and `Responder` on arbitrary bytes.
//!
//! The whole input is one session message; its last byte modulo 97 is the size of the reply
//! buffer the responder gets (0 to 96 bytes, so replies often do not fit).
//!
//! Invariants: no panic. When `parse` gives `Ok(Some(m))`: `emit(m)` writes `encoded_len()`
//! bytes, parses back to `m`, and is the input's first `encoded_len()` bytes (what a layout
//! does not read is not written back; an ERROR's kind byte other than 1 comes back as 2, the
//! only value besides 1 that `emit` writes); `emit` into a buffer one byte short fails and
//! writes nothing. `Ok(None)` exactly when the first byte is not the tag.
//!
//! The responder handles the message twice (a second SOURCE replaces the first, whose end is
//! then owed). `Plain` only for non-service messages; a `Reply` fits in the buffer and is the
//! ECHO-REPLY or the service ERROR the request calls for (a reply's op code is an unknown
//! operation to a responder, whatever its body); `Describe` only for STATS and INFO,
//! and `describe` then writes a reply that parses to the responder's figures (or reports the
//! room it needs); `Done` only for SINK and SOURCE, or when not even an ERROR fits. Then up
//! to 64 `poll_source` calls, 1 ms apart: `source_need` is `None` exactly when `poll_source`
//! has nothing; with a buffer of at least `source_need` bytes `poll_source` writes at most
//! that many; what it writes is SOURCE-DATA carrying the pattern at contiguous offsets within
//! the byte limit, or SOURCE-END with the byte count of its stream.
#![no_main]

use framelink_core::Instant;
use framelink_core::framing::DecoderStats;
use framelink_core::service::{
    Describe, Handled, LinkState, Responder, ServiceError, ServiceMessage, TAG, check_pattern, op,
};
use framelink_core::session::{Config, Session};
use framelink_core::wire::BufferTooSmall;
use libfuzzer_sys::fuzz_target;

const ERROR_LEN: usize = 4;

fuzz_target!(|data: &[u8]| {
    let parsed = ServiceMessage::parse(data);
    match parsed {
        Ok(None) => assert_ne!(data.first(), Some(&TAG), "a tagged message is not a service message"),
        Ok(Some(message)) => check_round_trip(data, &message),
        Err(error) => {
            assert_eq!(data.first(), Some(&TAG));
            let _ = error.to_string();
        }
    }
    check_responder(data, parsed);
});

fn check_round_trip(data: &[u8], message: &ServiceMessage<'_>) {
    let len = message.encoded_len();
    let mut out = vec![0u8; len];
    assert_eq!(message.emit(&mut out), Ok(len));
    assert_eq!(ServiceMessage::parse(&out).as_ref(), Ok(&Some(*message)), "emit then parse");
    assert!(len <= data.len(), "emit wrote {len} bytes from a {}-byte message", data.len());
    let mut expected = data[..len].to_vec();
    if message.op() == op::ERROR && expected[2] != 1 {
        expected[2] = 2;
    }
    assert_eq!(out, expected, "emit is not the input's prefix");
    assert_eq!(message.op(), data[1]);

    let mut short = vec![0xA5u8; len - 1];
    assert_eq!(message.emit(&mut short), Err(BufferTooSmall { required: len }));
    assert!(short.iter().all(|&b| b == 0xA5), "emit wrote into a buffer too small");
}

fn check_responder(data: &[u8], parsed: Result<Option<ServiceMessage<'_>>, ServiceError>) {
    let out_len = data.last().map_or(0, |&b| usize::from(b % 97));
    let mut out = vec![0u8; out_len];
    let mut responder = Responder::new("fuzz", "0.0.0");
    let mut now = Instant::from_millis(1);
    let session: Session<[u8; 64]> = Session::server(Config::new(), [0; 64], [0; 64], now);

    for _ in 0..2 {
        match responder.handle(now, data, &mut out) {
            Handled::Plain => assert!(matches!(parsed, Ok(None)), "Plain for a service message"),
            Handled::Reply(len) => {
                assert!(len <= out.len(), "reply of {len} bytes in a {}-byte buffer", out.len());
                let reply = ServiceMessage::parse(&out[..len]);
                let reply = reply.expect("the reply parses").expect("the reply is a service message");
                let expected = match parsed {
                    Ok(Some(ServiceMessage::Echo { id, payload })) => {
                        let echo = ServiceMessage::EchoReply { id, payload };
                        if echo.encoded_len() <= out.len() {
                            echo
                        } else {
                            ServiceMessage::Error { error: ServiceError::Malformed(op::ECHO) }
                        }
                    }
                    Ok(Some(other)) => ServiceMessage::Error { error: ServiceError::UnknownOp(other.op()) },
                    // A responder parses requests only: a reply's op code, even with a body
                    // the full parser finds malformed, is an operation it does not know.
                    Err(ServiceError::Malformed(code)) if code & 0x80 != 0 => {
                        ServiceMessage::Error { error: ServiceError::UnknownOp(code) }
                    }
                    Err(error) => ServiceMessage::Error { error },
                    Ok(None) => unreachable!("Plain was not returned"),
                };
                assert_eq!(reply, expected, "wrong reply");
            }
            Handled::Describe(what) => {
                let expected = match parsed {
                    Ok(Some(ServiceMessage::Stats)) => Describe::Stats,
                    Ok(Some(ServiceMessage::Info)) => Describe::Info,
                    other => panic!("Describe for {other:?}"),
                };
                assert_eq!(what, expected);
                let link = LinkState::of(&session, DecoderStats::default());
                match responder.describe(what, &link, &mut out) {
                    Ok(len) => {
                        assert!(len <= out.len());
                        let reply =
                            ServiceMessage::parse(&out[..len]).expect("describe parses").expect("tagged");
                        match reply {
                            ServiceMessage::StatsReply(stats) => {
                                assert_eq!(what, Describe::Stats);
                                assert_eq!(stats, responder.stats(&link));
                            }
                            ServiceMessage::InfoReply(info) => {
                                assert_eq!(what, Describe::Info);
                                assert_eq!((info.name, info.software), ("fuzz", "0.0.0"));
                            }
                            other => panic!("describe wrote {other:?}"),
                        }
                    }
                    Err(BufferTooSmall { required }) => assert!(required > out.len()),
                }
            }
            Handled::Done => assert!(
                matches!(parsed, Ok(Some(ServiceMessage::Sink { .. } | ServiceMessage::Source { .. })))
                    || out.len() < ERROR_LEN,
                "Done for {parsed:?} with a {}-byte buffer",
                out.len()
            ),
        }
    }

    let limit = match parsed {
        Ok(Some(ServiceMessage::Source { bytes, .. })) if bytes != 0 => bytes,
        _ => u64::MAX,
    };
    let mut offset = 0u64;
    for _ in 0..64 {
        now = now + core::time::Duration::from_millis(1);
        let need = responder.source_need();
        let Some(len) = responder.poll_source(now, &mut out) else {
            if let Some(need) = need {
                assert!(out.len() < need, "poll_source wrote nothing with {} bytes for {need}", out.len());
            }
            continue;
        };
        let need = need.expect("poll_source wrote a message source_need did not announce");
        assert!(len <= need && len <= out.len(), "poll_source wrote {len}, need {need}, room {}", out.len());
        match ServiceMessage::parse(&out[..len]) {
            Ok(Some(ServiceMessage::SourceData { offset: at, data, .. })) => {
                assert_eq!(at, offset, "SOURCE-DATA offsets not contiguous");
                assert!(check_pattern(at, data), "SOURCE-DATA is not the pattern");
                offset += data.len() as u64;
                assert!(offset <= limit, "SOURCE sent {offset} bytes past its limit {limit}");
            }
            Ok(Some(ServiceMessage::SourceEnd { bytes, .. })) => {
                assert_eq!(bytes, offset, "SOURCE-END count");
                offset = 0;
            }
            other => panic!("poll_source wrote {other:?}"),
        }
    }
    responder.stop_source();
    assert_eq!(responder.source_need(), None);
    assert_eq!(responder.poll_source(now, &mut out), None);
}
