//! The client side of the test service, sans I/O: requests written into the caller's buffer,
//! and replies matched to the request they answer (by id and kind), every SOURCE byte checked.

use super::StatsReply;
use super::message::{
    InfoReply, SOURCE_HEADER, ServiceError, ServiceMessage, check_pattern, op, pattern_byte,
};
use crate::wire::BufferTooSmall;

/// Bytes of an ECHO request before its payload: tag, op, id.
pub const ECHO_HEADER: usize = 6;
/// Bytes of a SINK request before its payload: tag, op.
pub const SINK_HEADER: usize = 2;
/// Bytes of a SOURCE request.
pub const SOURCE_REQUEST_LEN: usize = 22;

/// Writes requests to the test service, each with an id of its own, and hands back a
/// [`Pending`] that recognises its reply. Holds no buffer: requests go into the caller's.
///
/// ```
/// use framelink_core::service::{Client, Reply, Responder, Handled};
/// use framelink_core::Instant;
///
/// let mut client = Client::new();
/// let mut request = [0u8; 64];
/// let (len, mut pending) = client.echo(b"hi", &mut request)?;
///
/// // The far side (here a responder in the same program) answers.
/// let mut responder = Responder::new("doc", "0.1");
/// let mut reply = [0u8; 64];
/// let Handled::Reply(n) = responder.handle(Instant::ZERO, &request[..len], &mut reply) else { panic!() };
///
/// assert_eq!(pending.accept(b"a text message")?, None); // not a reply: skipped
/// let Some(Reply::Echo { payload, .. }) = pending.accept(&reply[..n])? else { panic!() };
/// assert_eq!(payload, b"hi");
/// # Ok::<(), framelink_core::service::ClientError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    next_id: u32,
}

impl Client {
    /// A client whose first request has id 1.
    pub const fn new() -> Self {
        Self { next_id: 1 }
    }

    /// A client whose first request has id `id` (one that reconnects can keep its ids apart
    /// from replies to an earlier session's requests).
    pub const fn starting_at(id: u32) -> Self {
        Self { next_id: id }
    }

    /// Writes an ECHO of `payload` into `out` (it needs [`ECHO_HEADER`] bytes more); returns
    /// its length and the pending request. The id is the request's token: the reply carries it.
    pub fn echo(&mut self, payload: &[u8], out: &mut [u8]) -> Result<(usize, Pending), ClientError> {
        let id = self.next_id;
        let len = ServiceMessage::Echo { id, payload }.emit(out)?;
        Ok((len, self.issue(id, Kind::Echo { len: payload.len() })))
    }

    /// Writes an INFO request (2 bytes) into `out`.
    pub fn info(&mut self, out: &mut [u8]) -> Result<(usize, Pending), ClientError> {
        let len = ServiceMessage::Info.emit(out)?;
        Ok((len, self.issue(self.next_id, Kind::Info)))
    }

    /// Writes a STATS request (2 bytes) into `out`.
    pub fn stats(&mut self, out: &mut [u8]) -> Result<(usize, Pending), ClientError> {
        let len = ServiceMessage::Stats.emit(out)?;
        Ok((len, self.issue(self.next_id, Kind::Stats)))
    }

    /// Writes a SOURCE request ([`SOURCE_REQUEST_LEN`] bytes) into `out`: the responder sends
    /// its pattern in messages of `size` bytes (header included, more than 14) until `bytes`
    /// bytes (if not 0) or `millis` milliseconds (if not 0) are reached, then SOURCE-END.
    /// [`ClientError::InvalidSource`] for a request the responder would refuse.
    pub fn source(
        &mut self,
        bytes: u64,
        millis: u32,
        size: u32,
        out: &mut [u8],
    ) -> Result<(usize, Pending), ClientError> {
        if size as usize <= SOURCE_HEADER || (bytes == 0 && millis == 0) {
            return Err(ClientError::InvalidSource);
        }
        let id = self.next_id;
        let len = ServiceMessage::Source { id, bytes, millis, size }.emit(out)?;
        Ok((len, self.issue(id, Kind::Source { received: 0 })))
    }

