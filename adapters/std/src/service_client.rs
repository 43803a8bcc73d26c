//! A blocking client of the test service (ECHO, INFO, STATS, SOURCE, SINK) over a [`Link`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use framelink_core::service::{
    Client, ClientError, InfoReply, Pending, Reply, SINK_HEADER, SOURCE_HEADER, SOURCE_REQUEST_LEN,
    StatsReply, fill_pattern,
};

use crate::{CancelToken, Link, LinkConfig, LinkError, LinkEventRef, ToAddr, Transport};

/// How long a request waits for its reply, and a SOURCE stream or a SINK's acknowledgements
/// for progress, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between looks at the cancel flag, and a SINK's at its deadline.
const TICK: Duration = Duration::from_millis(100);
/// The most pattern bytes one SOURCE request asks for; longer transfers chain requests.
const SOURCE_CHUNK: u64 = 1 << 31;
/// Message size over `tcp+cobs://` and `serial://`, where a slow serial line may be behind.
const SERIAL_SIZE: u32 = 256;

/// A client of the test service that `framelink serve` and the firmware example answer:
/// ECHO round trips, the responder's INFO and STATS, and throughput one way (SOURCE: the
/// responder sends a pattern, every byte checked) or the other (SINK).
///
/// Requests go one at a time, each waiting for its reply at most the [timeout](Self::timeout).
/// Messages that arrive meanwhile and answer no request (application messages, late replies)
/// are dropped. A [`CancelToken`] on the link ([`LinkConfig::cancel_token`],
/// [`Link::set_cancel_token`], [`with_cancel`](Self::with_cancel)) ends any request early,
/// with [`LinkError::Interrupted`].
///
/// ```
/// use framelink_std::{PeerInfo, Reply, Server, ServerConfig, ServiceClient};
///
/// // A server whose sessions answer service requests (as `framelink serve`).
/// let config = ServerConfig::new().responder("doc server", "1.0");
/// let server = Server::bind(&["tcp://127.0.0.1:0"], config)?;
/// let addr = server.local_addrs()[0].clone();
/// let handle = server.spawn(|_: &PeerInfo, _: &[u8], _: &mut Reply<'_>| {})?;
///
/// let mut client = ServiceClient::connect(&addr)?;
/// let rtt = client.ping(64)?;
/// assert!(rtt.as_secs() < 10);
/// assert_eq!(client.info()?.name, "doc server");
/// let received = client.source(100_000)?;
/// assert_eq!(received.bytes, 100_000);
/// client.sink(50_000)?;
/// assert_eq!(client.stats()?.sink_bytes, 50_000);
/// client.close()?;
/// handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServiceClient {
    link: Link,
    client: Client,
    timeout: Duration,
    message_size: Option<u32>,
    cancel: Option<CancelToken>,
}

/// Who the responder is and what it accepts (its INFO reply).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ServiceInfo {
    /// A name for people, such as "framelink serve" or a board's name.
    pub name: String,
    /// The responder's software version.
    pub software: String,
    /// The protocol version it speaks.
    pub version: u8,
    /// The capabilities it supports
    /// ([`Capabilities`](framelink_core::wire::Capabilities) bits).
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
}

impl From<InfoReply<'_>> for ServiceInfo {
    fn from(info: InfoReply<'_>) -> Self {
        Self {
            name: info.name.to_owned(),
            software: info.software.to_owned(),
            version: info.version,
            capabilities: info.capabilities,
            max_payload: info.max_payload,
            window: info.window,
            max_message: info.max_message,
            rx_buffer: info.rx_buffer,
            tx_buffer: info.tx_buffer,
        }
    }
}

/// What a SOURCE or SINK transfer moved, and how long it took.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Transfer {
    /// SOURCE: pattern bytes received, every one checked; SINK: payload bytes the responder
    /// acknowledged.
    pub bytes: u64,
    /// From the request to the last byte (SOURCE) or acknowledgement (SINK).
    pub elapsed: Duration,
}

impl Transfer {
    /// The rate, in bits per second.
    pub fn bits_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { self.bytes as f64 * 8.0 / seconds } else { 0.0 }
    }
}

/// Why a request to the test service failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RequestError {
    /// The link failed or ended.
    Link(LinkError),
    /// The responder refused the request, or its reply was wrong.
    Reply(ClientError),
    /// No reply (or, in a transfer, no progress) within the timeout.
    TimedOut,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link(error) => write!(f, "{error}"),
            Self::Reply(error) => write!(f, "{error}"),
            Self::TimedOut => f.write_str("no reply from the responder in time"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Link(error) => Some(error),
            Self::Reply(error) => Some(error),
            _ => None,
        }
    }
}

impl From<LinkError> for RequestError {
    fn from(error: LinkError) -> Self {
        Self::Link(error)
    }
}

impl From<ClientError> for RequestError {
    fn from(error: ClientError) -> Self {
        Self::Reply(error)
    }
}

impl ServiceClient {
    /// A client over `link`.
    pub fn new(link: Link) -> Self {
        Self { link, client: Client::new(), timeout: DEFAULT_TIMEOUT, message_size: None, cancel: None }
    }

