//! The transports a [`Link`](crate::Link) runs over, each read and written through tokio:
//! a TCP stream, a connected UDP socket, one peer of a server's UDP socket, a serial port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    /// The serial port's name, over a serial port.
    pub(crate) fn port_name(&self) -> Option<&str> {
        match self {
            Self::Serial(_, name) => Some(name),
            _ => None,
        }
    }

    /// One read (one datagram); [`LinkError::ConnectionLost`] at the end of the stream.
    ///
    /// Cancel-safe: when the future is dropped before it completes, nothing was read.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> Result<usize, LinkError> {
        let read = match self {
            Self::Tcp(stream) => stream.read(buf).await,
            Self::Udp(socket) => socket.recv(buf).await,
            Self::Peer(peer) => match peer.inbox.recv().await {
                Some(datagram) => {
                    // The socket's task hands on datagrams no longer than the read buffer.
                    let len = datagram.len().min(buf.len());
                    buf[..len].copy_from_slice(&datagram[..len]);
                    return Ok(len);
                }
                // The server stopped serving the socket.
                None => return Err(LinkError::ConnectionLost),
            },
            Self::Serial(port, _) => port.read(buf).await,
        };
        match read {
            Ok(0) if !self.is_datagram() => Err(LinkError::ConnectionLost),
            Ok(len) => Ok(len),
            Err(error) => Err(lost_or_io(error)),
        }
    }

    /// Another datagram if one is waiting, without waiting: so that a round takes in every
    /// datagram that arrived together. `None` on a stream (one read takes what is there).
    pub(crate) fn try_read_datagram(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self {
            Self::Udp(socket) => socket.try_recv(buf).ok(),
            Self::Peer(peer) => {
                let datagram = peer.inbox.try_recv().ok()?;
                let len = datagram.len().min(buf.len());
                buf[..len].copy_from_slice(&datagram[..len]);
                Some(len)
            }
            Self::Tcp(_) | Self::Serial(..) => None,
        }
    }

    /// One write of some of `bytes` (a stream) or of `bytes` as one datagram; returns how many
    /// were written.
    ///
    /// Cancel-safe: when the future is dropped before it completes, nothing was written.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<usize, LinkError> {
        let written = match self {
            Self::Tcp(stream) => stream.write(bytes).await,
            Self::Udp(socket) => socket.send(bytes).await.map(|_| bytes.len()),
            // A datagram the kernel refuses is as good as lost: the session repairs it, and
            // its idle timeout ends a peer that cannot be reached.
            Self::Peer(peer) => Ok(peer.socket.send_to(bytes, peer.addr).await.unwrap_or(bytes.len())),
            Self::Serial(port, _) => port.write(bytes).await,
        };
        match written {
            Ok(0) if !bytes.is_empty() => Err(LinkError::ConnectionLost),
            Ok(len) => Ok(len),
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
