//! The service messages: one enum, one codec, for both directions.

use super::StatsReply;
use crate::wire::BufferTooSmall;

/// The first byte of every service message. It never starts valid UTF-8, so text messages
/// (`framelink send`) are never mistaken for service messages.
pub const TAG: u8 = 0xFA;

/// Service operation codes (byte 1).
pub mod op {
    /// Request: echo the payload back.
    pub const ECHO: u8 = 0x01;
    /// Request: discard the payload, count it.
    pub const SINK: u8 = 0x02;
    /// Request: send a pattern for N bytes or T milliseconds.
    pub const SOURCE: u8 = 0x03;
    /// Request: the responder's counters.
    pub const STATS: u8 = 0x04;
    /// Request: the responder's name, version and limits.
    pub const INFO: u8 = 0x05;
    /// Reply to ECHO.
    pub const ECHO_REPLY: u8 = 0x81;
    /// One message of a SOURCE stream.
    pub const SOURCE_DATA: u8 = 0x83;
    /// The end of a SOURCE stream.
    pub const SOURCE_END: u8 = 0x84;
    /// Reply to STATS.
    pub const STATS_REPLY: u8 = 0x85;
    /// Reply to INFO.
    pub const INFO_REPLY: u8 = 0x86;
    /// The request could not be served.
    pub const ERROR: u8 = 0xFF;
}

/// Bytes before the pattern in a SOURCE-DATA message: tag, op, id, offset.
pub const SOURCE_HEADER: usize = 14;

/// Bytes in a SOURCE-END message: tag, op, id, bytes.
pub(super) const SOURCE_END_LEN: usize = 14;

/// The byte at `offset` of a SOURCE stream: a period of 251 (a prime), so a shifted, dropped or
/// repeated byte shows.
pub const fn pattern_byte(offset: u64) -> u8 {
    period_phase(offset) as u8
}

/// The pattern's period.
const PERIOD: usize = 251;

/// Two periods of the pattern, so any window of up to one period is one contiguous slice.
static PATTERN: [u8; 2 * PERIOD] = {
    let mut table = [0u8; 2 * PERIOD];
    let mut i = 0;
    while i < 2 * PERIOD {
        table[i] = (i % PERIOD) as u8;
        i += 1;
    }
    table
};

/// The pattern from stream `offset`, one period at a time (at most `PERIOD` bytes per slice).
fn pattern_chunks(offset: u64, len: usize) -> impl Iterator<Item = &'static [u8]> {
    let start = (offset % PERIOD as u64) as usize;
    (0..len).step_by(PERIOD).map(move |done| &PATTERN[start..start + PERIOD.min(len - done)])
}

/// `offset % PERIOD` with 32-bit arithmetic only (a 64-bit remainder is a library call of
/// about 1 KiB on Cortex-M): 2^32 = 123 (mod 251).
const fn period_phase(offset: u64) -> usize {
    const P: u32 = PERIOD as u32;
    let (high, low) = ((offset >> 32) as u32, offset as u32);
    ((high % P * 123 + low % P) % P) as usize
}

/// Writes the SOURCE pattern starting at stream `offset` into `out`.
///
/// It computes the first period (two ascending runs) and copies it on, doubling, so it needs
/// no table in flash and runs at memory speed.
pub fn fill_pattern(offset: u64, out: &mut [u8]) {
    let len = out.len();
    let phase = period_phase(offset);
    let first = len.min(PERIOD);
    let (rising, wrapped) = out[..first].split_at_mut(first.min(PERIOD - phase));
    for (i, b) in rising.iter_mut().enumerate() {
        *b = (phase as u8).wrapping_add(i as u8);
    }
    for (i, b) in wrapped.iter_mut().enumerate() {
        *b = i as u8;
    }
    // Whole periods repeat: copy what is written after itself (at multiples of the period).
    let mut done = first;
    while done < len {
        let (written, rest) = out.split_at_mut(done);
        let n = done.min(rest.len());
        rest[..n].copy_from_slice(&written[..n]);
        done += n;
    }
}

/// Whether `data` is the SOURCE pattern starting at stream `offset`.
///
/// The first period is compared with the pattern, then every later byte with the byte one
/// period before it: one long comparison instead of one per period.
pub fn check_pattern(offset: u64, data: &[u8]) -> bool {
    let (head, rest) = data.split_at(data.len().min(PERIOD));
    pattern_chunks(offset, head.len()).all(|want| head == want) && rest == &data[..rest.len()]
}

