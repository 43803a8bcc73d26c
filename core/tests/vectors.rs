//! The hex test vectors of `docs/PROTOCOL.md`, checked against the code.
//!
//! Every vector block in the document is parsed; its bytes are decoded with the real decoder
//! (`Repr::parse` or the framing's decoder), the decoded packet is compared with the `fields:`
//! line, a packet built from the `fields:` line is emitted and compared byte for byte, and the
//! decoded packet is encoded again and compared too. The tables of packet types, error codes and
//! limits and the CRC check value are read from the document as well, so the specification and
//! the code cannot drift apart silently.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::collections::BTreeMap;

use framelink_core::framing::datagram::session_tag;
use framelink_core::framing::{
    Cobs, CobsDecoder, Datagram, DatagramDecoder, Decoder, Encoder, LengthDelimited, LengthDelimitedDecoder,
};
use framelink_core::wire::{
    AckPayload, CRC_LEN, Capabilities, ErrorCode, ErrorPayload, HEADER_LEN, HelloPayload, MAX_PACKET,
    MAX_PAYLOAD, OVERHEAD, Packet, PacketType, PingPayload, Repr, RetryPayload, SeqNumber, VERSION, crc32c,
    crc32c_portable, flags,
};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The largest frame any vector uses; the decoders are sized with it.
const LIMIT: usize = 1024;

const FRAMINGS: [&str; 4] = ["packet", "length-delimited", "cobs", "datagram"];

/// One vector block of the document.
#[derive(Debug)]
struct Vector {
    name: String,
    framing: String,
    fields: BTreeMap<String, String>,
    /// The `packet:` line of a framed vector.
    packet: Option<Vec<u8>>,
    /// The bytes on the wire (all `hex:` lines).
    bytes: Vec<u8>,
    /// The session tag of a datagram vector.
    tag: Option<u32>,
}

impl Vector {
    fn field(&self, key: &str) -> &str {
        self.fields.get(key).unwrap_or_else(|| panic!("vector {}: no field `{key}`", self.name))
    }

    fn num(&self, key: &str) -> u64 {
        let value = self.field(key);
        parse_num(value).unwrap_or_else(|| panic!("vector {}: `{key}={value}` is not a number", self.name))
    }

    fn u16(&self, key: &str) -> u16 {
        u16::try_from(self.num(key)).unwrap_or_else(|_| panic!("vector {}: `{key}` over u16", self.name))
    }

    fn u32(&self, key: &str) -> u32 {
        u32::try_from(self.num(key)).unwrap_or_else(|_| panic!("vector {}: `{key}` over u32", self.name))
    }

    fn kind(&self) -> PacketType {
        type_from_name(self.field("type"))
            .unwrap_or_else(|| panic!("vector {}: unknown type {}", self.name, self.field("type")))
    }
}

fn parse_num(value: &str) -> Option<u64> {
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

fn parse_hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| {
            assert_eq!(pair.len(), 2, "hex byte `{pair}` is not two digits");
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex byte `{pair}`"))
        })
        .collect()
}

/// Hex digits without spaces (PING padding).
fn parse_hex_run(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex run `{text}`");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex `{text}`")))
        .collect()
}

/// Splits a `fields:` line into `key=value` pairs; values may be double-quoted strings with
/// spaces (the quotes are removed).
fn parse_fields(line: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or_else(|| panic!("field without `=`: {rest}"));
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or_else(|| panic!("unterminated string: {after}"));
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        let previous = fields.insert(key.trim().to_owned(), value.to_owned());
        assert!(previous.is_none(), "field `{key}` given twice");
        rest = after.trim_start();
    }
    fields
}

