//! Keyed sessions (feature `auth`): the handshake's nonces and proofs, then every packet sealed
//! and opened. PROTOCOL.md section 15.

use core::ops::Range;

use super::{Session, output};
use crate::Instant;
use crate::auth::{
    Channel, HELLO_LEN, NONCE_LEN, SEAL_OVERHEAD, SessionAuth, TAG_LEN, hello_proof, same, session_keys,
};
use crate::buffer::Buffer;
use crate::wire::{
    BufferTooSmall, Capabilities, ErrorCode, Header, HelloPayload, OVERHEAD, PacketType, Repr,
};
#[cfg(feature = "alloc")]
use {super::PacketParts, super::gather::ToSeal, crate::auth::SEALED_TRAILER, crate::wire::HEADER_LEN};

/// The largest payload a keyed session sends or announces: sealed, it fits the 16-bit length.
pub(super) const MAX_PLAIN_PAYLOAD: u16 = u16::MAX - SEAL_OVERHEAD as u16;
/// Where the nonce and the proof sit in a keyed HELLO or HELLO-ACK payload.
const NONCE_AT: usize = HelloPayload::LEN_WITH_COOKIE;
const PROOF_AT: usize = NONCE_AT + NONCE_LEN;

/// A keyed session's state.
#[derive(Debug)]
pub(super) struct Keyed<B> {
    auth: SessionAuth,
    /// Our nonce in this handshake (a client's for its life, a server's for each handshake).
    local_nonce: [u8; NONCE_LEN],
    /// The peer's nonce, once its HELLO or HELLO-ACK verified.
    peer_nonce: [u8; NONCE_LEN],
    /// The session keys and packet numbers, once the handshake verified.
    pub(super) channel: Option<Channel>,
    /// Room to open a packet into; lent out while a packet is handled.
    pub(super) scratch: Option<B>,
}

#[cfg(feature = "aes-gcm")]
impl<B> Keyed<B> {
    /// The capability bits of the suites this side offers besides Ascon.
    pub(super) fn offered_suites(&self) -> Capabilities {
        self.auth.offered_suites()
    }
}

impl<B: Buffer, const W: usize> Session<B, W> {
    /// Makes this session keyed: it requires and supports [`Capabilities::KEYED`], proves the
    /// key in its HELLO or HELLO-ACK and checks the peer's, then seals every packet it sends
    /// and opens every packet it receives (PROTOCOL.md section 15). Call it right after
    /// [`client`](Self::client) or [`server`](Self::server), before any packet.
    ///
    /// `scratch` is room to open one packet into: growable storage grows to this side's
    /// `max_payload`; fixed storage of `max_payload` bytes (a packet longer than it is dropped
    /// as if forged). A peer without the key, or without keyed sessions, is refused.
    #[must_use]
    pub fn with_auth(mut self, mut auth: SessionAuth, scratch: B) -> Self {
        let local_nonce = auth.next_nonce();
        self.keyed = Some(Keyed {
            auth,
            local_nonce,
            peer_nonce: [0; NONCE_LEN],
            channel: None,
            scratch: Some(scratch),
        });
        self
    }

    /// Whether the session is keyed ([`with_auth`](Self::with_auth)).
    pub fn is_keyed(&self) -> bool {
        self.keyed.is_some()
    }

    /// The suite that seals this session's packets, once the handshake agreed on it; `None`
    /// when unkeyed or before.
    pub fn keyed_suite(&self) -> Option<crate::auth::Suite> {
        self.keyed.as_ref()?.channel.as_ref().map(Channel::suite)
    }

    /// Whether the keys are known: packets are sealed and opened.
    pub(crate) fn is_sealing(&self) -> bool {
        self.keyed.as_ref().is_some_and(|keyed| keyed.channel.is_some())
    }

