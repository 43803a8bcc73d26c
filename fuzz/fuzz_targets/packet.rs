//! `Repr::parse` on arbitrary bytes, and `emit` of what it accepts.
//!
//! Invariants: no panic, in `parse`, in the lenient `Packet` getters after it, or in
//! `Display` of the error. When `parse` is `Ok`:
//!
//! - the `Packet` view agrees with the `Repr` (type, sequence, payload), the type is a defined
//!   one, and `more` is only ever set on DATA;
//! - `emit` writes exactly `data.len()` bytes, and they equal the input except where the input
//!   carried information `Repr` does not keep:
//!   - byte 2 (flags): only `ACK` (0x01) survives, plus `MORE` (0x02) on DATA; undefined bits,
//!     and `MORE` on other types, come back as 0;
//!   - bytes 5..7 (ack number): come back as 0 when the input's `ACK` flag was clear (the field
//!     is meaningless then and `Repr` keeps `ack: None`);
//!   - bytes `len-4..len` (CRC-32C): recomputed, so they differ exactly when one of the bytes
//!     above differed;
//!
//!   version, type, sequence, length and payload are always byte for byte the same, and so is
//!   the whole packet when the flags had no undefined bits and an unset ACK came with a zero
//!   ack field;
//! - the emitted bytes parse back to the same `Repr`;
//! - the typed payload of each control type parses, and its `emit` gives back the bytes it was
//!   read from (HELLO's reserved byte 1 comes back as 0; the bytes after a fixed part, which
//!   `parse` ignores, are not written).
#![no_main]

use framelink_core::wire::{
    AckPayload, ErrorCode, ErrorPayload, HelloPayload, Packet, PacketType, PingPayload, Repr, RetryPayload,
    VERSION, flags,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let repr = match Repr::parse(data) {
        Ok(repr) => repr,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };

    let packet = Packet::new_checked(data).expect("parse accepted what check_len refuses");
    assert_eq!(packet.version(), VERSION);
    assert_eq!(packet.kind(), repr.kind);
    assert_eq!(packet.seq(), repr.seq);
    assert_eq!(packet.payload(), repr.payload);
    assert_eq!(packet.crc(), packet.compute_crc());
    assert!(!matches!(repr.kind, PacketType::Unknown(_)), "parse let an unknown type through");
    assert!(!repr.more || repr.kind == PacketType::Data, "MORE on a {:?}", repr.kind);
    assert_eq!(repr.ack.is_some(), packet.flags() & flags::ACK != 0);

    let len = data.len();
    assert_eq!(repr.buffer_len(), len);
    let mut out = vec![0u8; len];
    assert_eq!(repr.emit(&mut out), Ok(len));

    let in_flags = data[2];
    let mut kept_flags = in_flags & flags::ACK;
    if repr.kind == PacketType::Data {
        kept_flags |= in_flags & flags::MORE;
    }
    assert_eq!(out[..2], data[..2], "version or type changed");
    assert_eq!(out[2], kept_flags, "flags: in {in_flags:#04x}");
    assert_eq!(out[3..5], data[3..5], "sequence changed");
    if in_flags & flags::ACK != 0 {
        assert_eq!(out[5..7], data[5..7], "ack number changed");
    } else {
        assert_eq!(out[5..7], [0, 0], "ack number without the ACK flag");
    }
    let body = len - 4;
    assert_eq!(out[7..body], data[7..body], "length or payload changed");
    if out[..body] == data[..body] {
        assert_eq!(out[body..], data[body..], "same header and payload, different CRC");
    }
    let canonical = in_flags == kept_flags && (in_flags & flags::ACK != 0 || data[5..7] == [0, 0]);
    if canonical {
        assert_eq!(out, data, "a canonical packet did not come back byte for byte");
    }
    assert_eq!(Repr::parse(&out), Ok(repr), "emitted bytes parse differently");

    check_payload(&repr);
});

/// The typed payload of a parsed packet reads, and writes back the bytes it was read from.
fn check_payload(repr: &Repr<'_>) {
    let p = repr.payload;
    let mut out = [0u8; 32];
    match repr.kind {
        PacketType::Hello | PacketType::HelloAck => {
            let hello = HelloPayload::parse(p).expect("parse accepted a short HELLO");
            // The cookie is read when all 8 of its bytes are there (HELLO-ACK's too).
            let len = if p.len() >= HelloPayload::LEN_WITH_COOKIE {
                HelloPayload::LEN_WITH_COOKIE
            } else {
                HelloPayload::LEN
            };
            assert_eq!(hello.cookie.is_some(), len == HelloPayload::LEN_WITH_COOKIE);
            assert_eq!(hello.emit(&mut out), Ok(len));
            let mut expected = [0u8; HelloPayload::LEN_WITH_COOKIE];
            expected[..len].copy_from_slice(&p[..len]);
            expected[1] = 0;
            assert_eq!(out[..len], expected[..len], "HELLO payload round trip");
            assert_eq!(HelloPayload::parse(&out[..len]), Some(hello));
        }
        PacketType::Ack => {
            let ack = AckPayload::parse(p).expect("parse accepted a short ACK");
            let n = ack.emit(&mut out).expect("ACK payload fits in 32 bytes");
            assert_eq!(n, ack.encoded_len());
            assert_eq!(out[..n], p[..n], "ACK payload round trip");
            assert_eq!(AckPayload::parse(&out[..n]), Some(ack));
        }
        PacketType::Ping | PacketType::Pong => {
            let ping = PingPayload::parse(p).expect("parse accepted a short PING");
            assert_eq!(ping.emit(&mut out), Ok(PingPayload::LEN));
            assert_eq!(out[..PingPayload::LEN], p[..PingPayload::LEN], "PING payload round trip");
        }
        PacketType::Error => {
            let error = ErrorPayload::parse(p).expect("parse accepted a short ERROR");
            let mut buf = vec![0u8; p.len()];
            assert_eq!(error.emit(&mut buf), Ok(p.len()));
            assert_eq!(buf, p, "ERROR payload round trip");
            assert_eq!(ErrorCode::from(u16::from(error.code)), error.code);
            let _ = error.code.to_string();
        }
        PacketType::Retry => {
            let retry = RetryPayload::parse(p).expect("parse accepted a RETRY of the wrong length");
            assert_eq!(retry.emit(&mut out), Ok(RetryPayload::LEN));
            assert_eq!(out[..RetryPayload::LEN], p[..], "RETRY payload round trip");
        }
        PacketType::Data | PacketType::Close | PacketType::CloseAck => {}
        PacketType::Unknown(kind) => panic!("parse let type {kind:#04x} through"),
    }
}
