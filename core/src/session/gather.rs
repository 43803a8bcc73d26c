//! Packets whose DATA payload stays in the send buffer, for vectored writes.
//!
//! [`Session::poll_transmit`] copies each DATA payload from the send buffer into the caller's
//! buffer. A driver that writes with `writev` can leave it where it lies instead:
//! [`Session::poll_transmit_parts`] writes only the header and the CRC, and says where the
//! payload lies ([`Session::sent_span`]), which stays put until the session is next called
//! mutably. A keyed session without retransmission seals the payload there as it sends it.
//! [`Connection::poll_transmit_gather`](crate::connection::Connection) builds whole vectored
//! writes from it.

use super::Session;
use super::send_buffer::SendBuffer;
use crate::Instant;
use crate::buffer::Buffer;
use crate::wire::{BufferTooSmall, Header, Repr};
#[cfg(all(feature = "auth", feature = "alloc"))]
use crate::wire::{HEADER_LEN, OVERHEAD, write_header};

/// How a DATA packet's payload goes out.
pub(super) trait PayloadOut {
    /// Writes the DATA packet `header`, whose payload lies at `span` (stream offset, length)
    /// of `tx`, into `buf`; returns the bytes written. `copy` copies the payload where it is
    /// given, if it must be.
    // `copy` is a closure of each caller's own, as when they called `Repr::emit_with` directly:
    // firmware then inlines each use as before (one shared closure came out 48 bytes bigger).
    fn data<B: Buffer, const W: usize>(
        &mut self,
        tx: &SendBuffer<B, W>,
        header: Header,
        span: (usize, usize),
        buf: &mut [u8],
        copy: impl FnOnce(&mut [u8]),
    ) -> Result<usize, BufferTooSmall>;
}

/// The payload copied into the packet: a whole packet in the buffer.
pub(super) struct Copied;

impl PayloadOut for Copied {
    #[inline(always)]
    fn data<B: Buffer, const W: usize>(
        &mut self,
        _: &SendBuffer<B, W>,
        header: Header,
        (_, len): (usize, usize),
        buf: &mut [u8],
        copy: impl FnOnce(&mut [u8]),
    ) -> Result<usize, BufferTooSmall> {
        Repr::emit_with(header, len, buf, copy)
    }
}

/// The payload left in the send buffer: the header and the CRC in the buffer, and where the
/// payload lies noted.
struct Left(Option<SentPayload>);

impl PayloadOut for Left {
    fn data<B: Buffer, const W: usize>(
        &mut self,
        tx: &SendBuffer<B, W>,
        header: Header,
        (start, len): (usize, usize),
        buf: &mut [u8],
        _: impl FnOnce(&mut [u8]),
    ) -> Result<usize, BufferTooSmall> {
        let (first, second) = tx.slices(start, len);
        let written = Repr::emit_split(header, &[first, second], buf)?;
        self.0 = Some(SentPayload { start, len });
        Ok(written)
    }
}

/// DATA of a sealing session before it is sealed: its header, and no CRC (sealing writes one).
/// The payload is copied after the header; or, where `lend` allows (no retransmission: nothing
/// is ever read again), on its first transmission and in one piece, left in the send buffer to
/// be sealed there (`left`), and only the header written.
#[cfg(all(feature = "auth", feature = "alloc"))]
pub(super) struct ToSeal {
    pub(super) lend: bool,
    pub(super) left: Option<SentPayload>,
}

#[cfg(all(feature = "auth", feature = "alloc"))]
impl PayloadOut for ToSeal {
    fn data<B: Buffer, const W: usize>(
        &mut self,
        tx: &SendBuffer<B, W>,
        header: Header,
        (start, len): (usize, usize),
        buf: &mut [u8],
        copy: impl FnOnce(&mut [u8]),
    ) -> Result<usize, BufferTooSmall> {
        // A resent packet's number is older than the next one.
        let lend = self.lend && header.seq == tx.next_seq() && tx.span(start, len).1 == len;
        let written = if lend { HEADER_LEN } else { OVERHEAD + len };
        let too_small = BufferTooSmall { required: written };
        let payload_len = u16::try_from(len).map_err(|_| too_small)?;
        let packet = buf.get_mut(..written).ok_or(too_small)?;
        let (head, rest) = packet.split_first_chunk_mut::<HEADER_LEN>().ok_or(too_small)?;
        write_header(header, payload_len, 0, head);
        match lend {
            true => self.left = Some(SentPayload { start, len }),
            false => copy(&mut rest[..len]),
        }
        Ok(written)
    }
}

/// Where the payload of a packet from [`Session::poll_transmit_parts`] lies in the send buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentPayload {
    start: usize,
    len: usize,
}

impl SentPayload {
    /// The payload's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A packet from [`Session::poll_transmit_parts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketParts {
    /// Bytes written at the start of the buffer: the whole packet, or with `payload` its
    /// 9-byte header and then its trailer, what follows the payload: the 4-byte CRC, or for a
    /// sealed packet the packet number, the tag and the CRC (28 bytes, `auth::SEALED_TRAILER`).
    pub written: usize,
    /// A DATA payload left in the send buffer: the packet is the buffer's first 9 bytes, this
    /// payload ([`Session::sent_span`]), then the trailer (the buffer's bytes 9 to `written`).
    pub payload: Option<SentPayload>,
}