/// Every vector of the document: blocks starting with `vector:` inside ```` ```text ```` fences.
fn vectors() -> Vec<Vector> {
    let mut out: Vec<Vector> = Vec::new();
    let mut in_text_block = false;
    let mut current: Option<Vector> = None;
    for line in DOC.lines() {
        if line.starts_with("```") {
            in_text_block = !in_text_block && line.trim() == "```text";
            out.extend(current.take());
            continue;
        }
        if !in_text_block {
            continue;
        }
        let Some((key, value)) = line.split_once(": ") else {
            out.extend(current.take());
            continue;
        };
        if key == "vector" {
            out.extend(current.take());
            current = Some(Vector {
                name: value.trim().to_owned(),
                framing: String::new(),
                fields: BTreeMap::new(),
                packet: None,
                bytes: Vec::new(),
                tag: None,
            });
            continue;
        }
        let Some(vector) = current.as_mut() else { continue };
        match key {
            "framing" => vector.framing = value.trim().to_owned(),
            "fields" => vector.fields = parse_fields(value),
            "packet" => vector.packet.get_or_insert_with(Vec::new).extend(parse_hex(value)),
            "hex" => vector.bytes.extend(parse_hex(value)),
            "tag" => vector.tag = parse_num(value.trim()).and_then(|t| u32::try_from(t).ok()),
            other => panic!("vector {}: unknown line `{other}:`", vector.name),
        }
    }
    out.extend(current);
    for v in &out {
        assert!(FRAMINGS.contains(&v.framing.as_str()), "vector {}: framing `{}`", v.name, v.framing);
        assert!(!v.bytes.is_empty(), "vector {}: no hex", v.name);
        assert_eq!(v.packet.is_some(), v.framing != "packet", "vector {}: packet: line", v.name);
        assert_eq!(v.tag.is_some(), v.framing == "datagram", "vector {}: tag: line", v.name);
    }
    out
}

const TYPE_NAMES: [(&str, PacketType); 10] = [
    ("HELLO", PacketType::Hello),
    ("HELLO-ACK", PacketType::HelloAck),
    ("DATA", PacketType::Data),
    ("ACK", PacketType::Ack),
    ("PING", PacketType::Ping),
    ("PONG", PacketType::Pong),
    ("CLOSE", PacketType::Close),
    ("CLOSE-ACK", PacketType::CloseAck),
    ("ERROR", PacketType::Error),
    ("RETRY", PacketType::Retry),
];

fn type_from_name(name: &str) -> Option<PacketType> {
    TYPE_NAMES.iter().find(|(n, _)| *n == name).map(|&(_, kind)| kind)
}

fn parse_flags(text: &str) -> u8 {
    if text == "none" {
        return 0;
    }
    text.split('|')
        .map(|flag| match flag {
            "ACK" => flags::ACK,
            "MORE" => flags::MORE,
            other => panic!("unknown flag `{other}`"),
        })
        .fold(0, |all, bit| all | bit)
}

/// The payload the `fields:` line describes, built with the payload types' `emit`.
fn payload_from_fields(v: &Vector) -> Vec<u8> {
    let mut buf = vec![0u8; LIMIT];
    let len = match v.kind() {
        PacketType::Hello | PacketType::HelloAck => {
            let version = u8::try_from(v.num("version")).expect("version is a byte");
            HelloPayload {
                version,
                supports: Capabilities(v.u16("supports")),
                requires: Capabilities(v.u16("requires")),
                max_payload: v.u16("max_payload"),
                window: v.u16("window"),
                session_id: v.u32("session_id"),
                max_message: v.u32("max_message"),
                credit: v.u32("credit"),
                cookie: v.fields.get("cookie").map(|c| cookie(c)),
            }
            .emit(&mut buf)
            .unwrap()
        }
        PacketType::Retry => RetryPayload { cookie: cookie(v.field("cookie")) }.emit(&mut buf).unwrap(),
        PacketType::Ack => {
            let sack = if v.fields.contains_key("sack") { v.u32("sack") } else { 0 };
            AckPayload { credit: v.u32("credit"), sack }.emit(&mut buf).unwrap()
        }
        PacketType::Ping | PacketType::Pong => {
            let fixed =
                PingPayload { timestamp: v.num("timestamp"), token: v.u32("token") }.emit(&mut buf).unwrap();
            let padding = parse_hex_run(v.field("padding"));
            buf[fixed..fixed + padding.len()].copy_from_slice(&padding);
            fixed + padding.len()
        }
        PacketType::Error => ErrorPayload {
            code: ErrorCode::from(v.u16("code")),
            detail: v.u32("detail"),
            text: v.field("text").as_bytes(),
        }
        .emit(&mut buf)
        .unwrap(),
        PacketType::Data | PacketType::Close | PacketType::CloseAck => {
            let text = v.field("payload").as_bytes();
            buf[..text.len()].copy_from_slice(text);
            text.len()
        }
        PacketType::Unknown(kind) => panic!("vector {}: unknown type {kind}", v.name),
    };
    buf.truncate(len);
    buf
}

