//! Keyed sessions (a pre-shared key, PROTOCOL.md section 15) over real loopback sockets and a
//! pty pair: the right key over TCP, UDP, tcp+cobs and serial; a different key and no key
//! refused at once with a clear error; a relay that alters packets and fixes their CRC (nothing
//! altered is delivered; over UDP and COBS retransmission repairs it, and the counters show it;
//! over TCP, which has no retransmission, nothing after the hole is delivered);
//! a replayed UDP session and reflected packets deliver nothing; the text is not on the wire.
//! Every wait is bounded; every server and relay thread stops on every path.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use framelink::std::{
    Addr, Link, LinkConfig, LinkError, LinkEvent, PeerInfo, Psk, Reply, Server, ServerConfig, ServerHandle,
    Suite,
};
use framelink_core::framing::{Cobs, CobsDecoder, Decoder, Encoder};
use framelink_core::wire::{Capabilities, crc32c};

use common::socat::{self, PtyPair, TempDir};

const PATIENCE: Duration = Duration::from_secs(20);

fn key(byte: u8) -> Psk {
    Psk::new([byte; 32])
}

/// A keyed echo server (or keyless, with `None`) on `listen`; messages it got go to the
/// receiver.
fn echo_server(listen: &str, psk: Option<Psk>) -> (ServerHandle, Receiver<Vec<u8>>) {
    let mut link = LinkConfig::new().handshake_timeout(Duration::from_secs(5));
    if let Some(psk) = psk {
        link = link.psk(psk);
    }
    echo_server_with(listen, link)
}

/// An echo server whose sessions are configured by `link`.
fn echo_server_with(listen: &str, link: LinkConfig) -> (ServerHandle, Receiver<Vec<u8>>) {
    let (tx, rx) = channel::<Vec<u8>>();
    let tx = Mutex::new(tx);
    let handler = move |_: &PeerInfo, message: &[u8], reply: &mut Reply<'_>| {
        let _ = tx.lock().unwrap().send(message.to_vec());
        let _ = reply.send(message);
    };
    let server = Server::bind(&[listen], ServerConfig::new().link(link)).unwrap();
    (server.spawn(handler).unwrap(), rx)
}

fn addr_of(server: &ServerHandle, scheme: &str) -> Addr {
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    format!("{scheme}://{target}").parse().unwrap()
}

fn config(psk: Option<Psk>) -> LinkConfig {
    let config = LinkConfig::new().handshake_timeout(Duration::from_secs(5)).max_payload(512);
    match psk {
        Some(psk) => config.psk(psk),
        None => config,
    }
}

/// Sends each message and waits (bounded) for its echo, in order.
fn echo_all(link: &mut Link, messages: &[Vec<u8>]) {
    let deadline = Instant::now() + PATIENCE;
    for message in messages {
        link.send(message).unwrap();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no echo in time");
            if let Some(LinkEvent::Message(echo)) = link.next_event(Some(left)).unwrap() {
                assert_eq!(&echo, message, "the echo is the message, unaltered");
                break;
            }
        }
    }
}

fn messages(count: u32) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("keyed message {i}: {}", "z".repeat((i as usize * 37) % 900)).into_bytes())
        .collect()
}

#[test]
fn the_right_key_carries_messages_over_tcp_udp_and_tcp_cobs() {
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        let (server, rx) = echo_server(&format!("{scheme}://127.0.0.1:0"), Some(key(1)));
        let mut link = Link::connect_with(addr_of(&server, scheme), &config(Some(key(1)))).unwrap();
        let sent = messages(20);
        echo_all(&mut link, &sent);
        assert!(link.is_keyed());
        assert_eq!(link.stats().auth_failures, 0, "{scheme}");
        link.close().unwrap();
        let got: Vec<Vec<u8>> = rx.try_iter().collect();
        assert_eq!(got, sent, "{scheme}: every message once, in order");
        server.shutdown();
    }
}

