//! embedded-nal 0.9 over smoltcp: the TCP and UDP sockets the core's `nal` servers run on.
//!
//! smoltcp-nal 0.7 implements only the client half of TCP (no `TcpFullStack`: no bind,
//! listen or accept), answers `Ok(0)` for a TCP socket with nothing to read (which embedded-nal
//! callers take for the end of the stream) and turns on smoltcp's IPv6, DHCP and DNS; this
//! module implements what a server needs, on a trimmed smoltcp.
//!
//! [`Net`] owns the interface, the device and the sockets; [`Stack`] is a shared handle to it
//! implementing the four embedded-nal traits, so that a TCP and a UDP server run on one
//! interface. Each call borrows the [`RefCell`] for its own duration only and calls nothing
//! that could borrow it again, so the borrow never fails.
//!
//! TCP listens on one port at a time with every free TCP socket of the set as its backlog: a
//! socket listens, a connection it completes waits there until accepted, and on accept
//! another free socket starts listening. A closed socket whose every byte the peer has
//! acknowledged (FIN-WAIT-2, TIME-WAIT) counts as free and is aborted when taken: waiting for
//! the peer's FIN, or for TIME-WAIT's 10 s, would keep a board with one socket from listening.

use core::cell::RefCell;
use core::net::{SocketAddr, SocketAddrV4};

use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, UdpClientStack, UdpFullStack, nb};
use smoltcp::iface::{Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{Socket, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpEndpoint};

/// TCP or UDP sockets a [`Net`] manages, at most.
const MAX_SOCKETS: usize = 4;
/// The first port of the dynamic range, for ports picked for outgoing connections.
const EPHEMERAL: u16 = 49152;

/// Why a socket call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// No free socket of that kind.
    NoSocket,
    /// The socket is not connected (or not bound) for this call.
    NotConnected,
    /// The connection is closed or was reset.
    Closed,
    /// IPv6 addresses, or listening on a second port.
    Unsupported,
    /// smoltcp refused the address or port.
    Invalid,
}

impl TcpError for NetError {
    fn kind(&self) -> TcpErrorKind {
        if *self == NetError::Closed { TcpErrorKind::PipeClosed } else { TcpErrorKind::Other }
    }
}

/// A TCP socket as the embedded-nal caller holds it.
#[derive(Debug)]
pub enum TcpSocket {
    /// Made, not yet bound or connected.
    New,
    /// Bound to a port, not yet listening.
    Bound(u16),
    /// Listening on a port: accepts hand out connections.
    Listener(u16),
    /// A connection: the slot of its smoltcp socket.
    Connection(usize),
}

/// A UDP socket: a slot of the set and its socket, and the peer of a connected one.
#[derive(Debug)]
pub struct UdpSocket {
    slot: usize,
    handle: SocketHandle,
    remote: Option<IpEndpoint>,
}

/// A socket of the set, and whether the embedded-nal caller holds it.
#[derive(Clone, Copy)]
struct Slot {
    handle: SocketHandle,
    taken: bool,
}

/// The interface, its device and its sockets.
pub struct Net<'a, D: Device> {
    iface: Interface,
    device: D,
    sockets: SocketSet<'a>,
    tcp: [Option<Slot>; MAX_SOCKETS],
    udp: [Option<Slot>; MAX_SOCKETS],
    /// The port TCP listens on, if any.
    listen_port: Option<u16>,
    /// xorshift32 state, for the ports of outgoing connections.
    random: u32,
}

impl<'a, D: Device> Net<'a, D> {
    /// Serves the TCP and UDP sockets of `sockets` (up to [`MAX_SOCKETS`] of each) over `iface`
    /// and `device`; `seed` picks outgoing ports.
    pub fn new(iface: Interface, device: D, sockets: SocketSet<'a>, seed: u32) -> Self {
        let (mut tcp, mut udp) = ([None; MAX_SOCKETS], [None; MAX_SOCKETS]);
        let (mut t, mut u) = (tcp.iter_mut(), udp.iter_mut());
        for (handle, socket) in sockets.iter() {
            let slot = match socket {
                Socket::Tcp(_) => t.next(),
                Socket::Udp(_) => u.next(),
            };
            if let Some(slot) = slot {
                *slot = Some(Slot { handle, taken: false });
            }
        }
        Self { iface, device, sockets, tcp, udp, listen_port: None, random: seed | 1 }
    }