    /// Opens a sealed packet and handles what it carries; drops and counts one that does not
    /// verify.
    pub(super) fn handle_sealed(&mut self, now: Instant, packet: &Repr<'_>) {
        let limit = usize::from(self.announced_max_payload()).max(64);
        let Some(keyed) = self.keyed.as_mut() else { return };
        let (Some(channel), Some(mut scratch)) = (keyed.channel.as_mut(), keyed.scratch.take()) else {
            return;
        };
        let plain = packet.payload.len().saturating_sub(SEAL_OVERHEAD);
        if plain <= limit {
            scratch.grow_to(plain);
        }
        match channel.open(packet, scratch.as_mut()) {
            Ok(opened) if opened.check_payload().is_ok() => self.handle_plain(now, &opened),
            Ok(_) => self.stats.ignored += 1,
            Err(_) => {
                debug!("framelink session {=u32:#x}: packet dropped: not authentic", self.session_id);
                self.stats.auth_failures += 1;
            }
        }
        if let Some(keyed) = self.keyed.as_mut() {
            keyed.scratch = Some(scratch);
        }
    }

    /// Whether a packet of `kind` is opened before it is handled (the keys are known, and it
    /// is not the handshake's).
    pub(crate) fn opens(&self, kind: PacketType) -> bool {
        self.is_sealing() && crate::auth::is_sealed_kind(kind)
    }

    /// Handles a sealed packet (`header`, then the sealed `payload`) opened in place: the
    /// plaintext is decrypted where the ciphertext lay, never copied out first; one that does
    /// not verify is dropped and counted, as by [`handle_sealed`](Self::handle_sealed). With
    /// `lend`, a whole message the application takes next is lent from there
    /// ([`handle_packet_lent`](Self::handle_packet_lent)): returns where it lies in `payload`.
    pub(crate) fn handle_sealed_in_place(
        &mut self,
        now: Instant,
        header: Header,
        payload: &mut [u8],
        lend: bool,
    ) -> Option<Range<usize>> {
        // As `handle_sealed`: a packet longer than its scratch would take is dropped as forged.
        let limit = usize::from(self.announced_max_payload()).max(64);
        let channel = self.keyed.as_mut()?.channel.as_mut()?;
        let opened = match payload.len().saturating_sub(SEAL_OVERHEAD) <= limit {
            true => channel.open_in_place(header, payload),
            false => Err(crate::auth::OpenError::Forged),
        };
        match opened {
            Ok(opened) if opened.check_payload().is_ok() => {
                let lent = match lend {
                    true => self.handle_plain_lent(now, &opened),
                    false => {
                        self.handle_plain(now, &opened);
                        false
                    }
                };
                if lent {
                    return Some(0..opened.payload.len());
                }
            }
            Ok(_) => self.stats.ignored += 1,
            Err(_) => {
                debug!("framelink session {=u32:#x}: packet dropped: not authentic", self.session_id);
                self.stats.auth_failures += 1;
            }
        }
        None
    }

    /// The next packet, sealed once the keys are known if it is not the handshake's: written
    /// whole into `buf`.
    #[cfg(feature = "alloc")]
    pub(super) fn next_sealed(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        Ok(self.next_sealed_parts(now, buf, false)?.map(|parts| parts.written))
    }

