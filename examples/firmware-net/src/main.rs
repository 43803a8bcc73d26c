//! The framelink responder on a Cortex-M3 with an Ethernet controller: ECHO, SINK, SOURCE, STATS
//! and INFO on port 7878 over TCP and over UDP, served by the core's `nal` servers
//! ([`TcpServer`], [`UdpServer`]) on smoltcp: the code `framelink-std` runs over
//! std-embedded-nal on a desktop.
//!
//! Under QEMU (`qemu.sh TCP_PORT UDP_PORT`) the board sits behind QEMU's user network as
//! 10.0.2.15/24 (gateway 10.0.2.2), its port 7878 forwarded from 127.0.0.1: `framelink info
//! tcp://127.0.0.1:TCP_PORT`, `framelink ping udp://127.0.0.1:UDP_PORT`. One TCP connection is
//! served at a time, and UDP serves one peer at a time alongside. A panic exits QEMU with
//! failure.
//!
//! Every buffer is in `Buffers` (.bss) and smoltcp's socket records in `Records` (.data), both
//! counted by `size.sh`; the network stack and the sessions live on the stack.
#![no_std]
#![no_main]

mod clock;
mod eth;
mod net;

use core::cell::RefCell;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::debug;
use framelink_core::Instant;
use framelink_core::connection::Connection;
use framelink_core::endpoint::CookieKey;
use framelink_core::framing::{DatagramDecoder, LengthDelimitedDecoder};
use framelink_core::nal::{TcpServer, UdpServer};
use framelink_core::service::{Responder, ResponderDriver};
use framelink_core::session::{Config, Event, Session};
use smoltcp::iface::{self, Interface, SocketSet, SocketStorage};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address};

use eth::Eth;
use net::{Net, Stack};

/// What INFO answers.
const NAME: &str = "framelink firmware-net (lm3s6965, QEMU, smoltcp)";
/// The port served, over TCP and over UDP.
const PORT: u16 = 7878;
/// QEMU's user network: the guest's address, its prefix and the gateway (the host).
const ADDRESS: [u8; 4] = [10, 0, 2, 15];
const PREFIX: u8 = 24;
const GATEWAY: [u8; 4] = [10, 0, 2, 2];

// The defaults, for a board of this class (64 KiB of RAM, 256 KiB of flash), serving one peer
// over TCP and one over UDP at once: everything static, 24 KB of buffers in all, the stack
// below 8 KB, so that RAM stays within half the chip's.

/// The largest DATA payload we accept and send. 512: a packet (13 + 512) with its 4-byte
/// length prefix fits one TCP segment of 536 bytes, and with its 4-byte tag one 576-byte IP
/// datagram, so Ethernet frames can stay at 590 bytes (see `eth::MTU`) and no IP datagram is
/// ever fragmented (this smoltcp has no fragmentation).
const MAX_PAYLOAD: u16 = 512;
/// One packet: 13 bytes of header and CRC plus the payload.
const PACKET: usize = 13 + MAX_PAYLOAD as usize;
/// Each session's send and receive buffers: the largest message is this minus 4, as on the
/// UART firmware. The send buffer also bounds the bytes in flight each way.
const BUFFER: usize = 2048;
/// DATA packets in flight each way: as many as the send buffer holds (4).
const WINDOW: usize = BUFFER / MAX_PAYLOAD as usize;
/// The TCP socket's receive and send buffers (smoltcp's window): a session's send buffer, so
/// the peer's window never stops short of the session's.
const TCP_BUFFER: usize = 2048;
/// TCP sockets: one. It serves one connection at a time and listens again once that one has
/// closed; a client that comes meanwhile is refused. Each more would listen meanwhile (a
/// backlog of one) for another 4 KiB of buffers.
const TCP_SOCKETS: usize = 1;
/// Datagrams the UDP socket holds received (a window of them) and to send (smoltcp sends them
/// at once: the transmit FIFO always has room), and the room for each: tag and packet.
const UDP_RX_DATAGRAMS: usize = WINDOW;
const UDP_TX_DATAGRAMS: usize = 2;
const DATAGRAM: usize = 4 + PACKET;

/// How long the last packets of a TCP session that ended get to reach the socket.
const LINGER: core::time::Duration = core::time::Duration::from_secs(1);

/// TCP is reliable: no retransmission by the session. A peer that vanishes without a word holds
/// the one TCP socket, or the UDP server, until its session's idle timeout: 10 s rather than the
/// default 30, with a keepalive every 3 s so that a quiet peer still answers in time.
const TCP_CONFIG: Config = Config::new()
    .max_payload(MAX_PAYLOAD)
    .max_message(BUFFER as u32 - 4)
    .window(WINDOW as u16)
    .keepalive(core::time::Duration::from_secs(3))
    .idle_timeout(core::time::Duration::from_secs(10));
