//! Ascon-AEAD128 and Ascon-XOF128 (NIST SP 800-232) over the permutation of the `ascon-core`
//! crate: one duplex, byte by byte, runs both modes, which keeps them small in flash (the
//! `ascon-aead` and `ascon-hash` crates carry a block buffer, a cipher object and generic
//! array types each). On 64-bit hosts the message goes a word at a time and the rounds are
//! unrolled, code a 32-bit build does not carry. The tests check both modes against those
//! crates.

use ascon_core::State;

/// Ascon-AEAD128's initial value (key 128 bits, rate 128 bits, 12 and 8 rounds).
const AEAD_IV: u64 = 0x0000_1000_808c_0001;
/// Ascon-XOF128's state after its initial permutation.
const XOF_STATE: [u64; 5] = [
    0xda82_ce76_8d94_47eb,
    0xcc7c_e6c7_5f1e_f969,
    0xe750_8fd7_8008_5631,
    0x0ee0_ea53_416b_58cc,
    0xe054_7524_db6f_0bde,
];

/// `rounds` (8 or 12) rounds of the permutation: on a 32-bit core through `permute_n` alone
/// (one copy of the rounds in flash), on a host unrolled.
fn permute(state: &mut State, rounds: usize) {
    #[cfg(target_pointer_width = "64")]
    if rounds == 8 {
        state.permute_8();
    } else {
        state.permute_12();
    }
    #[cfg(not(target_pointer_width = "64"))]
    state.permute_n(rounds);
}

/// Ascon's state and the next byte of its rate.
struct Duplex {
    state: State,
    /// Bytes of the rate: 16 for the AEAD (8 rounds between blocks), 8 for the XOF (12).
    rate: usize,
    at: usize,
}

impl Duplex {
    /// The permutation between blocks: 8 rounds for the AEAD, 12 for the XOF.
    fn permute(&mut self) {
        permute(&mut self.state, if self.rate == 16 { 8 } else { 12 });
    }

    /// XORs `byte` into the state at the current position and returns the result; with
    /// `replace`, the state's byte becomes `byte` itself (decryption: it takes the ciphertext).
    fn xor(&mut self, byte: u8, replace: bool) -> u8 {
        let word = &mut self.state[self.at / 8];
        let mut bytes = word.to_le_bytes();
        let at = &mut bytes[self.at % 8];
        let out = *at ^ byte;
        *at = if replace { byte } else { out };
        *word = u64::from_le_bytes(bytes);
        out
    }

    /// The next position; a full rate is permuted.
    fn advance(&mut self) {
        self.at += 1;
        if self.at == self.rate {
            self.permute();
            self.at = 0;
        }
    }

    fn absorb(&mut self, data: &[u8]) {
        for &byte in data {
            self.xor(byte, false);
            self.advance();
        }
    }

    /// Pads what was absorbed (a 1 byte after it) and permutes.
    fn pad_and_permute(&mut self) {
        self.xor(1, false);
        self.permute();
        self.at = 0;
    }
}

/// 16 bytes as two little-endian words.
fn words(bytes: &[u8; 16]) -> [u64; 2] {
    let both = u128::from_le_bytes(*bytes);
    [both as u64, (both >> 64) as u64]
}

/// Ascon-AEAD128 in place: encrypts `buf` (or decrypts it, `decrypt`) under `key` and `nonce`
/// with `associated` data; returns the tag (to send, or to compare with the one received).
pub(super) fn aead(
    key: &[u8; 16],
    nonce: &[u8; 16],
    associated: &[u8],
    buf: &mut [u8],
    decrypt: bool,
) -> [u8; 16] {
    let [k0, k1] = words(key);
    let [n0, n1] = words(nonce);
    let mut duplex = Duplex { state: State::new(AEAD_IV, k0, k1, n0, n1), rate: 16, at: 0 };
    permute(&mut duplex.state, 12);
    duplex.state[3] ^= k0;
    duplex.state[4] ^= k1;
    if !associated.is_empty() {
        duplex.absorb(associated);
        duplex.pad_and_permute();
    }
    duplex.state[4] ^= 1 << 63;
    // The rate starts a block here: a host takes the whole words of the message a word at a
    // time (several times faster); a 32-bit core goes byte by byte, the smaller code.
    #[cfg(target_pointer_width = "64")]
    let buf = {
        let mut words = buf.chunks_exact_mut(8);
        for chunk in &mut words {
            let input = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            let word = &mut duplex.state[duplex.at / 8];
            let out = *word ^ input;
            *word = if decrypt { input } else { out };
            chunk.copy_from_slice(&out.to_le_bytes());
            duplex.at += 7;
            duplex.advance();
        }
        words.into_remainder()
    };
    for byte in buf {
        *byte = duplex.xor(*byte, decrypt);
        duplex.advance();
    }
    duplex.xor(1, false);
    duplex.state[2] ^= k0;
    duplex.state[3] ^= k1;
    permute(&mut duplex.state, 12);
    (u128::from(duplex.state[4] ^ k1) << 64 | u128::from(duplex.state[3] ^ k0)).to_le_bytes()
}