    /// Writes a SINK of `payload` into `out` (it needs [`SINK_HEADER`] bytes more). No reply
    /// comes: the session's acknowledgement says it arrived, and STATS counts it.
    pub fn sink(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, ClientError> {
        Ok(ServiceMessage::Sink { payload }.emit(out)?)
    }

    /// The request `id` of `kind`; the next one gets the next id.
    fn issue(&mut self, id: u32, kind: Kind) -> Pending {
        self.next_id = id.wrapping_add(1);
        Pending { id, kind }
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// What a pending request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Echo { len: usize },
    Info,
    Stats,
    Source { received: u64 },
}

/// A request sent and not yet answered: [`accept`](Self::accept) each message that arrives
/// until it returns the reply (for SOURCE: the data, then the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    id: u32,
    kind: Kind,
}

impl Pending {
    /// The request's id (the token an ECHO reply and SOURCE data carry back).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The request's op code ([`op::ECHO`], [`op::INFO`], ...).
    pub fn op(&self) -> u8 {
        match self.kind {
            Kind::Echo { .. } => op::ECHO,
            Kind::Info => op::INFO,
            Kind::Stats => op::STATS,
            Kind::Source { .. } => op::SOURCE,
        }
    }

    /// For a SOURCE request: the pattern bytes received and checked so far.
    pub fn received(&self) -> u64 {
        match self.kind {
            Kind::Source { received } => received,
            _ => 0,
        }
    }

    /// Looks at a received message: `Ok(Some(reply))` when it answers this request,
    /// `Ok(None)` when it does not (an application message, or a reply to another request),
    /// an error when the responder refused the request or answered it wrongly.
    ///
    /// SOURCE data is checked (its offset follows on, its bytes are the pattern) before it is
    /// handed back; the end is [`Reply::SourceEnd`] once every announced byte arrived.
    pub fn accept<'m>(&mut self, message: &'m [u8]) -> Result<Option<Reply<'m>>, ClientError> {
        let Some(reply) = Reply::parse(message)? else { return Ok(None) };
        let (id, op) = (self.id, self.op());
        match (&mut self.kind, reply) {
            (_, Reply::Error(error)) if error.op() == op => Err(ClientError::Responder(error)),
            (Kind::Echo { len }, Reply::Echo { id: got, payload }) if got == id => {
                if payload.len() == *len {
                    Ok(Some(reply))
                } else {
                    Err(ClientError::EchoMismatch)
                }
            }
            (Kind::Info, Reply::Info(_)) | (Kind::Stats, Reply::Stats(_)) => Ok(Some(reply)),
            (Kind::Source { received }, Reply::SourceData { id: got, offset, data }) if got == id => {
                if offset != *received {
                    return Err(ClientError::SourceOutOfOrder { expected: *received, got: offset });
                }
                if !check_pattern(offset, data) {
                    let at = data.iter().zip(offset..).position(|(&b, at)| b != pattern_byte(at));
                    return Err(ClientError::SourceCorrupted { offset: offset + at.unwrap_or(0) as u64 });
                }
                *received += data.len() as u64;
                Ok(Some(reply))
            }
            (Kind::Source { received }, Reply::SourceEnd { id: got, bytes }) if got == id => {
                if bytes == *received {
                    Ok(Some(reply))
                } else {
                    Err(ClientError::SourceIncomplete { announced: bytes, received: *received })
                }
            }
            _ => Ok(None),
        }
    }
}

/// A reply from the test service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply<'a> {
    /// The answer to ECHO `id`.
    Echo {
        /// The request's id.
        id: u32,
        /// The request's payload, returned.
        payload: &'a [u8],
    },
    /// The answer to INFO.
    Info(InfoReply<'a>),
    /// The answer to STATS.
    Stats(StatsReply),
    /// Pattern bytes of SOURCE stream `id`, from stream offset `offset`.
    SourceData {
        /// The request's id.
        id: u32,
        /// The stream offset of `data`'s first byte.
        offset: u64,
        /// Pattern bytes.
        data: &'a [u8],
    },
    /// The end of SOURCE stream `id`, after `bytes` pattern bytes.
    SourceEnd {
        /// The request's id.
        id: u32,
        /// Pattern bytes sent in all.
        bytes: u64,
    },
    /// A request was refused (its op code is in the error).
    Error(ServiceError),
}