/// The keys each type's `fields:` line must have, beyond type, seq, ack and flags.
fn payload_keys(kind: PacketType) -> &'static [&'static str] {
    match kind {
        PacketType::Hello | PacketType::HelloAck => &[
            "version",
            "supports",
            "requires",
            "max_payload",
            "window",
            "session_id",
            "max_message",
            "credit",
        ],
        PacketType::Ack => &["credit"],
        PacketType::Ping | PacketType::Pong => &["timestamp", "token", "padding"],
        PacketType::Error => &["code", "detail", "text"],
        PacketType::Retry => &["cookie"],
        _ => &["payload"],
    }
}

/// Checks the payload struct of `repr` field by field against the vector.
fn check_payload_fields(v: &Vector, repr: &Repr<'_>) {
    let name = &v.name;
    match repr.kind {
        PacketType::Hello | PacketType::HelloAck => {
            let hello = HelloPayload::parse(repr.payload).expect("HELLO payload parses");
            assert_eq!(u64::from(hello.version), v.num("version"), "{name}: version");
            assert_eq!(hello.supports, Capabilities(v.u16("supports")), "{name}: supports");
            assert_eq!(hello.requires, Capabilities(v.u16("requires")), "{name}: requires");
            assert_eq!(hello.max_payload, v.u16("max_payload"), "{name}: max_payload");
            assert_eq!(hello.window, v.u16("window"), "{name}: window");
            assert_eq!(hello.session_id, v.u32("session_id"), "{name}: session_id");
            assert_eq!(hello.max_message, v.u32("max_message"), "{name}: max_message");
            assert_eq!(hello.credit, v.u32("credit"), "{name}: credit");
            assert_eq!(hello.cookie, v.fields.get("cookie").map(|c| cookie(c)), "{name}: cookie");
            assert_eq!(repr.payload.len(), hello.encoded_len(), "{name}: HELLO payload length");
            assert_eq!(repr.payload[1], 0, "{name}: reserved byte");
        }
        PacketType::Ack => {
            let ack = AckPayload::parse(repr.payload).expect("ACK payload parses");
            assert_eq!(ack.credit, v.u32("credit"), "{name}: credit");
            let sack = v.fields.contains_key("sack").then(|| v.u32("sack"));
            assert_eq!(ack.sack, sack.unwrap_or(0), "{name}: sack");
            // The bitmap is sent only when it is non-zero (5.2).
            assert_eq!(sack.is_some_and(|s| s != 0), ack.sack != 0, "{name}: a sack key iff a bitmap");
            assert_eq!(repr.payload.len(), ack.encoded_len(), "{name}: ACK payload length");
            assert!(repr.ack.is_some(), "{name}: an ACK packet has flag ACK");
        }
        PacketType::Ping | PacketType::Pong => {
            let ping = PingPayload::parse(repr.payload).expect("PING payload parses");
            assert_eq!(ping.timestamp, v.num("timestamp"), "{name}: timestamp");
            assert_eq!(ping.token, v.u32("token"), "{name}: token");
            let padding = parse_hex_run(v.field("padding"));
            assert_eq!(&repr.payload[PingPayload::LEN..], &padding[..], "{name}: padding");
        }
        PacketType::Error => {
            let error = ErrorPayload::parse(repr.payload).expect("ERROR payload parses");
            assert_eq!(u16::from(error.code), v.u16("code"), "{name}: code");
            assert_eq!(error.detail, v.u32("detail"), "{name}: detail");
            assert_eq!(error.text, v.field("text").as_bytes(), "{name}: text");
        }
        PacketType::Data | PacketType::Close | PacketType::CloseAck => {
            assert_eq!(repr.payload, v.field("payload").as_bytes(), "{name}: payload");
        }
        PacketType::Retry => {
            let retry = RetryPayload::parse(repr.payload).expect("RETRY payload parses");
            assert_eq!(retry.cookie, cookie(v.field("cookie")), "{name}: cookie");
        }
        PacketType::Unknown(kind) => panic!("{name}: unknown type {kind}"),
    }
}