/// An INFO reply: who the responder is and what it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct InfoReply<'a> {
    /// The protocol version the responder speaks.
    pub version: u8,
    /// The capabilities it supports.
    pub capabilities: u16,
    /// The largest DATA payload it accepts.
    pub max_payload: u16,
    /// DATA packets it accepts in flight.
    pub window: u16,
    /// The largest message it accepts.
    pub max_message: u32,
    /// Its receive buffer, in bytes.
    pub rx_buffer: u32,
    /// Its send buffer, in bytes.
    pub tx_buffer: u32,
    /// A name for people, such as "framelink serve" or a board's name (UTF-8, at most 255 bytes).
    pub name: &'a str,
    /// The responder's software version (UTF-8, at most 255 bytes).
    pub software: &'a str,
}

impl<'a> InfoReply<'a> {
    /// An INFO reply.
    #[allow(clippy::too_many_arguments, reason = "a plain record, built once per responder")]
    pub const fn new(
        version: u8,
        capabilities: u16,
        max_payload: u16,
        window: u16,
        max_message: u32,
        rx_buffer: u32,
        tx_buffer: u32,
        name: &'a str,
        software: &'a str,
    ) -> Self {
        Self { version, capabilities, max_payload, window, max_message, rx_buffer, tx_buffer, name, software }
    }
}

/// Why a service message could not be served, as carried by an ERROR reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ServiceError {
    /// An op code this responder does not know.
    UnknownOp(u8),
    /// A message too short, or with fields out of range, for its op code.
    Malformed(u8),
}

impl ServiceError {
    /// The op code of the message that was not served.
    pub fn op(&self) -> u8 {
        match *self {
            Self::UnknownOp(op) | Self::Malformed(op) => op,
        }
    }
}

impl core::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownOp(op) => write!(f, "unknown service operation {op:#04x}"),
            Self::Malformed(op) => write!(f, "malformed service message (operation {op:#04x})"),
        }
    }
}

impl core::error::Error for ServiceError {}