    /// Moves packets between the device and the sockets; returns whether a socket changed
    /// state. Keeps a socket listening on the TCP port if one is free.
    pub fn poll(&mut self, now: Instant) -> bool {
        let changed =
            self.iface.poll(now, &mut self.device, &mut self.sockets) == PollResult::SocketStateChanged;
        if let Some(port) = self.listen_port {
            self.keep_listening(port);
        }
        changed
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    fn tcp_socket(&mut self, slot: usize) -> Option<&mut tcp::Socket<'a>> {
        let handle = self.tcp.get(slot).copied().flatten()?.handle;
        Some(self.sockets.get_mut::<tcp::Socket>(handle))
    }

    fn udp_socket(&mut self, socket: &UdpSocket) -> &mut udp::Socket<'a> {
        self.sockets.get_mut::<udp::Socket>(socket.handle)
    }

    /// A TCP slot nobody holds whose socket is closed, or closing with everything acknowledged.
    fn free_tcp(&mut self) -> Option<usize> {
        (0..MAX_SOCKETS).find(|&i| {
            let Some(Slot { handle, taken: false }) = self.tcp[i] else { return false };
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            if matches!(socket.state(), tcp::State::FinWait2 | tcp::State::TimeWait) {
                socket.abort();
            }
            socket.state() == tcp::State::Closed
        })
    }

    /// Makes a free socket listen on `port` unless one already does.
    fn keep_listening(&mut self, port: u16) {
        let listening = self.tcp.iter().flatten().any(|slot| {
            let socket = self.sockets.get::<tcp::Socket>(slot.handle);
            !slot.taken && socket.is_listening()
        });
        if !listening && let Some(i) = self.free_tcp() {
            let _ = self.tcp_socket(i).map(|socket| socket.listen(port));
        }
    }

    fn ephemeral_port(&mut self) -> u16 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 17;
        self.random ^= self.random << 5;
        EPHEMERAL + (self.random % u32::from(u16::MAX - EPHEMERAL)) as u16
    }

    fn local_ipv4(&self) -> Option<IpAddress> {
        self.iface.ipv4_addr().map(IpAddress::Ipv4)
    }
}

fn endpoint(addr: SocketAddr) -> Result<IpEndpoint, NetError> {
    match addr {
        SocketAddr::V4(v4) => Ok(IpEndpoint::new(IpAddress::Ipv4(*v4.ip()), v4.port())),
        SocketAddr::V6(_) => Err(NetError::Unsupported),
    }
}

fn socket_addr(endpoint: IpEndpoint) -> SocketAddr {
    let IpAddress::Ipv4(ip) = endpoint.addr;
    SocketAddr::V4(SocketAddrV4::new(ip, endpoint.port))
}

/// A shared handle to a [`Net`]: what the core's servers hold as their stack.
pub struct Stack<'n, 'a, D: Device>(pub &'n RefCell<Net<'a, D>>);

impl<D: Device> Clone for Stack<'_, '_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Device> Copy for Stack<'_, '_, D> {}

impl<D: Device> TcpClientStack for Stack<'_, '_, D> {
    type TcpSocket = TcpSocket;
    type Error = NetError;

    fn socket(&mut self) -> Result<TcpSocket, NetError> {
        Ok(TcpSocket::New)
    }