/// A cookie written as 16 hex digits.
fn cookie(text: &str) -> [u8; RetryPayload::LEN] {
    parse_hex_run(text).try_into().unwrap_or_else(|_| panic!("cookie `{text}` is not 8 bytes"))
}

/// The CRC-32C exactly as section 6 of the document describes it, bit by bit.
fn reference_crc32c(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    crc ^ 0xFFFF_FFFF
}

/// Checks a bare packet against the vector's fields: decode, compare, build, re-emit.
fn check_packet(v: &Vector, bytes: &[u8]) {
    let name = &v.name;

    // The header and trailer as raw bytes, read through the lenient view.
    let view = Packet::new_checked(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.version(), VERSION, "{name}: version byte");
    assert_eq!(view.kind(), v.kind(), "{name}: type byte");
    assert_eq!(view.flags(), parse_flags(v.field("flags")), "{name}: flags byte");
    assert_eq!(view.seq(), SeqNumber(v.u16("seq")), "{name}: seq");
    assert_eq!(view.ack(), SeqNumber(v.u16("ack")), "{name}: ack field");
    assert_eq!(usize::from(view.payload_len()), bytes.len() - OVERHEAD, "{name}: len");
    let trailer = u32::from_le_bytes(bytes[bytes.len() - CRC_LEN..].try_into().unwrap());
    assert_eq!(trailer, reference_crc32c(&bytes[..bytes.len() - CRC_LEN]), "{name}: CRC trailer");
    assert_eq!(trailer, view.compute_crc(), "{name}: CRC trailer vs crate");
    assert_eq!(trailer, crc32c_portable(&bytes[..bytes.len() - CRC_LEN]), "{name}: CRC trailer vs portable");

    // Strict decoding.
    let repr = Repr::parse(bytes).unwrap_or_else(|e| panic!("{name}: Repr::parse: {e}"));
    let flag_bits = parse_flags(v.field("flags"));
    assert_eq!(repr.kind, v.kind(), "{name}: kind");
    assert_eq!(repr.seq, SeqNumber(v.u16("seq")), "{name}: seq");
    let ack = (flag_bits & flags::ACK != 0).then(|| SeqNumber(v.u16("ack")));
    assert_eq!(repr.ack, ack, "{name}: ack");
    assert_eq!(repr.more, flag_bits & flags::MORE != 0, "{name}: more");
    check_payload_fields(v, &repr);

    // Every field of the line is one this type has, and the line has all of them.
    let mut expected_keys = vec!["type", "seq", "ack", "flags"];
    expected_keys.extend(payload_keys(v.kind()));
    // The optional keys: a HELLO's cookie, an ACK's bitmap.
    for (kind, key) in [(PacketType::Hello, "cookie"), (PacketType::Ack, "sack")] {
        if v.kind() == kind && v.fields.contains_key(key) {
            expected_keys.push(key);
        }
    }
    expected_keys.sort_unstable();
    let keys: Vec<&str> = v.fields.keys().map(String::as_str).collect();
    assert_eq!(keys, expected_keys, "{name}: field keys");

    // The packet the fields describe, emitted, is these bytes.
    let payload = payload_from_fields(v);
    let built =
        Repr { kind: v.kind(), seq: SeqNumber(v.u16("seq")), ack, more: repr.more, payload: &payload };
    assert_eq!(built, repr, "{name}: the packet the fields describe");
    let mut out = vec![0u8; LIMIT];
    let len = built.emit(&mut out).unwrap();
    assert_eq!(&out[..len], bytes, "{name}: emitted from the fields");

    // And the decoded packet re-emits byte for byte.
    let len = repr.emit(&mut out).unwrap();
    assert_eq!(&out[..len], bytes, "{name}: re-emitted after decoding");
}