#[test]
fn desktops_seal_with_aes_gcm_and_with_an_ascon_only_peer_with_ascon() {
    // (server offers AES-GCM, client offers AES-GCM, the suite they must agree on)
    let cases =
        [(true, true, Suite::Aes256Gcm), (true, false, Suite::Ascon128), (false, true, Suite::Ascon128)];
    for (server_aes, client_aes, suite) in cases {
        let server_link = LinkConfig::new().handshake_timeout(Duration::from_secs(5)).psk(key(1));
        let (server, rx) = echo_server_with("tcp://127.0.0.1:0", server_link.ascon_only(!server_aes));
        let client = config(Some(key(1))).ascon_only(!client_aes);
        let mut link = Link::connect_with(addr_of(&server, "tcp"), &client).unwrap();
        let sent = messages(20);
        echo_all(&mut link, &sent);
        assert_eq!(link.keyed_suite(), Some(suite), "server AES {server_aes}, client AES {client_aes}");
        let agreed = link.peer().unwrap().agreed;
        assert_eq!(agreed.contains(Capabilities::AES_256_GCM), suite == Suite::Aes256Gcm);
        assert_eq!(link.stats().auth_failures, 0);
        link.close().unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), sent);
        server.shutdown();
    }
}

#[test]
fn the_right_key_carries_messages_over_a_serial_line() {
    if !socat::available("the_right_key_carries_messages_over_a_serial_line") {
        return;
    }
    let dir = TempDir::new("keyed-serial");
    let pair = PtyPair::new(&dir.0, "line");
    let (server, rx) = echo_server(&pair.addr_a(), Some(key(2)));
    let to: Addr = pair.addr_b().parse().unwrap();
    let mut link = Link::connect_with(&to, &config(Some(key(2)))).unwrap();
    let sent = messages(10);
    echo_all(&mut link, &sent);
    link.close().unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), sent);
    server.shutdown();
}

/// Connecting must fail at once (well before the handshake timeout) with `expected` in the
/// error's words.
fn refused(scheme: &str, server_key: Option<Psk>, client_key: Option<Psk>, expected: &str) {
    let (server, rx) = echo_server(&format!("{scheme}://127.0.0.1:0"), server_key);
    let started = Instant::now();
    let error = Link::connect_with(addr_of(&server, scheme), &config(client_key)).map(|_| ()).unwrap_err();
    let words = error.to_string();
    assert!(words.contains(expected), "{scheme}: `{words}` should say `{expected}`");
    assert!(matches!(error, LinkError::Refused(_)), "{scheme}: {error:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{scheme}: refused at once, not timed out");
    assert!(rx.try_recv().is_err());
    server.shutdown();
}

#[test]
fn a_different_key_is_refused_with_a_clear_error() {
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        refused(scheme, Some(key(3)), Some(key(4)), "authentication failed: the peer has a different key");
    }
}

#[test]
fn no_key_on_either_side_is_refused_with_a_clear_error() {
    for scheme in ["tcp", "udp"] {
        refused(scheme, Some(key(5)), None, "one side has a pre-shared key and the other has none");
        refused(scheme, None, Some(key(5)), "one side has a pre-shared key and the other has none");
    }
}

/// A UDP relay between one client and `target` that hands every datagram to `alter` (which may
/// change it) and records what it forwarded client to server.
struct UdpRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Datagrams forwarded client to server, and server to client.
    recorded: Arc<Mutex<Vec<Vec<u8>>>>,
    answers: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpRelay {
    fn start(target: SocketAddr, alter: fn(&mut [u8], u64)) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (thread_stop, thread_recorded) = (Arc::clone(&stop), Arc::clone(&recorded));
        let thread_answers = Arc::clone(&answers);
        let thread = thread::spawn(move || {
            let mut client = None;
            let mut buf = vec![0u8; 70_000];
            let mut count = 0u64;
            while !thread_stop.load(Ordering::Acquire) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
                let mut datagram = buf[..len].to_vec();
                count += 1;
                let to = if from == target {
                    thread_answers.lock().unwrap().push(datagram.clone());
                    match client {
                        Some(client) => client,
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    thread_recorded.lock().unwrap().push(datagram.clone());
                    target
                };
                alter(&mut datagram, count);
                let _ = socket.send_to(&datagram, to);
            }
        });
        Self { addr, stop, recorded, answers, thread: Some(thread) }
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Flips a bit of a packet's payload (past the 4-byte tag and 9-byte header) and fixes the CRC,
/// as a relay that knows the format would.
fn tamper(packet: &mut [u8], offset: usize) {
    if packet.len() < offset + 14 + 4 {
        return;
    }
    let at = offset + 9 + (packet.len() - offset - 13) / 2;
    packet[at] ^= 0x10;
    let end = packet.len() - 4;
    let crc = crc32c(&packet[offset..end]);
    packet[end..].copy_from_slice(&crc.to_le_bytes());
}

fn tamper_every_fifth(datagram: &mut [u8], count: u64) {
    if count.is_multiple_of(5) {
        tamper(datagram, 4);
    }
}

#[test]
fn a_relay_that_alters_udp_packets_and_fixes_the_crc_delivers_nothing_altered() {
    let (server, rx) = echo_server("udp://127.0.0.1:0", Some(key(6)));
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    let relay = UdpRelay::start(target, tamper_every_fifth);
    let to: Addr = format!("udp://{}", relay.addr).parse().unwrap();
    let mut link = Link::connect_with(&to, &config(Some(key(6)))).unwrap();
    let sent = messages(40);
    echo_all(&mut link, &sent);
    let stats = link.stats();
    assert!(stats.auth_failures > 0, "altered packets were counted: {stats:?}");
    assert!(stats.retransmits > 0, "and repaired by retransmission: {stats:?}");
    link.close().ok();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), sent, "the server got each message once, unaltered");
    assert!(server.stats().auth_failures > 0, "the server counted what it dropped: {:?}", server.stats());
    drop(relay);
    server.shutdown();
}