/// Ascon-XOF128: absorbs with [`update`](Self::update), then reads its output once.
pub(super) struct Xof(Duplex);

impl Xof {
    pub(super) fn new() -> Self {
        Self(Duplex { state: State::from(&XOF_STATE), rate: 8, at: 0 })
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        self.0.absorb(data);
    }

    /// The first `out.len()` bytes of the output.
    pub(super) fn finalize(&mut self, out: &mut [u8]) {
        self.0.pad_and_permute();
        for (i, byte) in out.iter_mut().enumerate() {
            if i > 0 && i % 8 == 0 {
                permute(&mut self.0.state, 12);
            }
            *byte = self.0.state[0].to_le_bytes()[i % 8];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ascon_aead::aead::{AeadInOut, KeyInit};
    use ascon_hash::digest::{ExtendableOutput, Update, XofReader};
    use std::vec::Vec;

    /// Bytes that differ from one call to the next.
    fn bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed.wrapping_mul(101))).collect()
    }

    #[test]
    fn aead_matches_the_ascon_aead_crate() {
        let key: [u8; 16] = bytes(1, 16).try_into().unwrap();
        let nonce: [u8; 16] = bytes(2, 16).try_into().unwrap();
        let cipher = ascon_aead::AsconAead128::new(&key.into());
        // Every length of associated data and message across two blocks and a partial one.
        for ad_len in 0..=40 {
            for len in 0..=40 {
                let associated = bytes(3, ad_len);
                let plain = bytes(4, len);
                let mut ours = plain.clone();
                let tag = aead(&key, &nonce, &associated, &mut ours, false);
                let mut theirs = plain.clone();
                let expected = cipher
                    .encrypt_inout_detached(&nonce.into(), &associated, theirs.as_mut_slice().into())
                    .unwrap();
                assert_eq!((ours.as_slice(), &tag[..]), (theirs.as_slice(), &expected[..]), "{ad_len} {len}");
                assert_eq!(aead(&key, &nonce, &associated, &mut ours, true), tag, "{ad_len} {len}");
                assert_eq!(ours, plain, "{ad_len} {len}");
            }
        }
    }

    #[test]
    fn a_changed_byte_changes_the_tag() {
        let (key, nonce) = ([5; 16], [6; 16]);
        let mut sealed = bytes(7, 33);
        let tag = aead(&key, &nonce, b"header", &mut sealed, false);
        for at in 0..sealed.len() {
            let mut forged = sealed.clone();
            forged[at] ^= 0x80;
            assert_ne!(aead(&key, &nonce, b"header", &mut forged, true), tag, "{at}");
        }
        assert_ne!(aead(&key, &nonce, b"headex", &mut sealed.clone(), true), tag);
        assert_ne!(aead(&[4; 16], &nonce, b"header", &mut sealed.clone(), true), tag);
        assert_ne!(aead(&key, &[4; 16], b"header", &mut sealed.clone(), true), tag);
    }

    #[test]
    fn xof_matches_the_ascon_hash_crate() {
        for len in 0..=40 {
            let input = bytes(8, len);
            for split in [0, len / 3, len] {
                let mut theirs = ascon_hash::AsconXof128::default();
                theirs.update(&input);
                let mut expected = [0u8; 40];
                theirs.finalize_xof().read(&mut expected);
                let mut xof = Xof::new();
                xof.update(&input[..split]);
                xof.update(&input[split..]);
                let out_len = (len * 7) % 41;
                let mut out = [0u8; 40];
                xof.finalize(&mut out[..out_len]);
                assert_eq!(out[..out_len], expected[..out_len], "{len} {split}");
                assert!(out[out_len..].iter().all(|&b| b == 0));
            }
        }
    }
}