/// Decodes a framed vector with its framing's decoder, all at once and byte by byte; returns
/// the packet (re-emitted from the decoded `Repr`).
fn decode_frame(v: &Vector) -> Vec<u8> {
    fn run<D: Decoder>(name: &str, decoder: &mut D, input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            while !rest.is_empty() {
                let decoded = decoder.decode(rest);
                assert!(decoded.consumed > 0, "{name}: decoder made no progress");
                rest = &rest[decoded.consumed..];
                if let Some(frame) = decoded.frame {
                    let repr = frame.unwrap_or_else(|e| panic!("{name}: decoding: {e}"));
                    let mut out = vec![0u8; LIMIT];
                    let len = repr.emit(&mut out).unwrap();
                    out.truncate(len);
                    packets.push(out);
                }
            }
        }
        packets
    }

    let name = v.name.as_str();
    let whole = v.bytes.len();
    let mut results = Vec::new();
    match v.framing.as_str() {
        "length-delimited" => {
            for chunk in [whole, 1] {
                let mut decoder = LengthDelimitedDecoder::<LIMIT>::new();
                results.push(run(name, &mut decoder, &v.bytes, chunk));
                assert!(decoder.is_idle(), "{name}: decoder left mid-frame");
            }
        }
        "cobs" => {
            // As sent, byte by byte, and after a leading delimiter (a sender may send one).
            let mut with_leading_zero = vec![Cobs::DELIMITER];
            with_leading_zero.extend(&v.bytes);
            for (input, chunk) in [(&v.bytes, whole), (&v.bytes, 1), (&with_leading_zero, whole)] {
                let mut decoder = CobsDecoder::<LIMIT>::new();
                results.push(run(name, &mut decoder, input, chunk));
                assert!(decoder.is_idle(), "{name}: decoder left mid-frame");
                assert_eq!(decoder.stats().errors, 0, "{name}: decoder errors");
            }
        }
        "datagram" => {
            let mut decoder = DatagramDecoder::new(LIMIT);
            results.push(run(name, &mut decoder, &v.bytes, whole));
        }
        other => panic!("{name}: not a framing: {other}"),
    }
    for packets in &results {
        assert_eq!(packets.len(), 1, "{name}: one frame, one packet");
        assert_eq!(packets[0], results[0][0], "{name}: every split decodes the same");
    }
    results.swap_remove(0).swap_remove(0)
}

/// Encodes `packet` with the vector's framing.
fn encode_frame(v: &Vector, packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; LIMIT];
    let len = match v.framing.as_str() {
        "length-delimited" => LengthDelimited::encode(packet, &mut out),
        "cobs" => Cobs::encode(packet, &mut out),
        "datagram" => Datagram::encode_tagged(v.tag.expect("a datagram vector has a tag"), packet, &mut out),
        other => panic!("{}: not a framing: {other}", v.name),
    }
    .unwrap();
    out.truncate(len);
    out
}

/// Checks one vector of any framing.
fn check_vector(v: &Vector) {
    if v.framing == "packet" {
        return check_packet(v, &v.bytes);
    }
    let packet = decode_frame(v);
    assert_eq!(Some(&packet), v.packet.as_ref(), "{}: the packet inside the frame", v.name);
    check_packet(v, &packet);
    assert_eq!(encode_frame(v, &packet), v.bytes, "{}: re-encoded frame", v.name);
}

