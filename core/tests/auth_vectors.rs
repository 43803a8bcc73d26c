//! The keyed-session test vectors of `docs/PROTOCOL.md` section 15, checked both ways: each is
//! built from its inputs and compared byte for byte, and the document's bytes are parsed,
//! verified and opened back to the inputs. `FRAMELINK_PRINT_AUTH_VECTORS=1` prints the vectors
//! as built (to write the document).
#![cfg(feature = "auth")]

#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::collections::BTreeMap;

use framelink_core::auth::{Channel, HELLO_LEN, OpenError, Psk, hello_proof, session_keys};
use framelink_core::wire::{Capabilities, HelloPayload, PacketType, Repr, SeqNumber, VERSION, flags};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// One `auth-vector:` block: its `key: value` lines (several `bytes:` lines concatenated).
fn vectors() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, BTreeMap<String, String>)> = None;
    for line in DOC.lines() {
        if let Some(name) = line.strip_prefix("auth-vector: ") {
            current = Some((name.trim().to_string(), BTreeMap::new()));
        } else if line.starts_with("```") {
            if let Some((name, fields)) = current.take() {
                out.insert(name, fields);
            }
        } else if let Some((_, fields)) = current.as_mut()
            && let Some((key, value)) = line.split_once(": ")
        {
            let entry = fields.entry(key.to_string()).or_insert_with(String::new);
            if !entry.is_empty() {
                entry.push(' ');
            }
            entry.push_str(value.trim());
        }
    }
    out
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|pair| u8::from_str_radix(pair, 16).expect("hex byte")).collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn printing() -> bool {
    std::env::var_os("FRAMELINK_PRINT_AUTH_VECTORS").is_some()
}

/// Prints a vector as built (when asked to); returns whether it did, so that the caller skips
/// the comparison.
fn print(name: &str, lines: &[(&str, &[u8])]) -> bool {
    if !printing() {
        return false;
    }
    println!("auth-vector: {name}");
    for (key, bytes) in lines {
        for chunk in bytes.chunks(16) {
            println!("{key}: {}", to_hex(chunk));
        }
    }
    println!();
    true
}

fn vector(name: &str) -> BTreeMap<String, String> {
    vectors().remove(name).unwrap_or_else(|| panic!("no auth-vector `{name}` in PROTOCOL.md"))
}

fn bytes(vector: &BTreeMap<String, String>, key: &str) -> Vec<u8> {
    hex(vector.get(key).unwrap_or_else(|| panic!("no `{key}:` line")))
}

const SESSION_ID: u32 = 0xDEAD_BEEF;

fn psk() -> Psk {
    Psk::new(core::array::from_fn(|i| i as u8))
}

fn client_nonce() -> [u8; 16] {
    core::array::from_fn(|i| 0xA0 + i as u8)
}

fn server_nonce() -> [u8; 16] {
    core::array::from_fn(|i| 0xB0 + i as u8)
}

fn keys() -> [u8; 32] {
    session_keys(&psk(), SESSION_ID, &client_nonce(), &server_nonce())
}

/// A keyed HELLO (client) or HELLO-ACK (server) with the vectors' limits.
fn hello_packet(kind: PacketType) -> Vec<u8> {
    let client = kind == PacketType::Hello;
    let hello = HelloPayload {
        version: VERSION,
        supports: Capabilities::RETRANSMIT.union(Capabilities::KEYED),
        requires: Capabilities::KEYED,
        max_payload: if client { 1024 } else { 512 },
        window: if client { 16 } else { 8 },
        session_id: SESSION_ID,
        max_message: if client { 65536 } else { 16384 },
        credit: if client { 32768 } else { 8192 },
        cookie: Some([0; 8]),
    };
    let mut payload = [0u8; HELLO_LEN];
    hello.emit(&mut payload).unwrap();
    payload[30..46].copy_from_slice(&if client { client_nonce() } else { server_nonce() });
    let proof = hello_proof(&psk(), kind, &payload[..46], &client_nonce());
    payload[46..].copy_from_slice(&proof);
    let mut out = [0u8; 128];
    let len = Repr::control(kind, &payload).emit(&mut out).unwrap();
    out[..len].to_vec()
}