/// UDP loses and reorders: the session retransmits.
const UDP_CONFIG: Config = TCP_CONFIG.retransmit(true);

/// A session's buffers.
struct SessionBuffers<const READ: usize, const WRITE: usize> {
    tx: [u8; BUFFER],
    rx: [u8; BUFFER],
    read: [u8; READ],
    write: [u8; WRITE],
    reply: [u8; BUFFER + 6],
}

impl<const READ: usize, const WRITE: usize> SessionBuffers<READ, WRITE> {
    const NEW: Self =
        Self { tx: [0; BUFFER], rx: [0; BUFFER], read: [0; READ], write: [0; WRITE], reply: [0; BUFFER + 6] };
}

/// smoltcp's socket slots and datagram records (not all zeros: in .data).
struct Records {
    sockets: [SocketStorage<'static>; TCP_SOCKETS + 1],
    udp_rx: [udp::PacketMetadata; UDP_RX_DATAGRAMS],
    udp_tx: [udp::PacketMetadata; UDP_TX_DATAGRAMS],
}

/// Every byte buffer of the firmware (all zeros: in .bss).
struct Buffers {
    eth_rx: eth::RxBuffer,
    eth_tx: eth::TxBuffer,
    tcp_rx: [[u8; TCP_BUFFER]; TCP_SOCKETS],
    tcp_tx: [[u8; TCP_BUFFER]; TCP_SOCKETS],
    udp_rx: [u8; UDP_RX_DATAGRAMS * DATAGRAM],
    udp_tx: [u8; UDP_TX_DATAGRAMS * DATAGRAM],
    /// TCP: a length prefix and a packet per read (fewer rounds per packet: 20% fewer
    /// instructions per byte than reads of 256 bytes) and per write.
    tcp: TcpBuffers,
    /// UDP: a datagram (tag and packet) plus one byte, to see longer ones as too long.
    udp: SessionBuffers<{ 4 + PACKET + 1 }, { 4 + PACKET }>,
    udp_packet: [u8; PACKET],
}

#[entry]
fn main() -> ! {
    // cortex-m-rt hands `main` its `static mut`s as `&'static mut`, safely.
    static mut RECORDS: Records = Records {
        sockets: [SocketStorage::EMPTY; TCP_SOCKETS + 1],
        udp_rx: [udp::PacketMetadata::EMPTY; UDP_RX_DATAGRAMS],
        udp_tx: [udp::PacketMetadata::EMPTY; UDP_TX_DATAGRAMS],
    };
    static mut BUFFERS: Buffers = Buffers {
        eth_rx: eth::RxBuffer::NEW,
        eth_tx: eth::TxBuffer::NEW,
        tcp_rx: [[0; TCP_BUFFER]; TCP_SOCKETS],
        tcp_tx: [[0; TCP_BUFFER]; TCP_SOCKETS],
        udp_rx: [0; UDP_RX_DATAGRAMS * DATAGRAM],
        udp_tx: [0; UDP_TX_DATAGRAMS * DATAGRAM],
        tcp: SessionBuffers::NEW,
        udp: SessionBuffers::NEW,
        udp_packet: [0; PACKET],
    };
    serve(RECORDS, BUFFERS)
}

/// Brings up the interface and serves TCP connections one after another, UDP all along.
///
/// The stack, the UDP server and each TCP link are built by functions of their own, out of
/// line: their temporaries (the sessions are moved a few times on their way into a link) then
/// take stack only while they run, not for as long as the loops that use what they built.
#[inline(never)]
fn serve(records: &'static mut Records, buffers: &'static mut Buffers) -> ! {
    let Some(peripherals) = cortex_m::Peripherals::take() else { fail() };
    let mut clock = clock::Clock::new(peripherals.SYST);
    let Buffers { eth_rx, eth_tx, tcp_rx, tcp_tx, udp_rx, udp_tx, tcp, udp, udp_packet } = buffers;
    let Some(eth) = Eth::take(eth_rx, eth_tx) else { fail() };
    let seed = seed(&eth.mac_address(), &mut clock);
    let sockets = SocketBuffers { records, tcp_rx, tcp_tx, udp_rx, udp_tx };
    let net = RefCell::new(bring_up(eth, sockets, seed, clock.now()));
    let stack = Stack(&net);

    let Ok(mut tcp_server) = TcpServer::bind(stack, PORT) else { fail() };
    let mut udp_served = udp_server(stack, udp, udp_packet, seed, clock.now());
    loop {
        let now = clock.now();
        let mut busy = net.borrow_mut().poll(stamp(now));
        busy |= udp_served.poll(now);
        if let Ok((socket, _)) = tcp_server.poll_accept() {
            serve_tcp(&net, &mut clock, &mut tcp_server, socket, tcp, &mut udp_served);
            continue;
        }
        busy |= net.borrow_mut().poll(stamp(now));
        if !busy {
            net.borrow().device().wait();
        }
    }
}

/// What smoltcp's sockets are made of.
struct SocketBuffers {
    records: &'static mut Records,
    tcp_rx: &'static mut [[u8; TCP_BUFFER]; TCP_SOCKETS],
    tcp_tx: &'static mut [[u8; TCP_BUFFER]; TCP_SOCKETS],
    udp_rx: &'static mut [u8; UDP_RX_DATAGRAMS * DATAGRAM],
    udp_tx: &'static mut [u8; UDP_TX_DATAGRAMS * DATAGRAM],
}

/// The interface (10.0.2.15/24 via 10.0.2.2) and its sockets: the TCP ones, then the UDP one.
#[inline(never)]
fn bring_up(mut eth: Device, buffers: SocketBuffers, seed: [u32; 4], now: Instant) -> Net<'static, Device> {
    let SocketBuffers { records, tcp_rx, tcp_tx, udp_rx, udp_tx } = buffers;
    let mut config = iface::Config::new(EthernetAddress(eth.mac_address()).into());
    config.random_seed = u64::from(seed[0]) << 32 | u64::from(seed[1]);
    let mut iface = Interface::new(config, &mut eth, stamp(now));
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::from(Ipv4Address::from(ADDRESS)), PREFIX));
    });
    if iface.routes_mut().add_default_ipv4_route(Ipv4Address::from(GATEWAY)).is_err() {
        fail();
    }
    let mut set = SocketSet::new(&mut records.sockets[..]);
    for (rx, tx) in tcp_rx.iter_mut().zip(tcp_tx.iter_mut()) {
        let mut socket =
            tcp::Socket::new(tcp::SocketBuffer::new(&mut rx[..]), tcp::SocketBuffer::new(&mut tx[..]));
        // Each framelink packet goes out as it is written (no Nagle), and ACKs without delay:
        // the session has its own acknowledgements and window, and waits on these.
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(None);
        set.add(socket);
    }
    set.add(udp::Socket::new(
        udp::PacketBuffer::new(&mut records.udp_rx[..], &mut udp_rx[..]),
        udp::PacketBuffer::new(&mut records.udp_tx[..], &mut udp_tx[..]),
    ));
    Net::new(iface, eth, set, seed[2])
}

