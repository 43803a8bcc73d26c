//! What the drivers share: their error type, the clock they read, and what each makes of an
//! event, so that every driver reports the same results and the same close reason.

use crate::Instant;
use crate::session::{CloseReason, Event, SendError};
use crate::wire::BufferTooSmall;

/// A source of the current time for the blocking and async drivers.
///
/// Implemented for every `FnMut() -> Instant`, so a closure over a hardware timer or
/// `std::time::Instant` will do.
pub trait Clock {
    /// The current time; must never go backwards.
    fn now(&mut self) -> Instant;
}

impl<F: FnMut() -> Instant> Clock for F {
    fn now(&mut self) -> Instant {
        self()
    }
}

/// Why a driver call failed.
///
/// `E` is the transport's error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed.
    Io(E),
    /// The transport reached its end (the peer closed the connection) before the session
    /// closed.
    ConnectionLost,
    /// The session ended; the reason says how. A graceful close is `Closed(CloseReason::Local)`
    /// or `Closed(CloseReason::Peer)`.
    Closed(CloseReason),
    /// The session refused a message or ping.
    Send(SendError),
    /// A buffer given to the driver is too small for the largest frame.
    BufferTooSmall(BufferTooSmall),
}

impl<E> Error<E> {
    /// The error for a message or ping the session refused: [`Closed`](Self::Closed) with the
    /// reason once the session has ended, else [`Send`](Self::Send).
    pub fn refused(error: SendError, close_reason: Option<CloseReason>) -> Self {
        match close_reason {
            Some(reason) => Self::Closed(reason),
            None => Self::Send(error),
        }
    }
}

/// A transport error as a driver reports it: the connection ended under it (reset, aborted,
/// broken pipe, not connected) is [`Error::ConnectionLost`], like the end of the stream;
/// anything else is [`Error::Io`].
pub(crate) fn lost_or_io<E: embedded_io::Error>(error: E) -> Error<E> {
    use embedded_io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::NotConnected => Error::ConnectionLost,
        _ => Error::Io(error),
    }
}

/// What a driver's `next_event` hands out once [`Connection::is_ready`] said it may: the
/// event, or the reason the session ended.
///
/// [`Connection::is_ready`]: crate::connection::Connection::is_ready
pub(crate) fn event_or_end<E>(next: Option<Result<Event<'_>, CloseReason>>) -> Result<Event<'_>, Error<E>> {
    match next {
        Some(Ok(event)) => Ok(event),
        Some(Err(reason)) => Err(Error::Closed(reason)),
        // `is_ready` promised an answer; a session that gives none has not ended.
        None => Err(Error::Closed(CloseReason::Local)),
    }
}

/// Where a driver's `connect` stands after an event: done (`Some`) at [`Event::Connected`], at
/// the end of the session, or on an error.
pub(crate) fn connected<E>(next: Result<Event<'_>, Error<E>>) -> Option<Result<(), Error<E>>> {
    match next {
        Ok(Event::Connected) => Some(Ok(())),
        Ok(Event::Closed(reason)) | Err(Error::Closed(reason)) => Some(Err(Error::Closed(reason))),
        Ok(_) => None,
        Err(error) => Some(Err(error)),
    }
}

/// Where a driver's `close` stands after an event: done (`Some`) when the session has ended,
/// `Ok` if gracefully (by either side), or on an error.
pub(crate) fn closed<E>(next: Result<Event<'_>, Error<E>>) -> Option<Result<(), Error<E>>> {
    match next {
        Ok(Event::Closed(reason)) | Err(Error::Closed(reason)) => Some(match reason {
            CloseReason::Local | CloseReason::Peer => Ok(()),
            reason => Err(Error::Closed(reason)),
        }),
        Ok(_) => None,
        Err(error) => Some(Err(error)),
    }
}

impl<E> From<SendError> for Error<E> {
    fn from(error: SendError) -> Self {
        Self::Send(error)
    }
}

impl<E> From<BufferTooSmall> for Error<E> {
    fn from(error: BufferTooSmall) -> Self {
        Self::BufferTooSmall(error)
    }
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(error) => write!(f, "transport error: {error:?}"),
            Self::ConnectionLost => f.write_str("connection lost"),
            Self::Closed(reason) => write!(f, "session ended: {reason}"),
            Self::Send(error) => write!(f, "{error}"),
            Self::BufferTooSmall(error) => write!(f, "{error}"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for Error<E> {}
