//! [`LinkListener`]: the server side of one [`Link`], for a tool or a peer that takes a single
//! client (the other end of [`Link::connect`]).

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use crate::cancel::CANCEL_POLL;
use crate::clock::StdClock;
use crate::link::Socket;
use crate::serial::SerialPort;
use crate::{Addr, Link, LinkConfig, LinkError, ToAddr, Transport};

/// What a [`LinkListener`] waits on.
enum Waiting {
    Stream(TcpListener),
    Datagram(UdpSocket),
    /// Taken by the first accept: a port has one peer.
    Serial(Option<SerialPort>),
}

/// Waits at an address for one peer to connect and say HELLO, and gives the [`Link`] to it:
/// on `tcp://`, `tcp+cobs://` and `udp://` (the first peer whose handshake completes), or on a
/// serial port (the device there).
///
/// Unlike [`Server`](crate::Server), it serves nothing by itself: the link is the caller's, as a
/// connected one is. Handshakes that fail (a peer that says nothing within the handshake
/// timeout, a port scanner) are dropped and the wait goes on; a
/// [`CancelToken`](crate::CancelToken) in the config ends it.
///
/// ```
/// use std::thread;
/// use framelink_std::core::session::CloseReason;
/// use framelink_std::{Link, LinkConfig, LinkEvent, LinkListener};
///
/// let listener = LinkListener::bind("tcp://127.0.0.1:0")?;
/// let addr = listener.local_addr().clone();
/// let client = thread::spawn(move || -> Result<(), framelink_std::LinkError> {
///     let mut link = Link::connect(&addr)?;
///     link.send(b"hello")?;
///     link.close()
/// });
/// let mut link = listener.accept(&LinkConfig::new())?;
/// assert_eq!(link.next_event(None)?, Some(LinkEvent::Message(b"hello".to_vec())));
/// // The link answers the client's CLOSE only while it is called.
/// assert_eq!(link.next_event(None)?, Some(LinkEvent::Closed(CloseReason::Peer)));
/// client.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LinkListener {
    waiting: Waiting,
    local: Addr,
}

impl LinkListener {
    /// Binds `addr` (port 0 picks a free port; see [`local_addr`](Self::local_addr)), or opens
    /// the serial port it names.
    pub fn bind<A: ToAddr>(addr: A) -> Result<Self, LinkError> {
        let addr = addr.to_addr()?;
        let local = |socket: SocketAddr| Addr::new(addr.transport, socket.ip().to_string(), socket.port());
        let (waiting, local) = match addr.transport {
            Transport::Serial => {
                let port =
                    SerialPort::open(&addr.host, &addr.serial_settings()).map_err(LinkError::Serial)?;
                (Waiting::Serial(Some(port)), addr.clone().into_owned())
            }
            Transport::Tcp | Transport::TcpCobs => {
                let listener = TcpListener::bind(&addr.resolve()?[..])?;
                let bound = local(listener.local_addr()?);
                listener.set_nonblocking(true)?;
                (Waiting::Stream(listener), bound)
            }
            Transport::Udp => {
                let socket = UdpSocket::bind(&addr.resolve()?[..])?;
                let bound = local(socket.local_addr()?);
                (Waiting::Datagram(socket), bound)
            }
        };
        Ok(Self { waiting, local })
    }

    /// The bound address, with the real port.
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// Waits for a peer and completes its handshake with `config` (the peer's HELLO must come
    /// within the handshake timeout of its connection or first datagram).
    ///
    /// Fails with [`LinkError::Interrupted`] once the config's
    /// [`CancelToken`](crate::CancelToken) is cancelled, or with the socket's or the serial
    /// port's error.
    pub fn accept(self, config: &LinkConfig) -> Result<Link, LinkError> {
        let transport = self.local.transport;
        match self.waiting {
            Waiting::Stream(listener) => loop {
                let stream = accept_stream(&listener, config)?;
                if let Some(link) = handshake(Socket::Stream(Arc::new(stream)), transport, config)? {
                    return Ok(link);
                }
            },
            Waiting::Datagram(socket) => {
                let peer = first_datagram(&socket, config)?;
                socket.connect(peer)?;
                match handshake(Socket::Datagram(socket), transport, config)? {
                    Some(link) => Ok(link),
                    None => Err(LinkError::Io(io::ErrorKind::TimedOut.into())),
                }
            }
            Waiting::Serial(mut port) => {
                let port = port.take().ok_or(LinkError::Io(io::ErrorKind::NotConnected.into()))?;
                loop_serial(port, config)
            }
        }
    }
}

/// A serial port: the device may say HELLO at any time, so the wait has no timeout.
fn loop_serial(port: SerialPort, config: &LinkConfig) -> Result<Link, LinkError> {
    let clock = StdClock::new();
    let session = config.server_session(Transport::Serial, &clock);
    let mut link = Link::new(Socket::Serial(port), Transport::Serial, config, session, clock)?;
    link.set_cancel_token(config.cancel.clone());
    link.accept_handshake(None)?;
    Ok(link)
}

/// The next TCP connection, polling for the cancel token.
fn accept_stream(listener: &TcpListener, config: &LinkConfig) -> Result<std::net::TcpStream, LinkError> {
    loop {
        if config.cancel.as_ref().is_some_and(|token| token.is_cancelled()) {
            return Err(LinkError::Interrupted);
        }
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(CANCEL_POLL / 5),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// Where the first datagram comes from (left in the socket for the session to read).
fn first_datagram(socket: &UdpSocket, config: &LinkConfig) -> Result<SocketAddr, LinkError> {
    socket.set_read_timeout(Some(CANCEL_POLL))?;
    let mut byte = [0u8; 1];
    loop {
        if config.cancel.as_ref().is_some_and(|token| token.is_cancelled()) {
            return Err(LinkError::Interrupted);
        }
        match socket.peek_from(&mut byte) {
            Ok((_, peer)) => return Ok(peer),
            // A datagram larger than the byte is cut, as wanted (Windows reports it as an error).
            Err(error) if error.raw_os_error() == Some(10040) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// A server session over `socket` once its handshake is done; `None` when the peer did not
/// complete it within the handshake timeout.
fn handshake(socket: Socket, transport: Transport, config: &LinkConfig) -> Result<Option<Link>, LinkError> {
    let clock = StdClock::new();
    let session = config.server_session(transport, &clock);
    let mut link = Link::new(socket, transport, config, session, clock)?;
    link.set_cancel_token(config.cancel.clone());
    match link.accept_handshake(Some(StdInstant::now() + config.handshake_timeout)) {
        Ok(()) => Ok(Some(link)),
        Err(LinkError::Interrupted) => Err(LinkError::Interrupted),
        Err(_) => Ok(None),
    }
}