impl<'a> Reply<'a> {
    /// Reads a received message: `Ok(None)` for an application message (not a service
    /// message), [`ClientError::Malformed`] for a service message that does not parse, and
    /// [`ClientError::Unexpected`] for a request (a client is sent replies only).
    pub fn parse(message: &'a [u8]) -> Result<Option<Self>, ClientError> {
        let Some(parsed) = ServiceMessage::parse(message).map_err(ClientError::Malformed)? else {
            return Ok(None);
        };
        Ok(Some(match parsed {
            ServiceMessage::EchoReply { id, payload } => Self::Echo { id, payload },
            ServiceMessage::InfoReply(info) => Self::Info(info),
            ServiceMessage::StatsReply(stats) => Self::Stats(stats),
            ServiceMessage::SourceData { id, offset, data } => Self::SourceData { id, offset, data },
            ServiceMessage::SourceEnd { id, bytes } => Self::SourceEnd { id, bytes },
            ServiceMessage::Error { error } => Self::Error(error),
            request => return Err(ClientError::Unexpected(request.op())),
        }))
    }

    /// Whether the request is answered with this reply (all but SOURCE data, after which more
    /// follows).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::SourceData { .. })
    }
}

/// Why a request could not be written, or its reply was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientError {
    /// The output buffer is too small for the request.
    BufferTooSmall(BufferTooSmall),
    /// A SOURCE request the responder would refuse: messages of 14 bytes or fewer, or neither
    /// a byte nor a time limit.
    InvalidSource,
    /// The responder answered the request with ERROR.
    Responder(ServiceError),
    /// A service message that does not parse.
    Malformed(ServiceError),
    /// A service request (this op code) arrived: the peer is a client, not a responder.
    Unexpected(u8),
    /// The ECHO reply's payload is not as long as the request's.
    EchoMismatch,
    /// SOURCE data that does not follow on from the bytes received so far.
    SourceOutOfOrder {
        /// The offset that was due.
        expected: u64,
        /// The offset that came.
        got: u64,
    },
    /// SOURCE data that is not the pattern, from this stream offset.
    SourceCorrupted {
        /// The first wrong byte's stream offset.
        offset: u64,
    },
    /// A SOURCE-END announcing another count than the bytes that arrived.
    SourceIncomplete {
        /// Bytes the responder says it sent.
        announced: u64,
        /// Bytes received.
        received: u64,
    },
}

impl From<BufferTooSmall> for ClientError {
    fn from(error: BufferTooSmall) -> Self {
        Self::BufferTooSmall(error)
    }
}

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall(error) => write!(f, "{error}"),
            Self::InvalidSource => {
                f.write_str("invalid SOURCE request: messages of 15 bytes or more, and a byte or time limit")
            }
            Self::Responder(error) => write!(f, "the responder answered: {error}"),
            Self::Malformed(error) => write!(f, "bad reply: {error}"),
            Self::Unexpected(op) => write!(f, "the peer sent a service request ({op:#04x}), not a reply"),
            Self::EchoMismatch => f.write_str("the ECHO reply is not the payload sent"),
            Self::SourceOutOfOrder { expected, got } => {
                write!(f, "SOURCE data out of order: offset {got}, expected {expected}")
            }
            Self::SourceCorrupted { offset } => write!(f, "SOURCE data corrupted at stream offset {offset}"),
            Self::SourceIncomplete { announced, received } => {
                write!(f, "SOURCE ended after {announced} bytes, but {received} arrived")
            }
        }
    }
}

