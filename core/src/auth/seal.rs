//! Sealing and opening packets in place with the session's suite: Ascon-AEAD128, or
//! AES-256-GCM where both sides have it (feature `aes-gcm`).
//!
//! A sealed packet keeps the 9-byte header in the clear (flag SEALED set, `len` counting the
//! sealed payload) as associated data; its payload is the encrypted payload, the packet
//! number (u64 LE) and the 16-byte tag. The AEAD nonce is the direction byte, zero bytes and
//! the packet number (LE): 16 bytes for Ascon, 12 for AES-GCM.

use zeroize::Zeroize;

#[cfg(feature = "alloc")]
use super::SEALED_TRAILER;
use super::fast::FastKeys;
use super::{PACKET_NUMBER_LEN, ReplayWindow, SEAL_OVERHEAD, Suite, ascon};
use crate::wire::{CRC_LEN, HEADER_LEN, Header, OVERHEAD, Packet, PacketType, Repr, crc32c, write_header};

use crate::wire::flags::SEALED;

/// One session's keys and packet numbers, both directions: seals what it sends, opens what it
/// receives. A [`Session`](crate::session::Session) keyed with
/// [`with_auth`](crate::session::Session::with_auth) keeps one; it is public for peers written
/// against the specification, and for its test vectors. The keys are zeroized on drop.
pub struct Channel {
    /// The client-to-server key, then the server-to-client key.
    keys: [u8; 32],
    /// The direction byte of the packets we send, and the half of `keys` they are sealed with:
    /// 0 client to server, 1 server to client.
    send_direction: u8,
    next_pn: u64,
    window: ReplayWindow,
    /// The AES-256-GCM keys when that suite was agreed (then the Ascon keys are unused).
    fast: Option<FastKeys>,
}

impl core::fmt::Debug for Channel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel").field("next_pn", &self.next_pn).field("window", &self.window).finish()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.keys.zeroize();
    }
}

fn nonce(direction: u8, pn: u64) -> [u8; 16] {
    let mut nonce = [0u8; 16];
    nonce[0] = direction;
    nonce[8..].copy_from_slice(&pn.to_le_bytes());
    nonce
}

/// Why a packet did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpenError {
    /// Too short to be sealed, larger than the room to open it, or its tag does not verify.
    Forged,
    /// Its packet number was seen before, or is too old to tell.
    Replayed,
}

impl Channel {
    /// The channel of one side (`client` or server): `keys` is the client-to-server key, then
    /// the server-to-client key ([`session_keys`](super::session_keys)); zeroized here.
    pub fn new(mut keys: [u8; 32], client: bool) -> Self {
        let channel = Self {
            keys,
            send_direction: u8::from(!client),
            next_pn: 0,
            window: ReplayWindow::default(),
            fast: None,
        };
        keys.zeroize();
        channel
    }

    /// The key of the packets sent in `direction` (0 or 1).
    fn key(&self, direction: u8) -> &[u8; 16] {
        let key = if direction == 0 { self.keys.first_chunk() } else { self.keys.last_chunk() };
        key.unwrap_or(&[0; 16])
    }

    /// The channel of one side for the AES-256-GCM suite: `keys` is the 32-byte
    /// client-to-server key, then the server-to-client key
    /// ([`session_keys_aes_256_gcm`](super::session_keys_aes_256_gcm)); zeroized here.
    #[cfg(feature = "aes-gcm")]
    pub fn new_aes_256_gcm(mut keys: [u8; 64], client: bool) -> Self {
        let (c2s, s2c) = keys.split_at(32);
        let (send, receive) = if client { (c2s, s2c) } else { (s2c, c2s) };
        let fast = FastKeys::new(send, receive);
        keys.zeroize();
        Self { fast, ..Self::new([0; 32], client) }
    }

    /// The suite this channel seals with.
    pub fn suite(&self) -> Suite {
        if self.fast.is_some() { Suite::Aes256Gcm } else { Suite::Ascon128 }
    }