/// A TCP proxy for `tcp+cobs://` that decodes each COBS frame, alters every fifth packet
/// (fixing its CRC), and encodes it again; both ways.
fn cobs_tamper_proxy(target: SocketAddr, altered: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else { return };
        let Ok(server) = TcpStream::connect(target) else { return };
        let copy = |from: TcpStream, to: TcpStream, altered: Arc<AtomicU64>| {
            use std::io::{Read, Write};
            let (mut from, mut to) = (from, to);
            let mut decoder = CobsDecoder::<70_000, Vec<u8>>::with_buffer(Vec::new());
            let mut buf = vec![0u8; 65536];
            let mut out = vec![0u8; 140_000];
            let mut count = 0u64;
            let _ = to.write_all(&[0]);
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut bytes = &buf[..n];
                while !bytes.is_empty() {
                    let decoded = decoder.decode_bytes(bytes);
                    bytes = &bytes[decoded.0..];
                    if let Some(mut packet) = decoded.1 {
                        count += 1;
                        if count.is_multiple_of(5) && packet.len() > 20 {
                            tamper(&mut packet, 0);
                            altered.fetch_add(1, Ordering::AcqRel);
                        }
                        let len = Cobs::encode_tagged(0, &packet, &mut out).unwrap();
                        if to.write_all(&out[..len]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Write);
        };
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let a2 = Arc::clone(&altered);
        let up = thread::spawn(move || copy(client, server, a2));
        copy(s2, c2, altered);
        let _ = up.join();
    });
    addr
}

trait DecodeBytes {
    /// Consumed bytes, and the packet if a whole good frame ended.
    fn decode_bytes(&mut self, bytes: &[u8]) -> (usize, Option<Vec<u8>>);
}

impl DecodeBytes for CobsDecoder<70_000, Vec<u8>> {
    fn decode_bytes(&mut self, bytes: &[u8]) -> (usize, Option<Vec<u8>>) {
        let decoded = self.decode(bytes);
        let packet = match decoded.frame {
            Some(Ok(repr)) => {
                let mut out = vec![0u8; repr.buffer_len()];
                repr.emit(&mut out).ok().map(|_| out)
            }
            _ => None,
        };
        (decoded.consumed, packet)
    }
}

#[test]
fn a_proxy_that_alters_cobs_packets_and_fixes_the_crc_delivers_nothing_altered() {
    let (server, rx) = echo_server("tcp+cobs://127.0.0.1:0", Some(key(7)));
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    let altered = Arc::new(AtomicU64::new(0));
    let proxy = cobs_tamper_proxy(target, Arc::clone(&altered));
    let to: Addr = format!("tcp+cobs://{proxy}").parse().unwrap();
    let mut link = Link::connect_with(&to, &config(Some(key(7)))).unwrap();
    let sent = messages(30);
    echo_all(&mut link, &sent);
    let stats = link.stats();
    assert!(altered.load(Ordering::Acquire) > 0);
    assert!(stats.auth_failures > 0, "altered packets were counted: {stats:?}");
    link.close().ok();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), sent);
    server.shutdown();
}