impl core::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instant;
    use crate::service::{Handled, Responder, fill_pattern};

    /// What the responder answers to `request`.
    fn answer<'o>(responder: &mut Responder<'_>, request: &[u8], out: &'o mut [u8]) -> &'o [u8] {
        match responder.handle(Instant::ZERO, request, out) {
            Handled::Reply(len) => &out[..len],
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn each_request_gets_its_own_id_and_only_its_reply_is_accepted() {
        let (mut client, mut responder) = (Client::new(), Responder::new("test", "1"));
        let (mut first, mut second, mut out) = ([0u8; 32], [0u8; 32], [0u8; 64]);
        let (len1, mut ping1) = client.echo(b"one", &mut first).unwrap();
        let (len2, mut ping2) = client.echo(b"two", &mut second).unwrap();
        assert_eq!((ping1.id(), ping2.id()), (1, 2));
        let reply1 = answer(&mut responder, &first[..len1], &mut out).to_vec();
        assert_eq!(ping2.accept(&reply1), Ok(None), "a stale reply is skipped");
        assert_eq!(ping1.accept(&reply1), Ok(Some(Reply::Echo { id: 1, payload: b"one" })));
        let reply2 = answer(&mut responder, &second[..len2], &mut out);
        assert_eq!(ping2.accept(reply2), Ok(Some(Reply::Echo { id: 2, payload: b"two" })));
    }

    #[test]
    fn info_and_stats_are_matched_by_kind_and_errors_by_op() {
        let mut client = Client::new();
        let mut request = [0u8; 2];
        let (_, mut info) = client.info(&mut request).unwrap();
        let (_, mut stats) = client.stats(&mut request).unwrap();
        let mut out = [0u8; 256];
        let len = ServiceMessage::StatsReply(StatsReply::default()).emit(&mut out).unwrap();
        assert_eq!(info.accept(&out[..len]), Ok(None));
        assert_eq!(stats.accept(&out[..len]), Ok(Some(Reply::Stats(StatsReply::default()))));
        let refused = ServiceError::UnknownOp(op::INFO);
        let len = ServiceMessage::Error { error: refused }.emit(&mut out).unwrap();
        assert_eq!(stats.accept(&out[..len]), Ok(None), "another request's refusal");
        assert_eq!(info.accept(&out[..len]), Err(ClientError::Responder(refused)));
        assert_eq!(
            info.accept(&[super::super::TAG, 0x99]),
            Err(ClientError::Malformed(ServiceError::UnknownOp(0x99)))
        );
        let len = ServiceMessage::Stats.emit(&mut out).unwrap();
        assert_eq!(info.accept(&out[..len]), Err(ClientError::Unexpected(op::STATS)));
    }

    #[test]
    fn a_source_stream_is_checked_byte_by_byte() {
        let (mut client, mut responder) = (Client::new(), Responder::new("test", "1"));
        let mut request = [0u8; SOURCE_REQUEST_LEN];
        assert_eq!(client.source(0, 0, 100, &mut request), Err(ClientError::InvalidSource));
        assert_eq!(client.source(10, 0, 14, &mut request), Err(ClientError::InvalidSource));
        let (len, mut stream) = client.source(250, 0, 100, &mut request).unwrap();
        assert_eq!(len, SOURCE_REQUEST_LEN);
        let mut out = [0u8; 100];
        assert_eq!(responder.handle(Instant::ZERO, &request[..len], &mut out), Handled::Done);
        let mut replies = 0;
        while let Some(n) = responder.poll_source(Instant::ZERO, &mut out) {
            let reply = stream.accept(&out[..n]).unwrap().unwrap();
            replies += 1;
            if reply.is_final() {
                assert_eq!(reply, Reply::SourceEnd { id: stream.id(), bytes: 250 });
                break;
            }
        }
        assert_eq!((replies, stream.received()), (4, 250), "three of data (86 + 86 + 78), the end");
    }

    #[test]
    fn bad_source_data_is_named() {
        let mut client = Client::new();
        let mut request = [0u8; SOURCE_REQUEST_LEN];
        let (_, mut stream) = client.source(100, 0, 64, &mut request).unwrap();
        let id = stream.id();
        let mut data = [0u8; 10];
        fill_pattern(0, &mut data);
        let mut out = [0u8; 64];
        let mut emit = |message: ServiceMessage<'_>| {
            let len = message.emit(&mut out).unwrap();
            out[..len].to_vec()
        };
        let skipped = emit(ServiceMessage::SourceData { id: id + 1, offset: 5, data: &data });
        assert_eq!(stream.accept(&skipped), Ok(None), "another stream's data");
        let late = emit(ServiceMessage::SourceData { id, offset: 5, data: &data });
        assert_eq!(stream.accept(&late), Err(ClientError::SourceOutOfOrder { expected: 0, got: 5 }));
        data[3] ^= 1;
        let bad = emit(ServiceMessage::SourceData { id, offset: 0, data: &data });
        assert_eq!(stream.accept(&bad), Err(ClientError::SourceCorrupted { offset: 3 }));
        let short = emit(ServiceMessage::SourceEnd { id, bytes: 100 });
        assert_eq!(stream.accept(&short), Err(ClientError::SourceIncomplete { announced: 100, received: 0 }));
    }

    #[test]
    fn requests_that_do_not_fit_are_refused_unwritten() {
        let mut client = Client::new();
        let mut small = [0u8; 7];
        let error = client.echo(b"ab", &mut small).unwrap_err();
        assert_eq!(error, ClientError::BufferTooSmall(BufferTooSmall { required: 8 }));
        assert_eq!(
            client.sink(b"abcdef", &mut small),
            Err(ClientError::BufferTooSmall(BufferTooSmall { required: 8 }))
        );
        assert_eq!(client.sink(b"abcde", &mut small), Ok(7));
        assert_eq!(client.echo(b"a", &mut small).map(|(len, p)| (len, p.id())), Ok((7, 1)), "no id spent");
    }
}