/// The UDP server on [`PORT`], its cookies made under a key from `seed`, and its responder.
#[inline(never)]
fn udp_server<'n>(
    stack: Stack<'n, 'static, Device>,
    buffers: &'static mut SessionBuffers<{ 4 + PACKET + 1 }, { 4 + PACKET }>,
    packet: &'static mut [u8; PACKET],
    seed: [u32; 4],
    now: Instant,
) -> UdpServed<'n> {
    let SessionBuffers { tx, rx, read, write, reply } = buffers;
    let session: Session<&mut [u8], WINDOW> = Session::server(UDP_CONFIG, &mut tx[..], &mut rx[..], now);
    let connection = Connection::new(session, DatagramDecoder::new(PACKET), &mut packet[..]);
    let key = CookieKey::new(bytes_of(seed));
    let Ok(server) = UdpServer::bind(stack, PORT, key, connection, &mut read[..], &mut write[..]) else {
        fail()
    };
    UdpServed {
        server,
        responder: ResponderDriver::new(Responder::new(NAME, env!("CARGO_PKG_VERSION")), &mut reply[..]),
    }
}

type Device = Eth<'static>;
type TcpBuffers = SessionBuffers<{ 4 + PACKET }, { 4 + PACKET }>;
type TcpLink<'s, 'n, 'b> = framelink_core::nal::TcpLink<
    &'s mut Stack<'n, 'static, Device>,
    LengthDelimitedDecoder<PACKET>,
    &'b mut [u8],
    WINDOW,
>;