    /// The next packet, sealed once the keys are known if it is not the handshake's. With
    /// `lend` (no retransmission: a payload is never read again once sent), a DATA payload
    /// sent for the first time and lying in one piece is sealed where it lies in the send
    /// buffer, and `buf` gets the header and the trailer ([`PacketParts`]); any other packet
    /// is written into `buf` and sealed there. Either way the DATA packet's CRC is computed
    /// once, over the sealed packet.
    #[cfg(feature = "alloc")]
    pub(super) fn next_sealed_parts(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        lend: bool,
    ) -> Result<Option<PacketParts>, BufferTooSmall> {
        if !self.is_sealing() {
            let sent = self.next_packet(now, buf)?;
            return Ok(sent.map(|written| PacketParts { written, payload: None }));
        }
        let room = buf.len().checked_sub(SEAL_OVERHEAD).filter(|&room| room >= OVERHEAD);
        let room = room.ok_or(BufferTooSmall { required: OVERHEAD + SEAL_OVERHEAD })?;
        let mut out = ToSeal { lend, left: None };
        let Some(len) = self.next_packet_with(now, &mut buf[..room], &mut out)? else { return Ok(None) };
        if !crate::auth::is_sealed_kind(PacketType::from(buf[1])) {
            return Ok(Some(PacketParts { written: len, payload: None }));
        }
        let place = out.left.map(|payload| self.sent_places(payload).0);
        let Some(channel) = self.keyed.as_mut().and_then(|keyed| keyed.channel.as_mut()) else {
            return Ok(None);
        };
        let (Some(payload), Some(at)) = (out.left, place) else {
            return Ok(channel.seal(buf, len).map(|written| PacketParts { written, payload: None }));
        };
        let ciphertext = self.tx.storage_mut().get_mut(at..at + payload.len());
        let (header, rest) = buf.split_first_chunk_mut::<HEADER_LEN>().unzip();
        let trailer = rest.and_then(|rest| rest.first_chunk_mut::<SEALED_TRAILER>());
        let sealed = match (header, ciphertext, trailer) {
            (Some(header), Some(ciphertext), Some(trailer)) => {
                channel.seal_apart(header, ciphertext, trailer)
            }
            _ => None,
        };
        let written = HEADER_LEN + SEALED_TRAILER;
        Ok(sealed.map(|()| PacketParts { written, payload: Some(payload) }))
    }

    /// The next packet, sealed once the keys are known if it is not the handshake's. The only
    /// caller of `next_packet` in keyed builds, which keeps that large function inline.
    #[cfg(not(feature = "alloc"))]
    pub(super) fn next_sealed(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        let sealing = self.is_sealing();
        let room = if sealing {
            let required = OVERHEAD + SEAL_OVERHEAD;
            let room = buf.len().checked_sub(SEAL_OVERHEAD).filter(|&room| room >= OVERHEAD);
            room.ok_or(BufferTooSmall { required })?
        } else {
            buf.len()
        };
        let Some(len) = self.next_packet(now, &mut buf[..room])? else { return Ok(None) };
        if !sealing || !crate::auth::is_sealed_kind(PacketType::from(buf[1])) {
            return Ok(Some(len));
        }
        let channel = self.keyed.as_mut().and_then(|keyed| keyed.channel.as_mut());
        Ok(channel.and_then(|channel| channel.seal(buf, len)))
    }

    /// Our HELLO or HELLO-ACK; a keyed one has the cookie slot (zeros without a cookie), our
    /// nonce and the proof.
    pub(super) fn emit_hello(
        &self,
        buf: &mut [u8],
        kind: PacketType,
        hello: &HelloPayload,
    ) -> Result<usize, BufferTooSmall> {
        // One closure for both (each is a copy of `emit_control` and `HelloPayload::emit`).
        let keyed = self.keyed.as_ref();
        let len = if keyed.is_some() { HELLO_LEN } else { hello.encoded_len() };
        output::emit_control(buf, kind, None, len, |p| {
            if keyed.is_some() {
                // The cookie slot: zeros without a cookie (cheaper than emitting a copy with one).
                p[HelloPayload::LEN..NONCE_AT].fill(0);
            }
            let _ = hello.emit(p);
            let Some(keyed) = keyed else { return };
            let client_nonce = if kind == PacketType::Hello { &keyed.local_nonce } else { &keyed.peer_nonce };
            p[NONCE_AT..PROOF_AT].copy_from_slice(&keyed.local_nonce);
            let proof = hello_proof(keyed.auth.psk(), kind, &p[..PROOF_AT], client_nonce);
            p[PROOF_AT..HELLO_LEN].copy_from_slice(&proof);
        })
    }