    /// Seals the packet of `len` bytes at the start of `buf` in place; returns its new length,
    /// `len` + 24. `None` (nothing to send) when `buf` lacks the room, the payload would pass
    /// 65535 bytes, or the packet numbers ran out. The packet's CRC is not read: it may be
    /// left unwritten.
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let plain = len.checked_sub(OVERHEAD)?;
        let sealed = plain + SEAL_OVERHEAD;
        let (packet, crc) = buf.get_mut(..OVERHEAD + sealed)?.split_last_chunk_mut::<CRC_LEN>()?;
        let (header, rest) = packet.split_first_chunk_mut::<HEADER_LEN>()?;
        let (payload, trailer) = rest.split_last_chunk_mut::<SEAL_OVERHEAD>()?;
        self.encrypt(header, payload, trailer)?;
        *crc = crc32c(packet).to_le_bytes();
        Some(OVERHEAD + sealed)
    }

    /// Seals a packet whose payload lies apart from its header (it is sent from where it lies,
    /// by a vectored write): sets the header's flag SEALED and length, encrypts `payload` in
    /// place, and writes the packet's trailer: the packet number, the tag and the CRC of the
    /// whole sealed packet. The same bytes as [`seal`](Self::seal) for the same packet number.
    #[cfg(feature = "alloc")]
    pub(crate) fn seal_apart(
        &mut self,
        header: &mut [u8; HEADER_LEN],
        payload: &mut [u8],
        trailer: &mut [u8; SEALED_TRAILER],
    ) -> Option<()> {
        let (number_and_tag, crc) = trailer.split_first_chunk_mut::<SEAL_OVERHEAD>()?;
        self.encrypt(header, payload, number_and_tag)?;
        let mut digest = crate::wire::Crc32c::new();
        digest.update(header);
        digest.update(payload);
        digest.update(number_and_tag);
        crc.copy_from_slice(&digest.finalize().to_le_bytes());
        Some(())
    }

    /// Marks `header` sealed with the sealed payload's length, encrypts `payload` in place and
    /// writes the packet number and the tag into `number_and_tag` (24 bytes).
    #[inline(always)]
    fn encrypt(
        &mut self,
        header: &mut [u8; HEADER_LEN],
        payload: &mut [u8],
        number_and_tag: &mut [u8; SEAL_OVERHEAD],
    ) -> Option<()> {
        let sealed_len = u16::try_from(payload.len() + SEAL_OVERHEAD).ok()?;
        let pn = self.next_pn;
        if pn == u64::MAX {
            return None;
        }
        let mut fields = Packet::new_unchecked(&mut header[..]);
        fields.set_flags(fields.flags() | SEALED);
        fields.set_len(sealed_len);
        #[cfg(feature = "aes-gcm")]
        let tag = match &self.fast {
            Some(fast) => fast.seal(self.send_direction, pn, header, payload)?,
            None => ascon::aead(
                self.key(self.send_direction),
                &nonce(self.send_direction, pn),
                header,
                payload,
                false,
            ),
        };
        #[cfg(not(feature = "aes-gcm"))]
        let tag = ascon::aead(
            self.key(self.send_direction),
            &nonce(self.send_direction, pn),
            header,
            payload,
            false,
        );
        let (number, tag_at) = number_and_tag.split_at_mut(PACKET_NUMBER_LEN);
        number.copy_from_slice(&pn.to_le_bytes());
        tag_at.copy_from_slice(&tag);
        self.next_pn += 1;
        Some(())
    }

    /// Opens `packet` (as parsed) into `room`: returns the packet with its plaintext payload,
    /// borrowed from `room`. The replay window moves only when the packet verified.
    pub fn open<'a>(&mut self, packet: &Repr<'_>, room: &'a mut [u8]) -> Result<Repr<'a>, OpenError> {
        let (plain, pn) = self.packet_number(packet.payload)?;
        let (ciphertext, trailer) = packet.payload.split_at(plain);
        let room = room.get_mut(..plain).ok_or(OpenError::Forged)?;
        room.copy_from_slice(ciphertext);
        self.decrypt(packet.header(), packet.payload.len(), pn, trailer, room)?;
        Ok(Repr { payload: room, ..*packet })
    }

    /// Opens in place the packet `header` whose sealed payload is `sealed`: the plaintext is
    /// decrypted where the ciphertext lay, at the start of `sealed`, and returned with the
    /// header as a packet. Nothing is copied. The replay window moves only when the packet
    /// verified; if it does not, what `sealed` holds afterwards is unspecified.
    pub fn open_in_place<'a>(&mut self, header: Header, sealed: &'a mut [u8]) -> Result<Repr<'a>, OpenError> {
        let (plain, pn) = self.packet_number(sealed)?;
        let sealed_len = sealed.len();
        let (text, trailer) = sealed.split_at_mut(plain);
        self.decrypt(header, sealed_len, pn, trailer, text)?;
        let Header { kind, seq, ack, more } = header;
        Ok(Repr { kind, seq, ack, more, payload: text })
    }

    /// The plaintext's length and the packet number of a sealed payload; `Replayed` if the
    /// packet number was seen before or is too old.
    fn packet_number(&self, sealed: &[u8]) -> Result<(usize, u64), OpenError> {
        let plain = sealed.len().checked_sub(SEAL_OVERHEAD).ok_or(OpenError::Forged)?;
        let pn = sealed.get(plain..).and_then(<[u8]>::first_chunk::<PACKET_NUMBER_LEN>);
        let pn = u64::from_le_bytes(*pn.ok_or(OpenError::Forged)?);
        if !self.window.check(pn) {
            return Err(OpenError::Replayed);
        }
        Ok((plain, pn))
    }

    /// Decrypts `text` in place, the ciphertext of a packet with `header` and a sealed payload
    /// of `sealed_len` bytes, if the tag at the end of `trailer` (packet number, tag)
    /// verifies, and then moves the replay window; else zeroes it.
    #[inline(always)]
    fn decrypt(
        &mut self,
        header: Header,
        sealed_len: usize,
        pn: u64,
        trailer: &[u8],
        text: &mut [u8],
    ) -> Result<(), OpenError> {
        let tag = trailer.get(PACKET_NUMBER_LEN..).unwrap_or_default();
        let header = header_of(header, sealed_len);
        let direction = 1 - self.send_direction;
        #[cfg(feature = "aes-gcm")]
        let verified = match &self.fast {
            Some(fast) => tag.try_into().is_ok_and(|tag| fast.open(direction, pn, &header, text, tag)),
            None => {
                let expected = ascon::aead(self.key(direction), &nonce(direction, pn), &header, text, true);
                super::same(&expected, tag)
            }
        };
        #[cfg(not(feature = "aes-gcm"))]
        let verified = {
            let expected = ascon::aead(self.key(direction), &nonce(direction, pn), &header, text, true);
            super::same(&expected, tag)
        };
        if !verified {
            text.fill(0);
            return Err(OpenError::Forged);
        }
        self.window.accept(pn);
        Ok(())
    }
}

/// The header a sealed packet was sent with, rebuilt from what the parser kept: any bit the
/// path changed (an undefined flag, an ack field sent without flag ACK) fails the tag.
fn header_of(fields: Header, sealed_len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    let len = u16::try_from(sealed_len).unwrap_or(u16::MAX);
    write_header(fields, len, SEALED, &mut header);
    header
}

/// Whether packets of `kind` are sealed once the keys are known (all but the handshake's:
/// HELLO, HELLO-ACK, RETRY).
pub fn is_sealed_kind(kind: PacketType) -> bool {
    !matches!(kind, PacketType::Hello | PacketType::HelloAck | PacketType::Retry)
}