    fn connect(&mut self, socket: &mut TcpSocket, remote: SocketAddr) -> nb::Result<(), NetError> {
        let net = &mut *self.0.borrow_mut();
        if let TcpSocket::New = socket {
            let remote = endpoint(remote)?;
            let slot = net.free_tcp().ok_or(NetError::NoSocket)?;
            let port = net.ephemeral_port();
            let Net { iface, sockets, tcp, .. } = net;
            let handle = tcp[slot].map(|s| s.handle).ok_or(NetError::NoSocket)?;
            let context = iface.context();
            sockets
                .get_mut::<tcp::Socket>(handle)
                .connect(context, remote, port)
                .map_err(|_| NetError::Invalid)?;
            tcp[slot] = Some(Slot { handle, taken: true });
            *socket = TcpSocket::Connection(slot);
        }
        let TcpSocket::Connection(slot) = *socket else {
            return Err(nb::Error::Other(NetError::NotConnected));
        };
        match net.tcp_socket(slot).map(|s| s.state()) {
            Some(tcp::State::Established) => Ok(()),
            Some(tcp::State::SynSent | tcp::State::SynReceived) => Err(nb::Error::WouldBlock),
            _ => Err(nb::Error::Other(NetError::Closed)),
        }
    }

    fn send(&mut self, socket: &mut TcpSocket, buffer: &[u8]) -> nb::Result<usize, NetError> {
        let TcpSocket::Connection(slot) = *socket else {
            return Err(nb::Error::Other(NetError::NotConnected));
        };
        let mut net = self.0.borrow_mut();
        let socket = net.tcp_socket(slot).ok_or(NetError::NotConnected)?;
        match socket.send_slice(buffer) {
            Ok(0) if !buffer.is_empty() => Err(nb::Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(tcp::SendError::InvalidState) => Err(nb::Error::Other(NetError::Closed)),
        }
    }

    fn receive(&mut self, socket: &mut TcpSocket, buffer: &mut [u8]) -> nb::Result<usize, NetError> {
        let TcpSocket::Connection(slot) = *socket else {
            return Err(nb::Error::Other(NetError::NotConnected));
        };
        let mut net = self.0.borrow_mut();
        let socket = net.tcp_socket(slot).ok_or(NetError::NotConnected)?;
        match socket.recv_slice(buffer) {
            Ok(0) if !buffer.is_empty() => Err(nb::Error::WouldBlock),
            Ok(n) => Ok(n),
            // The peer closed its half and everything it sent was read: the end of the stream.
            Err(tcp::RecvError::Finished) => Ok(0),
            Err(tcp::RecvError::InvalidState) => Err(nb::Error::Other(NetError::Closed)),
        }
    }

    fn close(&mut self, socket: TcpSocket) -> Result<(), NetError> {
        let net = &mut *self.0.borrow_mut();
        match socket {
            TcpSocket::Connection(slot) => {
                if let Some(socket) = net.tcp_socket(slot) {
                    socket.close();
                }
                if let Some(slot) = &mut net.tcp[slot] {
                    slot.taken = false;
                }
            }
            TcpSocket::Listener(port) => {
                net.listen_port = None;
                for slot in net.tcp.iter().flatten().filter(|slot| !slot.taken) {
                    let socket = net.sockets.get_mut::<tcp::Socket>(slot.handle);
                    if socket.listen_endpoint().port == port {
                        socket.abort();
                    }
                }
            }
            TcpSocket::New | TcpSocket::Bound(_) => {}
        }
        Ok(())
    }
}

impl<D: Device> TcpFullStack for Stack<'_, '_, D> {
    fn bind(&mut self, socket: &mut TcpSocket, local_port: u16) -> Result<(), NetError> {
        *socket = TcpSocket::Bound(local_port);
        Ok(())
    }

    fn listen(&mut self, socket: &mut TcpSocket) -> Result<(), NetError> {
        let TcpSocket::Bound(port) = *socket else { return Err(NetError::NotConnected) };
        let net = &mut *self.0.borrow_mut();
        if net.listen_port.is_some_and(|p| p != port) {
            return Err(NetError::Unsupported);
        }
        net.listen_port = Some(port);
        net.keep_listening(port);
        *socket = TcpSocket::Listener(port);
        Ok(())
    }