    /// The nonce of a HELLO or HELLO-ACK whose proof verifies (`client_nonce`: ours, for a
    /// HELLO-ACK); `None` for another key, or no proof.
    fn verified_nonce(&self, kind: PacketType, payload: &[u8]) -> Option<[u8; NONCE_LEN]> {
        let keyed = self.keyed.as_ref()?;
        let payload = payload.get(..HELLO_LEN)?;
        let nonce: [u8; NONCE_LEN] = payload[NONCE_AT..PROOF_AT].try_into().ok()?;
        let proof = hello_proof(keyed.auth.psk(), kind, &payload[..PROOF_AT], &keyed.local_nonce);
        same(&proof, &payload[PROOF_AT..PROOF_AT + TAG_LEN]).then_some(nonce)
    }

    /// Whether a HELLO may restart the session: unkeyed, always; keyed, if it proves the key.
    pub(super) fn hello_is_genuine(&mut self, payload: &[u8]) -> bool {
        self.hello_proves_key(payload, false)
    }

    /// Whether a HELLO with our session id repeats the one this session started with (its
    /// HELLO-ACK is sent again): unkeyed, always; keyed, if it proves the key with the same
    /// nonce.
    pub(super) fn hello_is_repeat(&mut self, payload: &[u8]) -> bool {
        self.hello_proves_key(payload, true)
    }

    /// Whether a HELLO proves the key (with the nonce the session started with, `repeat`);
    /// counts one that does not. Both checks above in one function.
    fn hello_proves_key(&mut self, payload: &[u8], repeat: bool) -> bool {
        let Some(keyed) = &self.keyed else { return true };
        let peer_nonce = keyed.peer_nonce;
        let verified = self.verified_nonce(PacketType::Hello, payload);
        if verified.is_some_and(|nonce| !repeat || same(&nonce, &peer_nonce)) {
            return true;
        }
        self.stats.auth_failures += 1;
        false
    }

    /// Checks the proof of the key in the peer's HELLO (`kind`) or HELLO-ACK (`hello`, parsed
    /// from `payload`) and derives the session keys; fails the session with ERROR
    /// AuthenticationFailed if it does not verify. Unkeyed, nothing to check.
    pub(super) fn authenticate(&mut self, kind: PacketType, hello: &HelloPayload, payload: &[u8]) -> bool {
        if self.keyed.is_none() {
            return true;
        }
        let client = kind == PacketType::HelloAck;
        // The agreed set: the HELLO-ACK's, or the one this server answers with.
        let agreed =
            if client { hello.requires } else { self.chosen_suite(hello).union(Capabilities::KEYED) };
        let verified = self.verified_nonce(kind, payload).filter(|_| agreed.contains(Capabilities::KEYED));
        let Some(peer_nonce) = verified else {
            self.stats.auth_failures += 1;
            self.fail(ErrorCode::AuthenticationFailed, 0);
            return false;
        };
        let session_id = self.session_id;
        let Some(keyed) = self.keyed.as_mut() else { return false };
        keyed.peer_nonce = peer_nonce;
        if !client {
            // A fresh nonce for every handshake a server session answers.
            keyed.local_nonce = keyed.auth.next_nonce();
        }
        let (client_nonce, server_nonce) =
            if client { (&keyed.local_nonce, &peer_nonce) } else { (&peer_nonce, &keyed.local_nonce) };
        let psk = keyed.auth.psk();
        #[cfg(feature = "aes-gcm")]
        if agreed.contains(Capabilities::AES_256_GCM) {
            let keys = crate::auth::session_keys_aes_256_gcm(psk, session_id, client_nonce, server_nonce);
            keyed.channel = Some(Channel::new_aes_256_gcm(keys, client));
            return true;
        }
        let _ = agreed; // without the feature `aes-gcm`, `agree` refused any other suite
        let keys = session_keys(psk, session_id, client_nonce, server_nonce);
        keyed.channel = Some(Channel::new(keys, client));
        true
    }
}
