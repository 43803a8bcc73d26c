//! The wire format: packet header, packet types, payloads and CRC.
//!
//! Two layers, as in smoltcp:
//!
//! - [`Packet`] is a lenient view over bytes. It reads and writes fields in place and never
//!   judges them: an unknown type byte reads as [`PacketType::Unknown`].
//! - [`Repr`] is the strict, parsed form. [`Repr::parse`] checks length, CRC-32C, version, type
//!   and the payload's layout, and [`Repr::emit`] writes a packet, CRC last.
//!
//! A packet, all integers little-endian, no padding:
//!
//! ```text
//!  0        1        2        3               5               7               9
//! +--------+--------+--------+---------------+---------------+---------------+----------+---------+
//! |version |  type  | flags  |   seq (u16)   |   ack (u16)   |   len (u16)   | payload  | CRC-32C |
//! +--------+--------+--------+---------------+---------------+---------------+----------+---------+
//!                                                                              len bytes   4 bytes
//! ```
//!
//! The full specification, with test vectors, is `docs/PROTOCOL.md`.
//!
//! # Contract
//!
//! - After [`Packet::check_len`] succeeds, no getter or setter of [`Packet`] panics.
//! - [`Repr::parse`] never panics, on any input.
//! - [`Repr::emit`] never panics; given a buffer shorter than [`Repr::buffer_len`] it returns
//!   [`BufferTooSmall`] and writes nothing.
//! - The payload types' `parse` never panics; their `emit` writes nothing on error.

mod crc;
mod error;
mod packet;
mod payload;
mod repr;
mod seq;

pub use crc::{Crc32c, HW_CRC, crc32c, crc32c_portable};
pub use error::{BufferTooSmall, DecodeError};
pub use packet::{CRC_LEN, HEADER_LEN, MAX_PACKET, MAX_PAYLOAD, OVERHEAD, Packet, PacketType, flags};
pub use payload::{
    AckPayload, Capabilities, ErrorCode, ErrorPayload, HelloPayload, PingPayload, RetryPayload,
};
#[cfg(feature = "auth")]
pub(crate) use repr::write_header;
pub use repr::{Header, Repr};
pub use seq::SeqNumber;

/// The protocol version this crate speaks, byte 0 of every packet.
pub const VERSION: u8 = 1;