/// A TCP proxy for `tcp://` (length-delimited frames) that alters the `nth` packet from the
/// client (fixing its CRC) and copies everything else as it is.
fn tcp_tamper_proxy(target: SocketAddr, nth: u64) -> SocketAddr {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else { return };
        let Ok(mut server) = TcpStream::connect(target) else { return };
        let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let down = thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = s2.read(&mut buf) {
                if n == 0 || c2.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = c2.shutdown(std::net::Shutdown::Write);
        });
        let mut count = 0u64;
        let mut prefix = [0u8; 4];
        while client.read_exact(&mut prefix).is_ok() {
            let mut packet = vec![0u8; u32::from_le_bytes(prefix) as usize];
            if client.read_exact(&mut packet).is_err() {
                break;
            }
            count += 1;
            if count == nth {
                tamper(&mut packet, 0);
            }
            if server.write_all(&prefix).is_err() || server.write_all(&packet).is_err() {
                break;
            }
        }
        let _ = server.shutdown(std::net::Shutdown::Write);
        let _ = down.join();
    });
    addr
}

#[test]
fn over_tcp_an_altered_packet_is_dropped_and_nothing_after_it_is_delivered() {
    let (server, rx) = echo_server("tcp://127.0.0.1:0", Some(key(10)));
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    // Packet 1 is HELLO, packet 2 the first message's DATA: it is altered.
    let proxy = tcp_tamper_proxy(target, 2);
    let to: Addr = format!("tcp://{proxy}").parse().unwrap();
    let config = config(Some(key(10)));
    let mut link = Link::connect_with(&to, &config).unwrap();
    let sent = messages(6);
    for message in &sent {
        let _ = link.send(message);
    }
    // TCP has no retransmission: the session cannot repair the hole. Give it time to deliver
    // whatever it would.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match link.next_event(Some(Duration::from_millis(200))) {
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let got: Vec<Vec<u8>> = rx.try_iter().collect();
    assert!(got.is_empty(), "neither the altered message nor those after it arrive: {} did", got.len());
    assert!(server.stats().auth_failures >= 1, "{:?}", server.stats());
    server.shutdown();
}

fn untouched(_: &mut [u8], _: u64) {}

#[test]
fn a_replayed_udp_session_and_reflected_packets_deliver_nothing() {
    let (server, rx) = echo_server("udp://127.0.0.1:0", Some(key(8)));
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    let relay = UdpRelay::start(target, untouched);
    let to: Addr = format!("udp://{}", relay.addr).parse().unwrap();
    let mut link = Link::connect_with(&to, &config(Some(key(8)))).unwrap();
    let sent = messages(5);
    echo_all(&mut link, &sent);
    link.close().ok();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), sent);
    let recorded = relay.recorded.lock().unwrap().clone();
    let answers = relay.answers.lock().unwrap().clone();
    assert!(recorded.len() > sent.len());
    // The whole session again, from the relay's own address (the one the server validated),
    // within the cookie's lifetime; then the server's own packets reflected back at it.
    let from = relay.addr;
    drop(relay);
    let replayer = UdpSocket::bind(from).unwrap();
    for datagram in recorded.iter().chain(&answers) {
        replayer.send_to(datagram, target).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + PATIENCE;
    while server.stats().auth_failures == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(server.stats().auth_failures > 0, "the replayed packets were refused: {:?}", server.stats());
    thread::sleep(Duration::from_millis(200));
    assert!(rx.try_recv().is_err(), "a replayed session delivers nothing");
    server.shutdown();
}

#[test]
fn the_text_is_not_on_the_wire() {
    let (server, rx) = echo_server("udp://127.0.0.1:0", Some(key(9)));
    let target = server.local_addrs()[0].resolve().unwrap()[0];
    let relay = UdpRelay::start(target, untouched);
    let to: Addr = format!("udp://{}", relay.addr).parse().unwrap();
    let mut link = Link::connect_with(&to, &config(Some(key(9)))).unwrap();
    let secret = b"the launch code is 0000".to_vec();
    echo_all(&mut link, std::slice::from_ref(&secret));
    link.close().ok();
    let recorded = relay.recorded.lock().unwrap().clone();
    assert!(!recorded.is_empty());
    for datagram in &recorded {
        assert!(!datagram.windows(6).any(|w| w == b"launch"), "plaintext on the wire: {datagram:02x?}");
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [secret]);
    server.shutdown();
}