/// A link for an accepted TCP connection, with a new session.
#[inline(never)]
fn tcp_link<'s, 'n, 'b>(
    server: &'s mut TcpServer<Stack<'n, 'static, Device>>,
    socket: net::TcpSocket,
    tx: &'b mut [u8],
    rx: &'b mut [u8],
    read: &'b mut [u8],
    write: &'b mut [u8],
    now: Instant,
) -> TcpLink<'s, 'n, 'b> {
    let session: Session<&mut [u8], WINDOW> = Session::server(TCP_CONFIG, tx, rx, now);
    let connection = Connection::new(session, LengthDelimitedDecoder::<PACKET>::new(), &mut [][..]);
    server.link(socket, connection, read, write)
}

/// Serves an accepted TCP connection until its session ends or the connection is lost, UDP
/// alongside.
#[inline(never)]
fn serve_tcp(
    net: &RefCell<Net<'static, Device>>,
    clock: &mut clock::Clock,
    server: &mut TcpServer<Stack<'_, 'static, Device>>,
    socket: net::TcpSocket,
    buffers: &mut TcpBuffers,
    udp: &mut UdpServed<'_>,
) {
    let SessionBuffers { tx, rx, read, write, reply } = buffers;
    let mut link = tcp_link(server, socket, tx, rx, read, write, clock.now());
    let mut responder = ResponderDriver::new(Responder::new(NAME, env!("CARGO_PKG_VERSION")), &mut reply[..]);
    // Once the session ended, its last packets get until then to reach the socket.
    let mut linger_until = None;
    loop {
        let now = clock.now();
        let mut busy = net.borrow_mut().poll(stamp(now));
        busy |= udp.poll(now);
        match link.poll(now, &mut |_| {}) {
            Ok(read) => busy |= read,
            Err(_) => break,
        }
        let decoder = link.connection().decoder_stats();
        let mut ended = false;
        responder.poll(now, link.session_mut(), decoder, |event: Event<'_>| {
            ended |= matches!(event, Event::Closed(_))
        });
        if ended {
            linger_until = Some(now + LINGER);
        }
        let Ok(sent) = link.flush(now) else { break };
        if linger_until.is_some_and(|until| sent || now >= until) {
            break;
        }
        // Sends at once what the session just wrote.
        busy |= net.borrow_mut().poll(stamp(now));
        if !busy && !link.session().has_event() {
            net.borrow().device().wait();
        }
    }
    // Closes the socket (after what it still holds goes out); the listener takes the next.
    let _ = link.release();
}

/// The UDP server and its responder.
struct UdpServed<'n> {
    server: UdpServer<Stack<'n, 'static, Device>, DatagramDecoder, &'static mut [u8], WINDOW>,
    responder: ResponderDriver<'static, &'static mut [u8]>,
}

impl UdpServed<'_> {
    /// One round without waiting; returns whether a datagram came.
    fn poll(&mut self, now: Instant) -> bool {
        let link = self.server.link_mut();
        link.conn().set_now(now);
        // Errors are the stack refusing a datagram (an address it cannot send to): the
        // datagram is lost, as it would be on the way, and the session retransmits.
        let read = link.poll(now, &mut |_| {}).unwrap_or(false);
        let decoder = link.connection().decoder_stats();
        // Events other than requests need nothing: after a session ends the next peer's HELLO
        // starts another.
        self.responder.poll(now, link.session_mut(), decoder, |_: Event<'_>| {});
        let _ = link.flush(now);
        read
    }
}

/// smoltcp's time from the firmware's clock.
fn stamp(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(now.as_micros() as i64)
}

/// 96 bits for the RETRY cookie key, TCP's initial sequence numbers and outgoing ports: the
/// MAC address (unique to the board) mixed with the SysTick counter after bringing up the
/// clock, whose value varies from boot to boot under QEMU (it runs on the host's clock).
/// Unique but not secret: a product draws them from a TRNG, or hashes the chip's unique id
/// with a boot counter kept in flash (see [`CookieKey`]).
fn seed(mac: &[u8; 6], clock: &mut clock::Clock) -> [u32; 4] {
    let mut state = u32::from_le_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ u32::from(mac[1]) << 8;
    let mut out = [0u32; 4];
    for word in &mut out {
        state ^= cortex_m::peripheral::SYST::get_current() ^ clock.now().as_micros() as u32;
        // xorshift32 rounds to spread the bits.
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
        }
        *word = state;
    }
    out
}

fn bytes_of(words: [u32; 4]) -> [u8; 16] {
    let mut bytes = [0; 16];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    fail()
}

// SAFETY: cortex-m-rt requires the HardFault handler to be an `unsafe fn`; this one reads
// nothing from the frame and only asks QEMU to exit with failure.
#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    fail()
}