impl PacketParts {
    /// The packet's length on the wire.
    pub fn len(&self) -> usize {
        self.written + self.payload.map_or(0, |payload| payload.len)
    }

    /// Whether the packet is empty (never: a packet has at least 13 bytes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B: Buffer, const W: usize> Session<B, W> {
    /// Like [`poll_transmit`](Self::poll_transmit), but the payload of a DATA packet is left in
    /// the send buffer rather than copied into `buf`: for drivers that write with a vectored
    /// write (`writev`). `buf` gets the packet's header and CRC, and
    /// [`PacketParts::payload`] says where the payload lies ([`sent_span`](Self::sent_span));
    /// it stays there until the session is next called mutably. Every other packet is written
    /// whole into `buf`.
    ///
    /// A keyed session without retransmission (TCP) seals such a payload where it lies, once,
    /// when it first sends it: `buf` gets the header and the trailer (packet number, tag,
    /// CRC); the bytes on the wire are those [`poll_transmit`](Self::poll_transmit) would
    /// write. With retransmission, or a payload across the end of the send buffer's ring, a
    /// keyed session writes the sealed packet whole into `buf`.
    ///
    /// `buf` bounds the packets as for `poll_transmit` (a DATA payload is cut to fit it).
    ///
    /// ```
    /// use framelink_core::session::{Config, Event, Session};
    /// use framelink_core::Instant;
    ///
    /// let now = Instant::ZERO;
    /// let mut client: Session<[u8; 4096]> = Session::client(Config::new(), 1, [0; 4096], [0; 4096], now);
    /// let mut server: Session<[u8; 4096]> = Session::server(Config::new(), [0; 4096], [0; 4096], now);
    /// let mut buf = [0u8; 1024];
    /// # for _ in 0..2 {
    /// #     while let Some(n) = client.poll_transmit(now, &mut buf)? {
    /// #         server.handle_packet(now, &framelink_core::wire::Repr::parse(&buf[..n]).unwrap());
    /// #     }
    /// #     while let Some(n) = server.poll_transmit(now, &mut buf)? {
    /// #         client.handle_packet(now, &framelink_core::wire::Repr::parse(&buf[..n]).unwrap());
    /// #     }
    /// # }
    /// # assert_eq!(client.poll_event(), Some(Event::Connected));
    /// // After the handshake (as in the module example):
    /// client.send(now, b"not copied")?;
    /// let parts = client.poll_transmit_parts(now, &mut buf)?.unwrap();
    /// let payload = parts.payload.unwrap();
    /// let (first, second) = client.sent_span(payload);
    /// let packet = [&buf[..9], first, second, &buf[9..parts.written]].concat();
    /// assert_eq!(packet.len(), parts.len());
    /// server.handle_packet(now, &framelink_core::wire::Repr::parse(&packet).unwrap());
    /// # assert_eq!(server.poll_event(), Some(Event::Connected));
    /// assert_eq!(server.poll_event(), Some(Event::Message(b"not copied")));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn poll_transmit_parts(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<PacketParts>, BufferTooSmall> {
        #[cfg(all(feature = "auth", feature = "alloc"))]
        let sent = match self.is_sealing() {
            true => self.next_sealed_parts(now, buf, !self.lossy())?,
            false => self.next_parts(now, buf)?,
        };
        #[cfg(all(feature = "auth", not(feature = "alloc")))]
        let sent = match self.is_sealing() {
            true => self.next_sealed(now, buf)?.map(|written| PacketParts { written, payload: None }),
            false => self.next_parts(now, buf)?,
        };
        #[cfg(not(feature = "auth"))]
        let sent = self.next_parts(now, buf)?;
        if sent.is_some() {
            self.stats.packets_sent += 1;
            self.update_retransmit_timer(now, false);
        }
        Ok(sent)
    }

    /// The next packet in the clear, a DATA payload left in the send buffer.
    fn next_parts(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<PacketParts>, BufferTooSmall> {
        let mut left = Left(None);
        let sent = self.next_packet_with(now, buf, &mut left)?;
        Ok(sent.map(|written| PacketParts { written, payload: left.0 }))
    }

    /// Where a payload that [`poll_transmit_parts`](Self::poll_transmit_parts) left in the send
    /// buffer lies: one or two pieces (the second, across the end of the ring, often empty).
    /// Valid until the session is next called mutably.
    pub fn sent_span(&self, payload: SentPayload) -> (&[u8], &[u8]) {
        self.tx.slices(payload.start, payload.len)
    }

    /// [`sent_span`](Self::sent_span) as places in [`sent_storage`](Self::sent_storage): the
    /// first piece's start and length (the second starts at 0), for drivers that must call
    /// the session again before they write.
    pub(crate) fn sent_places(&self, payload: SentPayload) -> (usize, usize) {
        self.tx.span(payload.start, payload.len)
    }

    /// The send buffer's storage, where [`sent_places`](Self::sent_places) points.
    pub(crate) fn sent_storage(&self) -> &[u8] {
        self.tx.storage()
    }
}
