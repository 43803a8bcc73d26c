//! The socket under a [`Link`](crate::Link): a TCP stream, a connected UDP socket or a serial
//! port, written whole and read with a timeout. A failure is kept, and every later call
//! reports it again.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use framelink_core::connection::Gather;

use crate::LinkError;
use crate::conn::{GATHER, TimeoutCache, io_slices};
use crate::serial::{SerialError, SerialPort};

/// What a link sends and receives through.
pub(crate) enum Socket {
    /// Shared (not duplicated) with the server's shutdown registry: one descriptor per client.
    Stream(Arc<TcpStream>),
    Datagram(UdpSocket),
    Serial(SerialPort),
}

/// How the transport failed, kept to answer every later call.
#[derive(Clone, Debug)]
enum Failure {
    Lost,
    Io(io::ErrorKind),
    Serial(SerialError),
}

/// A [`Socket`] with its read timeout and its failure, if any.
pub(crate) struct LinkSocket {
    socket: Socket,
    read_timeout: TimeoutCache,
    failure: Option<Failure>,
    /// How long a write may block.
    write_timeout: Duration,
}

impl LinkSocket {
    /// Takes `socket`: a stream gets `TCP_NODELAY` and `write_timeout` (as every serial write).
    pub(crate) fn new(socket: Socket, write_timeout: Duration) -> io::Result<Self> {
        let write_timeout = write_timeout.max(Duration::from_millis(1));
        if let Socket::Stream(stream) = &socket {
            stream.set_nodelay(true)?;
            stream.set_write_timeout(Some(write_timeout))?;
        }
        Ok(Self { socket, read_timeout: TimeoutCache::default(), failure: None, write_timeout })
    }

    /// This side's and the peer's socket addresses (`0.0.0.0:0` for a serial port).
    pub(crate) fn addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        match &self.socket {
            Socket::Stream(stream) => Ok((stream.local_addr()?, stream.peer_addr()?)),
            Socket::Datagram(socket) => Ok((socket.local_addr()?, socket.peer_addr()?)),
            Socket::Serial(_) => {
                let none = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
                Ok((none, none))
            }
        }
    }

    /// Whether each read and write is one datagram.
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self.socket, Socket::Datagram(_))
    }

    /// The serial port's name, over a serial port.
    pub(crate) fn port_name(&self) -> Option<&str> {
        match &self.socket {
            Socket::Serial(port) => Some(port.name()),
            _ => None,
        }
    }

    /// Ends a stream's sending side (the peer reads the end of the stream).
    pub(crate) fn shutdown_write(&self) {
        if let Socket::Stream(stream) = &self.socket {
            let _ = stream.shutdown(Shutdown::Write);
        }
    }

    /// The failure that ended the transport, again.
    pub(crate) fn check(&self) -> Result<(), LinkError> {
        match &self.failure {
            None => Ok(()),
            Some(Failure::Lost) => Err(LinkError::ConnectionLost),
            Some(Failure::Io(kind)) => Err(LinkError::Io((*kind).into())),
            Some(Failure::Serial(error)) => Err(LinkError::Serial(error.clone())),
        }
    }

    /// Writes `frames` whole: a batch of stream frames, or one datagram.
    pub(crate) fn write(&mut self, frames: &[u8]) -> Result<(), LinkError> {
        self.check()?;
        let written = match &mut self.socket {
            Socket::Stream(stream) => (&**stream).write_all(frames).map_err(lost_or_io),
            Socket::Datagram(socket) => socket.send(frames).map(drop).map_err(lost_or_io),
            Socket::Serial(port) => match port.write_all(frames, self.write_timeout) {
                Ok(true) => Ok(()),
                Ok(false) => Err(LinkError::Io(io::ErrorKind::TimedOut.into())),
                Err(error) => Err(LinkError::Serial(error)),
            },
        };
        written.map_err(|error| self.record(error))
    }

    /// Whether this is a TCP stream (which [`write_gather`](Self::write_gather) writes).
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self.socket, Socket::Stream(_))
    }

    /// Writes `frames` whole on a stream, in vectored writes straight from the session's
    /// buffers (elsewhere: [`write`](Self::write)).
    pub(crate) fn write_gather(&mut self, frames: &Gather<'_, GATHER>) -> Result<(), LinkError> {
        self.check()?;
        let Socket::Stream(stream) = &self.socket else {
            return Err(LinkError::Io(io::ErrorKind::Unsupported.into()));
        };
        let (mut slices, len) = io_slices(frames);
        let mut slices = &mut slices[..len];
        let mut written = Ok(());
        while !slices.is_empty() {
            match (&**stream).write_vectored(slices) {
                Ok(0) => {
                    written = Err(LinkError::Io(io::ErrorKind::WriteZero.into()));
                    break;
                }
                Ok(len) => IoSlice::advance_slices(&mut slices, len),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    written = Err(lost_or_io(error));
                    break;
                }
            }
        }
        written.map_err(|error| self.record(error))
    }

    /// One read (or one datagram) into `buf`, waiting at most `wait` (`None`: as long as it
    /// takes); `None` when nothing came. The end of a stream is [`LinkError::ConnectionLost`].
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        wait: Option<Duration>,
    ) -> Result<Option<usize>, LinkError> {
        self.check()?;
        if let Socket::Serial(port) = &mut self.socket {
            // The port's own timeout is set by every read and write (no system call on Unix).
            return port.read(buf, wait).map_err(|error| self.record(LinkError::Serial(error)));
        }
        if let Some(timeout) = self.read_timeout.update(wait) {
            let set = match &self.socket {
                Socket::Stream(stream) => stream.set_read_timeout(timeout),
                Socket::Datagram(socket) => socket.set_read_timeout(timeout),
                Socket::Serial(_) => Ok(()),
            };
            if let Err(error) = set {
                self.read_timeout.reset();
                return Err(self.record(LinkError::Io(error)));
            }
        }
        let read = match &mut self.socket {
            Socket::Stream(stream) => match (&**stream).read(buf) {
                Ok(0) => return Err(self.record(LinkError::ConnectionLost)),
                other => other,
            },
            Socket::Datagram(socket) => socket.recv(buf),
            Socket::Serial(_) => Ok(0),
        };
        match read {
            Ok(len) => Ok(Some(len)),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.record(lost_or_io(error))),
        }
    }

    /// Keeps a transport failure for later calls.
    fn record(&mut self, error: LinkError) -> LinkError {
        match &error {
            LinkError::ConnectionLost => self.failure = Some(Failure::Lost),
            LinkError::Io(inner) => self.failure = Some(Failure::Io(inner.kind())),
            LinkError::Serial(inner) => self.failure = Some(Failure::Serial(inner.clone())),
            _ => {}
        }
        error
    }
}

/// A transport error: the connection ended under us (reset, aborted, broken pipe) is
/// [`LinkError::ConnectionLost`], like an end of stream; anything else is [`LinkError::Io`].
pub(crate) fn lost_or_io(error: io::Error) -> LinkError {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => LinkError::ConnectionLost,
        _ => LinkError::Io(error),
    }
}