/// A service message, request or reply. Parsed from and written to the bytes of one session
/// message; see `docs/PROTOCOL.md` section 14 for the layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ServiceMessage<'a> {
    /// Echo `payload` back, with `id`.
    Echo {
        /// Chosen by the client, returned unchanged.
        id: u32,
        /// Any bytes.
        payload: &'a [u8],
    },
    /// Discard `payload`, count it.
    Sink {
        /// Any bytes.
        payload: &'a [u8],
    },
    /// Send the pattern in messages of `size` bytes, until `bytes` bytes (if not 0) or
    /// `millis` milliseconds (if not 0) are reached.
    Source {
        /// Returned in every SOURCE-DATA and in SOURCE-END.
        id: u32,
        /// Pattern bytes to send; 0 for no byte limit.
        bytes: u64,
        /// Milliseconds to send for; 0 for no time limit.
        millis: u32,
        /// Size of each SOURCE-DATA message, header included (at least 15).
        size: u32,
    },
    /// Ask for the counters.
    Stats,
    /// Ask who the responder is.
    Info,
    /// The answer to ECHO.
    EchoReply {
        /// The request's id.
        id: u32,
        /// The request's payload.
        payload: &'a [u8],
    },
    /// One message of a SOURCE stream.
    SourceData {
        /// The request's id.
        id: u32,
        /// Stream offset of `data`'s first byte.
        offset: u64,
        /// Pattern bytes.
        data: &'a [u8],
    },
    /// The end of a SOURCE stream.
    SourceEnd {
        /// The request's id.
        id: u32,
        /// Pattern bytes sent in all.
        bytes: u64,
    },
    /// The counters.
    StatsReply(StatsReply),
    /// Who the responder is.
    InfoReply(InfoReply<'a>),
    /// The request with op code `op` was not served.
    Error {
        /// Why.
        error: ServiceError,
    },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Reads a string of one length byte and that many UTF-8 bytes at `at`; returns it and the end.
fn str_at(b: &[u8], at: usize) -> Option<(&str, usize)> {
    let len = usize::from(*b.get(at)?);
    let bytes = b.get(at + 1..at + 1 + len)?;
    Some((core::str::from_utf8(bytes).ok()?, at + 1 + len))
}

impl<'a> ServiceMessage<'a> {
    /// Parses a session message. `Ok(None)` when it is not a service message (its first byte
    /// is not [`TAG`]): an ordinary application message.
    pub fn parse(message: &'a [u8]) -> Result<Option<Self>, ServiceError> {
        Self::parse_with(message, Self::parse_reply)
    }

    /// As [`parse`](Self::parse), for a responder: only requests; a reply's op code is an
    /// unknown operation to it. (The reply parsers, INFO's UTF-8 check among them, stay out
    /// of firmware.)
    pub(crate) fn parse_request(message: &'a [u8]) -> Result<Option<Self>, ServiceError> {
        Self::parse_with(message, |code, _| Err(ServiceError::UnknownOp(code)))
    }

    fn parse_with(
        message: &'a [u8],
        other: impl FnOnce(u8, &'a [u8]) -> Result<Self, ServiceError>,
    ) -> Result<Option<Self>, ServiceError> {
        if message.first() != Some(&TAG) {
            return Ok(None);
        }
        let Some(&code) = message.get(1) else { return Err(ServiceError::UnknownOp(0)) };
        let b = &message[2..];
        let malformed = ServiceError::Malformed(code);
        let parsed = match code {
            op::ECHO => Self::Echo { id: u32_at(b, 0).ok_or(malformed)?, payload: &b[4..] },
            op::SINK => Self::Sink { payload: b },
            op::SOURCE => {
                let (id, bytes, millis, size) = (u32_at(b, 0), u64_at(b, 4), u32_at(b, 12), u32_at(b, 16));
                let (Some(id), Some(bytes), Some(millis), Some(size)) = (id, bytes, millis, size) else {
                    return Err(malformed);
                };
                if (size as usize) <= SOURCE_HEADER || (bytes == 0 && millis == 0) {
                    return Err(malformed);
                }
                Self::Source { id, bytes, millis, size }
            }
            op::STATS => Self::Stats,
            op::INFO => Self::Info,
            code => other(code, b)?,
        };
        Ok(Some(parsed))
    }

    /// The body of a reply with op `code`.
    fn parse_reply(code: u8, b: &'a [u8]) -> Result<Self, ServiceError> {
        let malformed = ServiceError::Malformed(code);
        let parsed = match code {
            op::ECHO_REPLY => Self::EchoReply { id: u32_at(b, 0).ok_or(malformed)?, payload: &b[4..] },
            op::SOURCE_DATA => {
                let id = u32_at(b, 0).ok_or(malformed)?;
                let offset = u64_at(b, 4).ok_or(malformed)?;
                Self::SourceData { id, offset, data: &b[12..] }
            }
            op::SOURCE_END => {
                let id = u32_at(b, 0).ok_or(malformed)?;
                Self::SourceEnd { id, bytes: u64_at(b, 4).ok_or(malformed)? }
            }
            op::STATS_REPLY => Self::StatsReply(StatsReply::read(b).ok_or(malformed)?),
            op::INFO_REPLY => {
                let fixed = (|| {
                    Some((
                        *b.first()?,
                        u16_at(b, 1)?,
                        u16_at(b, 3)?,
                        u16_at(b, 5)?,
                        u32_at(b, 7)?,
                        u32_at(b, 11)?,
                        u32_at(b, 15)?,
                    ))
                })();
                let (version, capabilities, max_payload, window, max_message, rx_buffer, tx_buffer) =
                    fixed.ok_or(malformed)?;
                let (name, end) = str_at(b, 19).ok_or(malformed)?;
                let (software, _) = str_at(b, end).ok_or(malformed)?;
                Self::InfoReply(InfoReply {
                    version,
                    capabilities,
                    max_payload,
                    window,
                    max_message,
                    rx_buffer,
                    tx_buffer,
                    name,
                    software,
                })
            }
            op::ERROR => {
                let (&kind, &failed) = (b.first().ok_or(malformed)?, b.get(1).ok_or(malformed)?);
                let error = match kind {
                    1 => ServiceError::UnknownOp(failed),
                    _ => ServiceError::Malformed(failed),
                };
                Self::Error { error }
            }
            other => return Err(ServiceError::UnknownOp(other)),
        };
        Ok(parsed)
    }

    /// The bytes [`emit`](Self::emit) writes.
    pub fn encoded_len(&self) -> usize {
        self.with_fields(|_, fields| wire_len(fields))
    }

    /// The op code (byte 1).
    pub fn op(&self) -> u8 {
        match self {
            Self::Echo { .. } => op::ECHO,
            Self::Sink { .. } => op::SINK,
            Self::Source { .. } => op::SOURCE,
            Self::Stats => op::STATS,
            Self::Info => op::INFO,
            Self::EchoReply { .. } => op::ECHO_REPLY,
            Self::SourceData { .. } => op::SOURCE_DATA,
            Self::SourceEnd { .. } => op::SOURCE_END,
            Self::StatsReply(_) => op::STATS_REPLY,
            Self::InfoReply(_) => op::INFO_REPLY,
            Self::Error { .. } => op::ERROR,
        }
    }

    /// Writes the message at the start of `out`; returns its length. Nothing is written on
    /// error. Names longer than 255 bytes are cut (at a character boundary).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        self.with_fields(|code, fields| write(out, code, fields))
    }

    /// As [`emit`](Self::emit), for a responder: a reply other than STATS-REPLY (requests and
    /// STATS-REPLY, which the responder writes from its counters, stay out of firmware).
    pub(crate) fn emit_reply(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        self.with_reply_fields(|code, fields| write(out, code, fields))
    }

    /// Calls `f` with the op code and the fields that follow it, in wire order: the layouts of
    /// `docs/PROTOCOL.md` section 14, written once for both [`emit`](Self::emit) and
    /// [`encoded_len`](Self::encoded_len).
    fn with_fields<R>(&self, f: impl FnOnce(u8, &[&[u8]]) -> R) -> R {
        match *self {
            Self::Echo { id, payload } => f(op::ECHO, &[&id.to_le_bytes(), payload]),
            Self::Sink { payload } => f(op::SINK, &[payload]),
            Self::Source { id, bytes, millis, size } => f(
                op::SOURCE,
                &[&id.to_le_bytes(), &bytes.to_le_bytes(), &millis.to_le_bytes(), &size.to_le_bytes()],
            ),
            Self::StatsReply(stats) => {
                let (session, server) = stats.counters();
                let server_len = stats.server.map_or(0, |s| s.fields_sent() * 8);
                f(
                    op::STATS_REPLY,
                    &[
                        session.as_flattened(),
                        server.as_ref().map_or(&[], |s| &s.as_flattened()[..server_len]),
                    ],
                )
            }
            _ => self.with_reply_fields(f),
        }
    }

    /// [`with_fields`](Self::with_fields) for the messages a responder writes through
    /// [`emit_reply`](Self::emit_reply): the replies but STATS-REPLY, and the requests without
    /// a body.
    fn with_reply_fields<R>(&self, f: impl FnOnce(u8, &[&[u8]]) -> R) -> R {
        match *self {
            Self::EchoReply { id, payload } => f(op::ECHO_REPLY, &[&id.to_le_bytes(), payload]),
            Self::SourceData { id, offset, data } => {
                f(op::SOURCE_DATA, &[&id.to_le_bytes(), &offset.to_le_bytes(), data])
            }
            Self::SourceEnd { id, bytes } => f(op::SOURCE_END, &[&id.to_le_bytes(), &bytes.to_le_bytes()]),
            Self::InfoReply(info) => {
                let (name, software) = (cut(info.name), cut(info.software));
                f(
                    op::INFO_REPLY,
                    &[
                        &[info.version],
                        &info.capabilities.to_le_bytes(),
                        &info.max_payload.to_le_bytes(),
                        &info.window.to_le_bytes(),
                        &info.max_message.to_le_bytes(),
                        &info.rx_buffer.to_le_bytes(),
                        &info.tx_buffer.to_le_bytes(),
                        &[name.len() as u8],
                        name.as_bytes(),
                        &[software.len() as u8],
                        software.as_bytes(),
                    ],
                )
            }
            Self::Error { error } => {
                let (kind, failed) = match error {
                    ServiceError::UnknownOp(op) => (1, op),
                    ServiceError::Malformed(op) => (2, op),
                };
                f(op::ERROR, &[&[kind, failed]])
            }
            // Stats and Info have no body; `with_fields` writes the others itself.
            Self::Stats | Self::Info | Self::Echo { .. } | Self::Sink { .. } | Self::Source { .. } => {
                f(self.op(), &[])
            }
            Self::StatsReply(_) => f(op::STATS_REPLY, &[]),
        }
    }
}

/// The length of a message of `fields`: tag, op code, fields.
fn wire_len(fields: &[&[u8]]) -> usize {
    fields.iter().fold(2, |len, field| len + field.len())
}

/// Writes the tag, op `code` and `fields` at the start of `out`; returns the length. Nothing
/// is written when `out` is too small.
pub(super) fn write(out: &mut [u8], code: u8, fields: &[&[u8]]) -> Result<usize, BufferTooSmall> {
    let len = wire_len(fields);
    let Some([tag, op, rest @ ..]) = out.get_mut(..len) else {
        return Err(BufferTooSmall { required: len });
    };
    (*tag, *op) = (TAG, code);
    let mut rest = rest;
    for field in fields {
        // Never short: `len` counts every field.
        let Some((dst, tail)) = core::mem::take(&mut rest).split_at_mut_checked(field.len()) else { break };
        dst.copy_from_slice(field);
        rest = tail;
    }
    Ok(len)
}

fn cut(s: &str) -> &str {
    if s.len() <= 255 {
        return s;
    }
    let mut end = 255;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