/// Checks every bare-packet vector of `kind`; there must be at least one.
fn check_packet_vectors(kind: PacketType) {
    let all = vectors();
    let of_kind: Vec<&Vector> = all.iter().filter(|v| v.framing == "packet" && v.kind() == kind).collect();
    assert!(!of_kind.is_empty(), "no packet vector of type {kind:?}");
    for v in of_kind {
        check_vector(v);
    }
}

/// Checks every vector of `framing`; there must be at least one.
fn check_framing_vectors(framing: &str) -> Vec<Vector> {
    let of_framing: Vec<Vector> = vectors().into_iter().filter(|v| v.framing == framing).collect();
    assert!(!of_framing.is_empty(), "no vector with framing {framing}");
    for v in &of_framing {
        check_vector(v);
    }
    of_framing
}

#[test]
fn hello() {
    check_packet_vectors(PacketType::Hello);
}

#[test]
fn hello_ack() {
    check_packet_vectors(PacketType::HelloAck);
}

#[test]
fn data() {
    check_packet_vectors(PacketType::Data);
    let all = vectors();
    let both = flags::ACK | flags::MORE;
    assert!(
        all.iter().any(|v| {
            v.framing == "packet" && v.kind() == PacketType::Data && parse_flags(v.field("flags")) == both
        }),
        "a DATA vector with flags ACK and MORE"
    );
}

#[test]
fn ack() {
    check_packet_vectors(PacketType::Ack);
    let all = vectors();
    assert!(
        all.iter()
            .any(|v| v.framing == "packet" && v.kind() == PacketType::Ack && v.fields.contains_key("sack")),
        "an ACK vector with a selective-ack bitmap"
    );
}

#[test]
fn ping() {
    check_packet_vectors(PacketType::Ping);
}

#[test]
fn pong() {
    check_packet_vectors(PacketType::Pong);
}

#[test]
fn close() {
    check_packet_vectors(PacketType::Close);
}

#[test]
fn close_ack() {
    check_packet_vectors(PacketType::CloseAck);
}

#[test]
fn retry() {
    check_packet_vectors(PacketType::Retry);
}

#[test]
fn error() {
    check_packet_vectors(PacketType::Error);
    let all = vectors();
    assert!(
        all.iter()
            .any(|v| v.framing == "packet" && v.kind() == PacketType::Error && !v.field("text").is_empty()),
        "an ERROR vector with text"
    );
}

#[test]
fn length_delimited() {
    for v in check_framing_vectors("length-delimited") {
        let packet = v.packet.as_ref().unwrap();
        assert_eq!(v.bytes[..4], (packet.len() as u32).to_le_bytes(), "{}: prefix", v.name);
    }
}

#[test]
fn cobs() {
    let vectors = check_framing_vectors("cobs");
    assert!(
        vectors.iter().any(|v| v.packet.as_ref().unwrap().contains(&0)),
        "a COBS vector whose packet contains 0x00, so stuffing shows"
    );
    for v in &vectors {
        let (last, body) = v.bytes.split_last().unwrap();
        assert_eq!(*last, Cobs::DELIMITER, "{}: ends with the delimiter", v.name);
        assert!(!body.contains(&0), "{}: no 0x00 inside the frame", v.name);
    }
    // A packet whose last block is full (254 non-zero bytes to its end): the frame ends with
    // that block and the delimiter, no empty block between (9.2).
    let full = vectors
        .iter()
        .find(|v| {
            let packet = v.packet.as_ref().unwrap();
            packet.len() >= 254 && !packet[packet.len() - 254..].contains(&0)
        })
        .expect("a COBS vector whose packet ends in a full 254-byte block");
    let packet = full.packet.as_ref().unwrap();
    let frame = &full.bytes;
    assert_eq!(frame[frame.len() - 256], 0xFF, "{}: the last code is a full block's", full.name);
    assert_eq!(frame[frame.len() - 255..frame.len() - 1], packet[packet.len() - 254..], "{}", full.name);
    // A decoder given an empty block there anyway (code 0x01) yields the same packet.
    let mut with_empty_block = frame[..frame.len() - 1].to_vec();
    with_empty_block.extend([0x01, Cobs::DELIMITER]);
    let mut decoder = CobsDecoder::<LIMIT>::new();
    let decoded = decoder.decode(&with_empty_block);
    assert_eq!(decoded.consumed, with_empty_block.len());
    let repr = decoded.frame.expect("a frame").expect("a packet");
    let mut out = vec![0u8; LIMIT];
    let len = repr.emit(&mut out).unwrap();
    assert_eq!(&out[..len], &packet[..], "{}: decoded with a trailing empty block", full.name);
}

