//! The keyed sponge behind every derivation: Ascon-XOF128 of a domain byte, the key, then
//! fixed-length inputs (so concatenation is unambiguous).

use super::ascon::Xof;
use super::{NONCE_LEN, Psk, TAG_LEN};
use crate::wire::PacketType;

/// Prefix of every input: the protocol and its version.
const LABEL: &[u8; 16] = b"framelink-psk-v1";
/// Domain bytes, after the label.
const HELLO_PROOF: u8 = 1;
const HELLO_ACK_PROOF: u8 = 2;
const SESSION_KEYS: u8 = 3;
const NONCE: u8 = 4;
#[cfg(feature = "aes-gcm")]
const SESSION_KEYS_AES_256_GCM: u8 = 5;

fn xof(domain: u8, parts: &[&[u8]], out: &mut [u8]) {
    let mut xof = Xof::new();
    xof.update(LABEL);
    xof.update(&[domain]);
    for part in parts {
        xof.update(part);
    }
    xof.finalize(out);
}

/// The proof of the key in a HELLO (`kind`; over its payload before the proof, 46 bytes) or a
/// HELLO-ACK (over its payload before the proof, then the client's nonce: the answer is bound
/// to that HELLO; `client_nonce` is not used for a HELLO).
pub fn hello_proof(
    psk: &Psk,
    kind: PacketType,
    signed: &[u8],
    client_nonce: &[u8; NONCE_LEN],
) -> [u8; TAG_LEN] {
    let (domain, bound): (u8, &[u8]) =
        if kind == PacketType::Hello { (HELLO_PROOF, &[]) } else { (HELLO_ACK_PROOF, client_nonce) };
    let mut proof = [0u8; TAG_LEN];
    xof(domain, &[psk.as_bytes(), signed, bound], &mut proof);
    proof
}

/// The two directions' keys of a session, 16 bytes each: client to server, then server to
/// client.
pub fn session_keys(
    psk: &Psk,
    session_id: u32,
    client_nonce: &[u8; NONCE_LEN],
    server_nonce: &[u8; NONCE_LEN],
) -> [u8; 32] {
    let mut keys = [0u8; 32];
    xof(SESSION_KEYS, &[psk.as_bytes(), &session_id.to_le_bytes(), client_nonce, server_nonce], &mut keys);
    keys
}

/// The two directions' keys of a session sealed with AES-256-GCM, 32 bytes each: client to
/// server, then server to client. Another domain than [`session_keys`], so the keys are bound
/// to the suite agreed.
#[cfg(feature = "aes-gcm")]
pub fn session_keys_aes_256_gcm(
    psk: &Psk,
    session_id: u32,
    client_nonce: &[u8; NONCE_LEN],
    server_nonce: &[u8; NONCE_LEN],
) -> [u8; 64] {
    let mut keys = [0u8; 64];
    let inputs: [&[u8]; 4] = [psk.as_bytes(), &session_id.to_le_bytes(), client_nonce, server_nonce];
    xof(SESSION_KEYS_AES_256_GCM, &inputs, &mut keys);
    keys
}

/// Handshake nonce number `counter` from a secret seed.
pub(super) fn nonce(seed: &[u8; 32], counter: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    xof(NONCE, &[seed, &counter.to_le_bytes()], &mut nonce);
    nonce
}