fn data_packet() -> Vec<u8> {
    let mut out = [0u8; 128];
    let len = Repr::data(SeqNumber(0), Some(SeqNumber(0)), false, b"Hello, Server!").emit(&mut out).unwrap();
    out[..len].to_vec()
}

fn sealed(packet: &[u8], client: bool) -> Vec<u8> {
    let mut buf = [0u8; 256];
    buf[..packet.len()].copy_from_slice(packet);
    let len = Channel::new(keys(), client).seal(&mut buf, packet.len()).unwrap();
    buf[..len].to_vec()
}

#[test]
fn handshake_vectors() {
    for (name, kind) in [("hello", PacketType::Hello), ("hello-ack", PacketType::HelloAck)] {
        let built = hello_packet(kind);
        if print(name, &[("bytes", &built)]) {
            continue;
        }
        let doc = bytes(&vector(name), "bytes");
        assert_eq!(to_hex(&built), to_hex(&doc), "{name}: built from its inputs");
        // Read back: the payload's fields, the nonce, and a proof that verifies.
        let repr = Repr::parse(&doc).unwrap();
        assert_eq!(repr.kind, kind);
        let hello = HelloPayload::parse(repr.payload).unwrap();
        assert_eq!(hello.session_id, SESSION_ID);
        assert!(hello.requires.contains(Capabilities::KEYED));
        let nonce = if kind == PacketType::Hello { client_nonce() } else { server_nonce() };
        assert_eq!(repr.payload[30..46], nonce);
        let proof = hello_proof(&psk(), kind, &repr.payload[..46], &client_nonce());
        assert_eq!(repr.payload[46..62], proof);
        let other = hello_proof(&Psk::new([0xEE; 32]), kind, &repr.payload[..46], &client_nonce());
        assert_ne!(repr.payload[46..62], other, "another key gives another proof");
    }
}

#[test]
fn session_key_vector() {
    if print("keys", &[("bytes", &keys())]) {
        return;
    }
    assert_eq!(to_hex(&keys()), to_hex(&bytes(&vector("keys"), "bytes")));
}

#[test]
fn sealed_packet_vectors() {
    let mut ack = [0u8; 64];
    let ack_len = Repr {
        kind: PacketType::Ack,
        seq: SeqNumber(0),
        ack: Some(SeqNumber(1)),
        more: false,
        payload: &8192u32.to_le_bytes(),
    }
    .emit(&mut ack)
    .unwrap();
    let cases = [("sealed-data", data_packet(), true), ("sealed-ack", ack[..ack_len].to_vec(), false)];
    for (name, plain, client) in cases {
        let built = sealed(&plain, client);
        if print(name, &[("plain", &plain), ("bytes", &built)]) {
            continue;
        }
        let vector = vector(name);
        assert_eq!(to_hex(&bytes(&vector, "plain")), to_hex(&plain), "{name}: its plain packet");
        let doc = bytes(&vector, "bytes");
        assert_eq!(to_hex(&built), to_hex(&doc), "{name}: sealed from its inputs");
        assert_ne!(doc[2] & flags::SEALED, 0);
        // Opened by the other side: the plain packet's payload, once; not twice, nor altered.
        let mut receiver = Channel::new(keys(), !client);
        let mut room = [0u8; 256];
        let repr = Repr::parse(&doc).unwrap();
        let opened = receiver.open(&repr, &mut room).unwrap();
        let original = Repr::parse(&plain).unwrap();
        assert_eq!(
            (opened.kind, opened.seq, opened.ack, opened.payload),
            (original.kind, original.seq, original.ack, original.payload)
        );
        assert_eq!(receiver.open(&repr, &mut room).unwrap_err(), OpenError::Replayed);
        let mut altered = doc.clone();
        altered[9] ^= 1;
        let fixed = framelink_core::wire::crc32c(&altered[..altered.len() - 4]);
        let end = altered.len() - 4;
        altered[end..].copy_from_slice(&fixed.to_le_bytes());
        let mut fresh = Channel::new(keys(), !client);
        assert_eq!(fresh.open(&Repr::parse(&altered).unwrap(), &mut room).unwrap_err(), OpenError::Forged);
        // Reflected to its sender: the other direction's key.
        let mut sender = Channel::new(keys(), client);
        assert_eq!(sender.open(&repr, &mut room).unwrap_err(), OpenError::Forged);
    }
}