#[test]
fn datagram() {
    let vectors = check_framing_vectors("datagram");
    for v in &vectors {
        let tag = v.tag.unwrap();
        assert_eq!(session_tag(&v.bytes), Some(tag), "{}: the tag", v.name);
        assert_eq!(v.bytes[4..], v.packet.as_ref().unwrap()[..], "{}: the tag, then the packet", v.name);
    }
    for kind in [PacketType::Data, PacketType::Retry] {
        assert!(vectors.iter().any(|v| v.kind() == kind), "a datagram vector of type {kind:?}");
    }
}

/// Section 7's checks name every type the code knows and every payload layout it checks.
#[test]
fn receive_checks_cover_every_type() {
    let rows = table("| # | check |");
    let types = &rows.iter().find(|row| row[1] == "type").expect("the type check")[2];
    let (low, high) = types
        .strip_prefix("byte 1 is not ")
        .and_then(|range| range.split_once('–'))
        .expect("byte 1 is not 0x..–0x..");
    let (low, high) = (parse_num(low).unwrap() as u8, parse_num(high).unwrap() as u8);
    for value in 0..=u8::MAX {
        let known = !matches!(PacketType::from(value), PacketType::Unknown(_));
        assert_eq!(known, (low..=high).contains(&value), "type {value:#04x}");
    }
    let layouts = &rows.iter().find(|row| row[1] == "payload layout").expect("the layout check")[2];
    for (name, _) in TYPE_NAMES {
        assert!(layouts.contains(name), "the payload layout check names {name}");
    }
    assert!(layouts.contains("RETRY other than exactly 8"), "{layouts}");
}

#[test]
fn every_type_and_framing_is_covered() {
    let all = vectors();
    assert!(all.len() >= 10, "only {} vectors", all.len());
    let mut names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "vector names are unique");
    for kind in PacketType::ALL {
        assert!(
            all.iter().any(|v| v.framing == "packet" && v.kind() == kind),
            "no packet vector of type {kind:?}"
        );
    }
    for framing in FRAMINGS {
        assert!(all.iter().any(|v| v.framing == framing), "no vector with framing {framing}");
    }
    // The names the document uses are the code's types, one for one.
    assert_eq!(TYPE_NAMES.len(), PacketType::ALL.len());
    for (kind, (_, named)) in PacketType::ALL.iter().zip(TYPE_NAMES) {
        assert_eq!(*kind, named);
    }
}

#[test]
fn every_vector_checks_out() {
    for v in vectors() {
        check_vector(&v);
    }
}

/// The rows of the first Markdown table whose header row starts with `header`: the cells of
/// each row, trimmed, with backticks removed.
fn table(header: &str) -> Vec<Vec<String>> {
    let mut lines = DOC.lines().skip_while(|line| !line.starts_with(header));
    assert!(lines.next().is_some(), "no table headed `{header}`");
    lines
        .skip(1) // the |---| row
        .take_while(|line| line.starts_with('|'))
        .map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().replace('`', "")).collect())
        .collect()
}

