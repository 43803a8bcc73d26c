//! The keyed-session test vectors of `docs/PROTOCOL.md` section 15, checked both ways: each is
//! built from its inputs and compared byte for byte, and the document's bytes are parsed,
//! verified and opened back to the inputs. `FRAMELINK_PRINT_AUTH_VECTORS=1` prints the vectors
//! as built (to write the document).
#![cfg(feature = "auth")]

#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use std::collections::BTreeMap;

#[cfg(feature = "aes-gcm")]
use framelink_core::auth::session_keys_aes_256_gcm;
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

#[cfg(feature = "aes-gcm")]
fn keys_aes() -> [u8; 64] {
    session_keys_aes_256_gcm(&psk(), SESSION_ID, &client_nonce(), &server_nonce())
}

/// A keyed HELLO (client) or HELLO-ACK (server) with the vectors' limits; with `aes`, the
/// client offers AES-256-GCM and the server chooses it.
fn hello_packet(kind: PacketType, aes: bool) -> Vec<u8> {
    let client = kind == PacketType::Hello;
    let suites = if aes { Capabilities::AES_256_GCM } else { Capabilities::NONE };
    let hello = HelloPayload {
        version: VERSION,
        supports: Capabilities::RETRANSMIT.union(Capabilities::KEYED).union(suites),
        requires: Capabilities::KEYED.union(if client { Capabilities::NONE } else { suites }),
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

fn sealed(packet: &[u8], channel: &mut Channel) -> Vec<u8> {
    let mut buf = [0u8; 256];
    buf[..packet.len()].copy_from_slice(packet);
    let len = channel.seal(&mut buf, packet.len()).unwrap();
    buf[..len].to_vec()
}

fn ascon_channel(client: bool) -> Channel {
    Channel::new(keys(), client)
}

fn ack_packet() -> Vec<u8> {
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
    ack[..ack_len].to_vec()
}

#[test]
fn handshake_vectors() {
    let cases = [
        ("hello", PacketType::Hello, false),
        ("hello-ack", PacketType::HelloAck, false),
        ("hello-aes", PacketType::Hello, true),
        ("hello-ack-aes", PacketType::HelloAck, true),
    ];
    for (name, kind, aes) in cases {
        let built = hello_packet(kind, aes);
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
        assert_eq!(hello.supports.contains(Capabilities::AES_256_GCM), aes, "{name}: offered");
        let chosen = kind == PacketType::HelloAck && aes;
        assert_eq!(hello.requires.contains(Capabilities::AES_256_GCM), chosen, "{name}: chosen");
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

#[cfg(feature = "aes-gcm")]
#[test]
fn aes_session_key_vector() {
    if print("keys-aes", &[("bytes", &keys_aes())]) {
        return;
    }
    assert_eq!(to_hex(&keys_aes()), to_hex(&bytes(&vector("keys-aes"), "bytes")));
    assert_ne!(keys_aes()[..32], keys(), "the keys are bound to the suite");
}

#[test]
fn sealed_packet_vectors() {
    let cases = [("sealed-data", data_packet(), true), ("sealed-ack", ack_packet(), false)];
    for (name, plain, client) in cases {
        check_sealed(name, &plain, client, ascon_channel);
    }
}

#[cfg(feature = "aes-gcm")]
#[test]
fn aes_sealed_packet_vectors() {
    let aes_channel = |client| Channel::new_aes_256_gcm(keys_aes(), client);
    let cases = [("sealed-data-aes", data_packet(), true), ("sealed-ack-aes", ack_packet(), false)];
    for (name, plain, client) in cases {
        check_sealed(name, &plain, client, aes_channel);
        if !printing() {
            check_against_rustcrypto(name, &plain, client);
        }
    }
}

/// The AES vectors checked against another implementation of AES-256-GCM (RustCrypto's): the
/// same key, nonce (direction, 3 zero bytes, packet number 0) and header give the same
/// ciphertext and tag.
#[cfg(feature = "aes-gcm")]
fn check_against_rustcrypto(name: &str, plain: &[u8], client: bool) {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    let doc = bytes(&vector(name), "bytes");
    let keys = keys_aes();
    let at = if client { 0 } else { 32 };
    let key: [u8; 32] = keys[at..at + 32].try_into().unwrap();
    let mut nonce = [0u8; 12];
    nonce[0] = u8::from(!client);
    let cipher = aes_gcm::Aes256Gcm::new(&key.into());
    let mut payload = Repr::parse(plain).unwrap().payload.to_vec();
    let header = &doc[..9];
    let tag = cipher.encrypt_inout_detached(&nonce.into(), header, payload.as_mut_slice().into()).unwrap();
    let n = payload.len();
    assert_eq!(to_hex(&doc[9..9 + n]), to_hex(&payload), "{name}: ciphertext");
    assert_eq!(doc[9 + n..9 + n + 8], [0; 8], "{name}: packet number 0");
    assert_eq!(to_hex(&doc[9 + n + 8..9 + n + 24]), to_hex(&tag), "{name}: tag");
}

/// Builds a sealed vector with `channel` and compares it; then the document's bytes open on
/// the other side once, not when replayed, altered or reflected.
fn check_sealed(name: &str, plain: &[u8], client: bool, channel: impl Fn(bool) -> Channel) {
    let built = sealed(plain, &mut channel(client));
    if print(name, &[("plain", plain), ("bytes", &built)]) {
        return;
    }
    let vector = vector(name);
    assert_eq!(to_hex(&bytes(&vector, "plain")), to_hex(plain), "{name}: its plain packet");
    let doc = bytes(&vector, "bytes");
    assert_eq!(to_hex(&built), to_hex(&doc), "{name}: sealed from its inputs");
    assert_ne!(doc[2] & flags::SEALED, 0);
    // Opened by the other side: the plain packet's payload, once; not twice, nor altered.
    let mut receiver = channel(!client);
    let mut room = [0u8; 256];
    let repr = Repr::parse(&doc).unwrap();
    let opened = receiver.open(&repr, &mut room).unwrap();
    let original = Repr::parse(plain).unwrap();
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
    let mut fresh = channel(!client);
    assert_eq!(fresh.open(&Repr::parse(&altered).unwrap(), &mut room).unwrap_err(), OpenError::Forged);
    // Reflected to its sender: the other direction's key.
    let mut sender = channel(client);
    assert_eq!(sender.open(&repr, &mut room).unwrap_err(), OpenError::Forged);
}