    /// Connects to `addr` with the default settings ([`Link::connect`]).
    pub fn connect<A: ToAddr>(addr: A) -> Result<Self, LinkError> {
        Link::connect(addr).map(Self::new)
    }

    /// How long a request waits for its reply, and a transfer for progress (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The size of each SOURCE and SINK message, header included (default: one packet on
    /// TCP and UDP, 256 bytes over `tcp+cobs://` and `serial://`; within what the peer takes).
    pub fn with_message_size(mut self, bytes: u32) -> Self {
        self.message_size = Some(bytes);
        self
    }

    /// Ends any request early, with [`LinkError::Interrupted`], within 100 ms of `flag` being
    /// set (by a Ctrl-C handler, another thread). Unlike a [`CancelToken`] on the link, it
    /// leaves the link alone: [`close`](Self::close) still closes gracefully.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(CancelToken::from_flag(flag));
        self
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The link, to send application messages between requests.
    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The link back.
    pub fn into_link(self) -> Link {
        self.link
    }

    /// Closes the link gracefully ([`Link::close`]).
    pub fn close(self) -> Result<(), LinkError> {
        self.link.close()
    }

    /// Sends an ECHO of `payload` and waits for it to come back (checked); returns the round
    /// trip.
    pub fn echo(&mut self, payload: &[u8]) -> Result<Duration, RequestError> {
        let mut request = vec![0; payload.len() + framelink_core::service::ECHO_HEADER];
        let (len, mut pending) = self.client.echo(payload, &mut request)?;
        let sent = Instant::now();
        self.link.send(&request[..len])?;
        self.reply(&mut pending, |reply| match reply {
            Reply::Echo { payload: back, .. } if back == payload => Some(Ok(sent.elapsed())),
            Reply::Echo { .. } => Some(Err(ClientError::EchoMismatch.into())),
            _ => None,
        })?
    }

    /// An ECHO message of `size` bytes (header included; at least 6) there and back: the round
    /// trip through the responder.
    pub fn ping(&mut self, size: usize) -> Result<Duration, RequestError> {
        let mut payload = vec![0; size.saturating_sub(framelink_core::service::ECHO_HEADER)];
        fill_pattern(0, &mut payload);
        self.echo(&payload)
    }

    /// The responder's INFO.
    pub fn info(&mut self) -> Result<ServiceInfo, RequestError> {
        let mut request = [0; 2];
        let (len, mut pending) = self.client.info(&mut request)?;
        self.link.send(&request[..len])?;
        self.reply(&mut pending, |reply| match reply {
            Reply::Info(info) => Some(ServiceInfo::from(info)),
            _ => None,
        })
    }

    /// The responder's counters for this session (and its server's, when it runs in one).
    pub fn stats(&mut self) -> Result<StatsReply, RequestError> {
        let mut request = [0; 2];
        let (len, mut pending) = self.client.stats(&mut request)?;
        self.link.send(&request[..len])?;
        self.reply(&mut pending, |reply| match reply {
            Reply::Stats(stats) => Some(stats),
            _ => None,
        })
    }

    /// Asks the responder for `bytes` bytes of its pattern and receives them, every one
    /// checked.
    pub fn source(&mut self, bytes: u64) -> Result<Transfer, RequestError> {
        self.source_with(Some(bytes), None, |_| {})
    }

    /// Receives the responder's pattern for `duration`, every byte checked.
    pub fn source_for(&mut self, duration: Duration) -> Result<Transfer, RequestError> {
        self.source_with(None, Some(duration), |_| {})
    }

