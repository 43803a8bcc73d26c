//! The transports a [`Link`](crate::Link) runs over, each read and written through tokio:
//! a TCP stream, a connected UDP socket, one peer of a server's UDP socket, a serial port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_serial::SerialStream;

use framelink_std::LinkError;

use crate::server::Ended;

/// One peer of a server's UDP socket: its datagrams come from the socket's task, which tells
/// the peers apart by address; its answers go out on the shared socket.
pub(crate) struct UdpPeer {
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) addr: SocketAddr,
    pub(crate) inbox: mpsc::Receiver<Vec<u8>>,
    /// The client's id in the socket's task.
    pub(crate) id: u64,
    /// Tells the socket's task that the client's link is gone.
    pub(crate) ended: mpsc::UnboundedSender<Ended>,
    /// A datagram taken from the inbox while waiting for input, not read yet.
    pub(crate) stash: Option<Vec<u8>>,
}

/// A link's transport.
pub(crate) enum Io {
    Tcp(TcpStream),
    /// A client's UDP socket, connected to the server.
    Udp(UdpSocket),
    Peer(UdpPeer),
    /// Boxed: it is much larger than the others on some platforms.
    Serial(Box<SerialStream>, String),
}

impl Io {
    /// This side's and the peer's addresses (`0.0.0.0:0` for a serial port).
    pub(crate) fn addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        match self {
            Self::Tcp(stream) => Ok((stream.local_addr()?, stream.peer_addr()?)),
            Self::Udp(socket) => Ok((socket.local_addr()?, socket.peer_addr()?)),
            Self::Peer(peer) => Ok((peer.socket.local_addr()?, peer.addr)),
            Self::Serial(..) => {
                let none = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
                Ok((none, none))
            }
        }
    }

    /// Whether each write is one datagram (else a chunk of a stream).
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Self::Udp(_) | Self::Peer(_))
    }

    /// Whether this is a TCP stream ([`try_write_vectored`](Self::try_write_vectored) writes it).
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Self::Tcp(_))
    }

    /// The serial port's name, over a serial port.
    pub(crate) fn port_name(&self) -> Option<&str> {
        match self {
            Self::Serial(_, name) => Some(name),
            _ => None,
        }
    }

    /// Waits until a read may find input (or the end of the stream, or an error).
    ///
    /// Cancel-safe: a datagram a server's socket task handed on is kept for the next read.
    pub(crate) async fn readable(&mut self) -> Result<(), LinkError> {
        let ready = match self {
            Self::Tcp(stream) => stream.readable().await,
            Self::Udp(socket) => socket.readable().await,
            Self::Peer(peer) => {
                if peer.stash.is_none() {
                    // `None`: the server stopped serving the socket.
                    peer.stash = Some(peer.inbox.recv().await.ok_or(LinkError::ConnectionLost)?);
                }
                Ok(())
            }
            Self::Serial(port, _) => port.readable().await,
        };
        ready.map_err(lost_or_io)
    }

    /// One read (one datagram) into `buf`, without waiting: `None` when nothing is there;
    /// [`LinkError::ConnectionLost`] at the end of the stream.
    pub(crate) fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, LinkError> {
        let read = match self {
            Self::Tcp(stream) => stream.try_read(buf),
            Self::Udp(socket) => socket.try_recv(buf),
            Self::Peer(peer) => {
                let datagram = match peer.stash.take() {
                    Some(datagram) => datagram,
                    None => match peer.inbox.try_recv() {
                        Ok(datagram) => datagram,
                        Err(_) => return Ok(None),
                    },
                };
                // The socket's task hands on datagrams no longer than the read buffer.
                let len = datagram.len().min(buf.len());
                buf[..len].copy_from_slice(&datagram[..len]);
                return Ok(Some(len));
            }
            Self::Serial(port, _) => serial_try_read(port, buf),
        };
        match read {
            Ok(0) if !self.is_datagram() => Err(LinkError::ConnectionLost),
            Ok(len) => Ok(Some(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(lost_or_io(error)),
        }
    }

    /// Waits until a write may go through.
    pub(crate) async fn writable(&self) -> Result<(), LinkError> {
        let ready = match self {
            Self::Tcp(stream) => stream.writable().await,
            Self::Udp(socket) => socket.writable().await,
            Self::Peer(peer) => peer.socket.writable().await,
            Self::Serial(port, _) => port.writable().await,
        };
        ready.map_err(lost_or_io)
    }

    /// One write of some of `bytes` (a stream) or of `bytes` as one datagram, without waiting:
    /// how many were written, `None` when the socket takes nothing now.
    pub(crate) fn try_write(&mut self, bytes: &[u8]) -> Result<Option<usize>, LinkError> {
        let written = match self {
            Self::Tcp(stream) => stream.try_write(bytes),
            Self::Udp(socket) => socket.try_send(bytes).map(|_| bytes.len()),
            Self::Peer(peer) => match peer.socket.try_send_to(bytes, peer.addr) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => Err(error),
                // A datagram the kernel refuses is as good as lost: the session repairs it,
                // and its idle timeout ends a peer that cannot be reached.
                _ => Ok(bytes.len()),
            },
            Self::Serial(port, _) => serial_try_write(port, bytes),
        };
        match written {
            Ok(0) if !bytes.is_empty() => Err(LinkError::ConnectionLost),
            Ok(len) => Ok(Some(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(lost_or_io(error)),
        }
    }

    /// One vectored write of some of `slices` on a TCP stream, without waiting: how many bytes
    /// were written, `None` when the socket takes nothing now.
    pub(crate) fn try_write_vectored(
        &mut self,
        slices: &[io::IoSlice<'_>],
    ) -> Result<Option<usize>, LinkError> {
        let Self::Tcp(stream) = self else {
            return Err(LinkError::Io(io::ErrorKind::Unsupported.into()));
        };
        match stream.try_write_vectored(slices) {
            Ok(0) if slices.iter().any(|slice| !slice.is_empty()) => Err(LinkError::ConnectionLost),
            Ok(len) => Ok(Some(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(lost_or_io(error)),
        }
    }

    /// Ends the sending side of a TCP stream (the peer reads the end of the stream).
    pub(crate) async fn shutdown(&mut self) {
        if let Self::Tcp(stream) = self {
            let _ = stream.shutdown().await;
        }
    }
}

/// One read from a serial port without waiting, through its `AsyncRead`: unlike
/// `SerialStream::try_read` on Unix, a read that finds nothing clears the port's readiness, so
/// that the next `readable` waits instead of completing at once (and the link spinning).
fn serial_try_read(port: &mut SerialStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut buf = ReadBuf::new(buf);
    match Pin::new(port).poll_read(&mut Context::from_waker(Waker::noop()), &mut buf) {
        Poll::Ready(Ok(())) => Ok(buf.filled().len()),
        Poll::Ready(Err(error)) => Err(error),
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// One write to a serial port without waiting, clearing its readiness when it takes nothing
/// (see [`serial_try_read`]).
fn serial_try_write(port: &mut SerialStream, bytes: &[u8]) -> io::Result<usize> {
    match Pin::new(port).poll_write(&mut Context::from_waker(Waker::noop()), bytes) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// A transport error as a link reports it: the connection ended under it (reset, aborted,
/// broken pipe, end of file) is [`LinkError::ConnectionLost`]; anything else is
/// [`LinkError::Io`].
pub(crate) fn lost_or_io(error: io::Error) -> LinkError {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => LinkError::ConnectionLost,
        _ => LinkError::Io(error),
    }
}