#[test]
fn crc_check_value() {
    let line = DOC
        .lines()
        .find_map(|line| line.strip_prefix("check: crc32c(\""))
        .expect("the check line of section 6");
    let (input, value) = line.split_once("\") = ").expect("check: crc32c(\"...\") = 0x...");
    let value = u32::try_from(parse_num(value.trim()).expect("a number")).unwrap();
    assert_eq!(input, "123456789");
    assert_eq!(value, 0xE306_9283);
    assert_eq!(crc32c(input.as_bytes()), value);
    assert_eq!(crc32c_portable(input.as_bytes()), value);
    assert_eq!(reference_crc32c(input.as_bytes()), value);
    assert_eq!(crc32c(&[]), 0);
    assert_eq!(crc32c_portable(&[]), 0);
}

#[test]
fn packet_type_table_matches_the_code() {
    let rows = table("| value | type |");
    assert_eq!(rows.len(), PacketType::ALL.len());
    for row in rows {
        let value = u8::try_from(parse_num(&row[0]).expect("a type value")).unwrap();
        let named = type_from_name(&row[1]).unwrap_or_else(|| panic!("unknown type name {}", row[1]));
        assert_eq!(PacketType::from(value), named, "type {}", row[1]);
    }
}

#[test]
fn error_code_table_matches_the_code() {
    let rows = table("| code | name |");
    assert_eq!(rows.len(), 9);
    for row in rows {
        let code: u16 = row[0].parse().expect("an error code");
        let name = format!("{:?}", ErrorCode::from(code));
        // Code 9 (keyed sessions) is named only with the `auth` feature.
        if code == 9 && cfg!(not(feature = "auth")) {
            assert_eq!(name, "Unknown(9)");
            continue;
        }
        assert_eq!(name, row[1], "error code {code}");
    }
    assert_eq!(ErrorCode::from(0), ErrorCode::Unknown(0));
    assert_eq!(ErrorCode::from(10), ErrorCode::Unknown(10));
}

#[test]
fn flag_and_capability_tables_match_the_code() {
    let rows = table("| bit | name | meaning |");
    assert_eq!(rows[0][..2], ["0x01", "ACK"]);
    assert_eq!(rows[1][..2], ["0x02", "MORE"]);
    assert_eq!(rows[2][..2], ["0x04", "SEALED"]);
    assert_eq!((flags::ACK, flags::MORE, flags::SEALED), (0x01, 0x02, 0x04));
    let caps: Vec<Vec<String>> = DOC
        .lines()
        .filter(|line| {
            ["| `0x0001` |", "| `0x0002` |", "| `0x0004` |"].iter().any(|row| line.starts_with(row))
        })
        .map(|line| line.trim_matches('|').split('|').map(|c| c.trim().replace('`', "")).collect())
        .collect();
    assert_eq!(caps.len(), 3);
    assert_eq!(caps[0][1], "RETRANSMIT");
    assert_eq!(caps[1][1], "KEYED");
    assert_eq!(caps[2][1], "AES_256_GCM");
    assert_eq!(Capabilities::RETRANSMIT, Capabilities(0x0001));
    assert_eq!(Capabilities::KEYED, Capabilities(0x0002));
    assert_eq!(Capabilities::AES_256_GCM, Capabilities(0x0004));
    let defined = Capabilities::RETRANSMIT.union(Capabilities::KEYED).union(Capabilities::AES_256_GCM);
    assert_eq!(Capabilities::KNOWN, defined);
}

#[test]
fn limits_table_matches_the_code() {
    let rows = table("| limit | constant");
    let constants = [
        ("HEADER_LEN", HEADER_LEN),
        ("CRC_LEN", CRC_LEN),
        ("OVERHEAD", OVERHEAD),
        ("MAX_PAYLOAD", MAX_PAYLOAD),
        ("MAX_PACKET", MAX_PACKET),
    ];
    assert_eq!(rows.len(), constants.len());
    for (row, (name, value)) in rows.iter().zip(constants) {
        assert_eq!(row[1], name);
        assert_eq!(row[2].parse::<usize>().unwrap(), value, "{name}");
    }
}
