//! The AES-256-GCM suite (feature `aes-gcm`): packets sealed by `ring`, whose AES-GCM uses the
//! CPU's AES and carry-less multiply instructions where it has them (found at run time).
//! Without the feature, [`FastKeys`] has no value and every channel is Ascon's.

/// AES-256-GCM's nonce: the direction byte, 3 zero bytes, the packet number (u64 LE).
#[cfg(feature = "aes-gcm")]
fn nonce(direction: u8, pn: u64) -> ring::aead::Nonce {
    let mut nonce = [0u8; 12];
    nonce[0] = direction;
    nonce[4..].copy_from_slice(&pn.to_le_bytes());
    ring::aead::Nonce::assume_unique_for_key(nonce)
}

/// A channel's two AES-256-GCM keys, expanded once for the session.
#[cfg(feature = "aes-gcm")]
pub(super) struct FastKeys {
    send: ring::aead::LessSafeKey,
    receive: ring::aead::LessSafeKey,
}

#[cfg(feature = "aes-gcm")]
impl FastKeys {
    /// `send` and `receive` are 32-byte keys (a shorter one gives `None`).
    pub(super) fn new(send: &[u8], receive: &[u8]) -> Option<Self> {
        use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
        let key = |bytes: &[u8]| UnboundKey::new(&AES_256_GCM, bytes).ok().map(LessSafeKey::new);
        Some(Self { send: key(send)?, receive: key(receive)? })
    }

    /// Encrypts `payload` in place; the tag.
    pub(super) fn seal(&self, direction: u8, pn: u64, header: &[u8], payload: &mut [u8]) -> Option<[u8; 16]> {
        let aad = ring::aead::Aad::from(header);
        let tag = self.send.seal_in_place_separate_tag(nonce(direction, pn), aad, payload).ok()?;
        tag.as_ref().try_into().ok()
    }

    /// Decrypts `text` in place if `tag` verifies.
    pub(super) fn open(
        &self,
        direction: u8,
        pn: u64,
        header: &[u8],
        text: &mut [u8],
        tag: &[u8; 16],
    ) -> bool {
        let aad = ring::aead::Aad::from(header);
        let tag = ring::aead::Tag::from(*tag);
        self.receive.open_in_place_separate_tag(nonce(direction, pn), aad, tag, text, 0..).is_ok()
    }
}

/// Without the feature `aes-gcm`: no value, so `Option<FastKeys>` is always `None`.
#[cfg(not(feature = "aes-gcm"))]
pub(super) enum FastKeys {}