    /// Receives the responder's pattern until `bytes` bytes or `duration` (the first reached;
    /// at least one must be given), every byte checked, each message's data passed to
    /// `on_data` (to count progress) as it arrives.
    pub fn source_with(
        &mut self,
        bytes: Option<u64>,
        duration: Option<Duration>,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Transfer, RequestError> {
        if bytes.is_none() && duration.is_none() {
            return Err(ClientError::InvalidSource.into());
        }
        let size = self.message_size()?;
        let start = Instant::now();
        let end = duration.map(|d| start + d);
        let mut received = 0u64;
        loop {
            let millis = match end.map(|end| end.saturating_duration_since(Instant::now())) {
                None => 0,
                Some(rest) if rest.is_zero() => break,
                Some(rest) => u32::try_from(rest.as_millis().max(1)).unwrap_or(u32::MAX),
            };
            let ask = match bytes.map(|b| b - received) {
                Some(0) => break,
                Some(left) => left.min(SOURCE_CHUNK),
                None => SOURCE_CHUNK,
            };
            let got = self.source_stream(ask, millis, size, &mut on_data)?;
            received += got;
            if got < ask && (bytes.is_none() || millis == 0) {
                break; // The time limit ended it.
            }
        }
        Ok(Transfer { bytes: received, elapsed: start.elapsed() })
    }

    /// One SOURCE request and its stream; returns the bytes received.
    fn source_stream(
        &mut self,
        bytes: u64,
        millis: u32,
        size: u32,
        on_data: &mut impl FnMut(&[u8]),
    ) -> Result<u64, RequestError> {
        let mut request = [0; SOURCE_REQUEST_LEN];
        let (len, mut pending) = self.client.source(bytes, millis, size, &mut request)?;
        self.link.send(&request[..len])?;
        loop {
            // Each message of data restarts the timeout.
            let end = self.reply(&mut pending, |reply| match reply {
                Reply::SourceData { data, .. } => {
                    on_data(data);
                    Some(None)
                }
                Reply::SourceEnd { bytes, .. } => Some(Some(bytes)),
                _ => None,
            })?;
            if let Some(bytes) = end {
                return Ok(bytes);
            }
        }
    }

    /// Sends `bytes` bytes of SINK payload and waits until the responder has acknowledged
    /// them all.
    pub fn sink(&mut self, bytes: u64) -> Result<Transfer, RequestError> {
        self.sink_with(Some(bytes), None)
    }

    /// Sends SINK messages for `duration`, then waits until the responder has acknowledged
    /// them all.
    pub fn sink_for(&mut self, duration: Duration) -> Result<Transfer, RequestError> {
        self.sink_with(None, Some(duration))
    }

    /// Sends SINK messages until `bytes` payload bytes or `duration`, whichever comes first,
    /// holding at most one message beyond what the session's credit lets out (so that a slow
    /// link is not left a backlog); then waits for the last acknowledgements.
    fn sink_with(
        &mut self,
        bytes: Option<u64>,
        duration: Option<Duration>,
    ) -> Result<Transfer, RequestError> {
        let size = self.message_size()? as usize;
        let payload = vec![0; size - SINK_HEADER];
        let mut message = vec![0; size];
        self.client.sink(&payload, &mut message)?;
        let start = Instant::now();
        let end = duration.map(|d| start + d);
        let sent_before = self.link.stats().bytes_sent;
        let (mut queued, mut payload_sent) = (0u64, 0u64);
        let mut progress = (sent_before, start);
        loop {
            self.check_cancel()?;
            let now = Instant::now();
            if end.is_some_and(|end| now >= end) || bytes.is_some_and(|b| payload_sent >= b) {
                break;
            }
            let bytes_sent = self.link.stats().bytes_sent;
            if bytes_sent != progress.0 {
                progress = (bytes_sent, now);
            } else if now.duration_since(progress.1) > self.timeout {
                return Err(RequestError::TimedOut);
            }
            if queued.saturating_sub(bytes_sent - sent_before) >= size as u64 {
                self.link.drive(Some(TICK.min(self.timeout)))?;
                continue;
            }
            let len = bytes.map_or(size, |b| (b - payload_sent).min(size as u64 - 2) as usize + SINK_HEADER);
            // The SINK message's payload shortened to `len`: its header does not count lengths.
            self.link.send(&message[..len])?;
            queued += len as u64;
            payload_sent += (len - SINK_HEADER) as u64;
        }
        match self.link.flush(Some(self.timeout)) {
            Err(LinkError::TimedOut) => return Err(RequestError::TimedOut),
            other => other?,
        }
        Ok(Transfer { bytes: payload_sent, elapsed: start.elapsed() })
    }

    /// The SOURCE and SINK message size: the one set, or the transport's, within what the
    /// peer takes.
    fn message_size(&self) -> Result<u32, RequestError> {
        let max = self.link.peer().map_or(LinkConfig::DEFAULT_MAX_MESSAGE, |peer| peer.max_message);
        let payload = self.link.peer().map_or(1200, |peer| u32::from(peer.max_payload));
        let size = self.message_size.unwrap_or(match self.link.transport() {
            Transport::Tcp => payload,
            Transport::Udp => payload.min(1200),
            _ => SERIAL_SIZE,
        });
        let size = size.min(max).min(LinkConfig::DEFAULT_MAX_MESSAGE);
        if (size as usize) <= SOURCE_HEADER {
            return Err(ClientError::InvalidSource.into());
        }
        Ok(size)
    }

    /// Waits for the reply to `pending` that `take` accepts, at most the timeout.
    fn reply<T>(
        &mut self,
        pending: &mut Pending,
        mut take: impl FnMut(Reply<'_>) -> Option<T>,
    ) -> Result<T, RequestError> {
        let until = Instant::now() + self.timeout;
        loop {
            self.check_cancel()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RequestError::TimedOut);
            }
            let wait = if self.cancel.is_some() { left.min(TICK) } else { left };
            match self.link.next_event_ref(Some(wait))? {
                Some(LinkEventRef::Message(message)) => {
                    if let Some(found) = pending.accept(message)?.and_then(&mut take) {
                        return Ok(found);
                    }
                }
                Some(LinkEventRef::Closed(reason)) => return Err(LinkError::Closed(reason).into()),
                _ => {}
            }
        }
    }
}

impl ServiceClient {
    /// [`LinkError::Interrupted`] once the flag of [`with_cancel`](Self::with_cancel) is set.
    fn check_cancel(&self) -> Result<(), RequestError> {
        match &self.cancel {
            Some(token) if token.is_cancelled() => Err(LinkError::Interrupted.into()),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("link", &self.link)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