    fn accept(&mut self, socket: &mut TcpSocket) -> nb::Result<(TcpSocket, SocketAddr), NetError> {
        let TcpSocket::Listener(port) = *socket else { return Err(nb::Error::Other(NetError::NotConnected)) };
        let net = &mut *self.0.borrow_mut();
        for i in 0..MAX_SOCKETS {
            let Some(Slot { handle, taken: false }) = net.tcp[i] else { continue };
            let socket = net.sockets.get::<tcp::Socket>(handle);
            let ready = matches!(socket.state(), tcp::State::Established | tcp::State::CloseWait);
            if let (true, Some(remote)) =
                (ready && socket.listen_endpoint().port == port, socket.remote_endpoint())
            {
                net.tcp[i] = Some(Slot { handle, taken: true });
                net.keep_listening(port);
                return Ok((TcpSocket::Connection(i), socket_addr(remote)));
            }
        }
        Err(nb::Error::WouldBlock)
    }
}

impl<D: Device> UdpClientStack for Stack<'_, '_, D> {
    type UdpSocket = UdpSocket;
    type Error = NetError;

    fn socket(&mut self) -> Result<UdpSocket, NetError> {
        let net = &mut *self.0.borrow_mut();
        let (slot, entry) = net
            .udp
            .iter_mut()
            .enumerate()
            .find_map(|(i, s)| Some((i, s.as_mut().filter(|s| !s.taken)?)))
            .ok_or(NetError::NoSocket)?;
        entry.taken = true;
        Ok(UdpSocket { slot, handle: entry.handle, remote: None })
    }

    fn connect(&mut self, socket: &mut UdpSocket, remote: SocketAddr) -> Result<(), NetError> {
        let remote = endpoint(remote)?;
        let net = &mut *self.0.borrow_mut();
        let local = IpEndpoint::new(net.local_ipv4().ok_or(NetError::NotConnected)?, net.ephemeral_port());
        net.udp_socket(socket).bind(local).map_err(|_| NetError::Invalid)?;
        socket.remote = Some(remote);
        Ok(())
    }

    fn send(&mut self, socket: &mut UdpSocket, buffer: &[u8]) -> nb::Result<(), NetError> {
        let remote = socket.remote.ok_or(NetError::NotConnected)?;
        send_to(&mut self.0.borrow_mut(), socket, remote, buffer)
    }

    fn receive(
        &mut self,
        socket: &mut UdpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<(usize, SocketAddr), NetError> {
        let mut net = self.0.borrow_mut();
        let (payload, meta) = net.udp_socket(socket).recv().map_err(|_| nb::Error::WouldBlock)?;
        // A datagram longer than `buffer` is cut to it; callers size `buffer` one byte larger
        // than anything they accept, so a cut datagram is still seen as too long.
        let n = payload.len().min(buffer.len());
        buffer[..n].copy_from_slice(&payload[..n]);
        Ok((n, socket_addr(meta.endpoint)))
    }

    fn close(&mut self, socket: UdpSocket) -> Result<(), NetError> {
        let net = &mut *self.0.borrow_mut();
        net.udp_socket(&socket).close();
        if let Some(s) = &mut net.udp[socket.slot] {
            s.taken = false;
        }
        Ok(())
    }
}

fn send_to<D: Device>(
    net: &mut Net<'_, D>,
    socket: &UdpSocket,
    remote: IpEndpoint,
    buffer: &[u8],
) -> nb::Result<(), NetError> {
    match net.udp_socket(socket).send_slice(buffer, remote) {
        Ok(()) => Ok(()),
        Err(udp::SendError::BufferFull) => Err(nb::Error::WouldBlock),
        Err(udp::SendError::Unaddressable) => Err(nb::Error::Other(NetError::Invalid)),
    }
}

impl<D: Device> UdpFullStack for Stack<'_, '_, D> {
    fn bind(&mut self, socket: &mut UdpSocket, local_port: u16) -> Result<(), NetError> {
        let net = &mut *self.0.borrow_mut();
        net.udp_socket(socket).bind(local_port).map_err(|_| NetError::Invalid)
    }

    fn send_to(
        &mut self,
        socket: &mut UdpSocket,
        remote: SocketAddr,
        buffer: &[u8],
    ) -> nb::Result<(), NetError> {
        send_to(&mut self.0.borrow_mut(), socket, endpoint(remote)?, buffer)
    }
}
