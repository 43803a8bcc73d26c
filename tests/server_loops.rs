//! The server's event loops, in one process over loopback TCP and UDP: messages pushed to
//! clients from outside the handler ([`ServerHandle::send`], [`ServerHandle::broadcast`]) over
//! either, and a broadcast reaching both at once; many clients on
//! one loop, the handshake and idle timeouts firing on a loop that holds many sessions, and a
//! blocked handler holding up only its own loop. Every wait is bounded.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use framelink::core::framing::{Encoder, LengthDelimited};
use framelink::core::session::SendError;
use framelink::core::wire::{Capabilities, HelloPayload, PacketType, Repr};
use framelink::std::{
    Addr, Handler, Link, LinkConfig, LinkEvent, PeerInfo, Reply, Server, ServerConfig, ServerHandle,
};

const WAIT: Duration = Duration::from_secs(10);

/// Echoes every message; tells the test each client's id as it connects.
struct Echo {
    connected: Mutex<Sender<u64>>,
}

impl Handler for Echo {
    fn on_connect(&self, peer: &PeerInfo) {
        let _ = self.connected.lock().unwrap().send(peer.id);
    }

    fn on_message(&self, _peer: &PeerInfo, message: &[u8], reply: &mut Reply<'_>) {
        let _ = reply.send(message);
    }
}

fn serve(config: ServerConfig) -> (ServerHandle, Addr, Receiver<u64>) {
    let (handle, mut addrs, ids) = serve_on(&["tcp://127.0.0.1:0"], config);
    (handle, addrs.remove(0), ids)
}

/// A server on every one of `addrs`; its bound addresses in the same order.
fn serve_on(addrs: &[&str], config: ServerConfig) -> (ServerHandle, Vec<Addr>, Receiver<u64>) {
    let (connected, ids) = channel();
    let addrs: Vec<Addr> = addrs.iter().map(|addr| addr.parse().unwrap()).collect();
    let server = Server::bind(&addrs, config).unwrap();
    let bound = server.local_addrs();
    let handle = server.spawn(Echo { connected: Mutex::new(connected) }).unwrap();
    (handle, bound, ids)
}

/// Small buffers on both sides: these tests hold many clients in one process.
fn small_link() -> LinkConfig {
    LinkConfig::new().max_message(4096)
}

fn next_message(link: &mut Link) -> Vec<u8> {
    let until = Instant::now() + WAIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match link.next_event(Some(left)) {
            Ok(Some(LinkEvent::Message(message))) => return message,
            Ok(Some(_)) => {}
            other => panic!("expected a message, got {other:?}"),
        }
        assert!(Instant::now() < until, "no message within {WAIT:?}");
    }
}

/// Nothing arrives on `link` for a moment.
fn nothing_arrives(link: &mut Link) {
    match link.next_event(Some(Duration::from_millis(200))) {
        Ok(None) => {}
        other => panic!("expected nothing, got {other:?}"),
    }
}

/// Polls `condition` every few milliseconds, at most [`WAIT`].
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let until = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The handle can be shared with the application's own threads, to push from them.
#[test]
fn the_server_handle_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ServerHandle>();
}

#[test]
fn pushed_messages_reach_one_client_and_broadcasts_reach_every_client() {
    let config = ServerConfig::new().event_loops(2).link(small_link());
    let (handle, addr, ids) = serve(config);
    let _links = push_and_broadcast(&handle, &addr, &ids, 6, 2);
    handle.shutdown();
}

#[test]
fn pushed_messages_and_broadcasts_reach_udp_clients() {
    let config = ServerConfig::new().link(small_link());
    let (handle, addrs, ids) = serve_on(&["udp://127.0.0.1:0"], config);
    let mut links = push_and_broadcast(&handle, &addrs[0], &ids, 3, 1);
    handle.shutdown();
    // The shutdown closed every UDP session: each client was told.
    for link in &mut links {
        let until = Instant::now() + WAIT;
        loop {
            match link.next_event(Some(until.saturating_duration_since(Instant::now()))) {
                Ok(Some(LinkEvent::Closed(_))) | Err(_) => break,
                Ok(_) => assert!(Instant::now() < until, "the client was not told the server stopped"),
            }
        }
    }
}

/// Connects `clients` links to `addr` and checks, through `handle`: a message pushed to client
/// `target` reaches it alone; replies and pushes to the others share one order; a broadcast
/// reaches all; an unknown or gone client is `Closed`, a message over the limit `TooLarge`.
/// Gives back the links still open (the first was closed).
fn push_and_broadcast(
    handle: &ServerHandle,
    addr: &Addr,
    ids: &Receiver<u64>,
    clients: usize,
    target: usize,
) -> Vec<Link> {
    let mut links = Vec::new();
    let mut by_id = Vec::new();
    for _ in 0..clients {
        links.push(Link::connect_with(addr, &small_link()).unwrap());
        by_id.push(ids.recv_timeout(WAIT).expect("the handler saw the client connect"));
    }
    // The ids came in the order the clients connected (each connect completes its handshake).
    handle.send(by_id[target], b"only for you").unwrap();
    assert_eq!(next_message(&mut links[target]), b"only for you");
    for (i, link) in links.iter_mut().enumerate().filter(|(i, _)| *i != target) {
        nothing_arrives(link);
        // Replies and pushes share one order.
        link.send(format!("echo {i}").as_bytes()).unwrap();
        handle.send(by_id[i], b"pushed after").unwrap();
        assert_eq!(next_message(link), format!("echo {i}").as_bytes());
        assert_eq!(next_message(link), b"pushed after");
    }
    handle.broadcast(b"to everyone");
    for link in &mut links {
        assert_eq!(next_message(link), b"to everyone");
    }

    assert_eq!(handle.send(u64::MAX, b"nobody"), Err(SendError::Closed));
    let too_large = vec![0u8; 4096 + 1];
    assert!(matches!(handle.send(by_id[0], &too_large), Err(SendError::TooLarge { max: 4096 })));
    let gone = by_id.remove(0);
    links.remove(0).close().unwrap();
    eventually("the closed client to be unlisted", || handle.send(gone, b"late") == Err(SendError::Closed));
    handle.broadcast(b"still here");
    for link in &mut links {
        assert_eq!(next_message(link), b"still here");
    }
    links
}

#[test]
fn a_broadcast_reaches_tcp_and_udp_clients_alike() {
    let config = ServerConfig::new().event_loops(2).link(small_link());
    let (handle, addrs, ids) =
        serve_on(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "udp://127.0.0.1:0"], config);
    let mut links = Vec::new();
    for addr in addrs.iter().chain(&addrs) {
        links.push(Link::connect_with(addr, &small_link()).unwrap());
        ids.recv_timeout(WAIT).expect("the handler saw the client connect");
    }
    handle.broadcast(b"to everyone");
    for link in &mut links {
        assert_eq!(next_message(link), b"to everyone");
        nothing_arrives(link);
    }
    handle.shutdown();
}

#[test]
fn one_loop_serves_many_clients_at_once() {
    const CLIENTS: usize = 200;
    let config = ServerConfig::new().event_loops(1).max_clients(CLIENTS).link(small_link());
    let (handle, addr, ids) = serve(config);
    let mut links: Vec<Link> =
        (0..CLIENTS).map(|_| Link::connect_with(&addr, &small_link()).unwrap()).collect();
    let seen: HashSet<u64> = (0..CLIENTS).map(|_| ids.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(seen.len(), CLIENTS, "every client has an id of its own");
    assert_eq!(handle.stats().active, CLIENTS);
    // Every client has a message in flight at once, then each reads its own answer back.
    for (i, link) in links.iter_mut().enumerate() {
        link.send(format!("client {i}").as_bytes()).unwrap();
    }
    for (i, link) in links.iter_mut().enumerate().rev() {
        assert_eq!(next_message(link), format!("client {i}").as_bytes());
    }
    // One more is refused at the limit, with ERROR Busy, by the same loop.
    let refused = Link::connect_with(&addr, &small_link());
    assert!(refused.is_err(), "a client over the limit was served");
    for link in links.drain(..) {
        link.close().unwrap();
    }
    eventually("every session to end", || handle.stats().active == 0);
    assert_eq!(handle.stats().refused, 1);
    handle.shutdown();
}

/// A HELLO in a length-delimited frame, as a TCP client sends it.
fn hello_frame(session_id: u32) -> Vec<u8> {
    let payload = HelloPayload {
        version: 1,
        supports: Capabilities::NONE,
        requires: Capabilities::NONE,
        max_payload: 1024,
        window: 16,
        session_id,
        max_message: 4096,
        credit: 4096,
        cookie: None,
    };
    let mut body = [0u8; HelloPayload::LEN];
    let len = payload.emit(&mut body).unwrap();
    let mut packet = [0u8; 64];
    let len = Repr::control(PacketType::Hello, &body[..len]).emit(&mut packet).unwrap();
    let mut frame = vec![0u8; LengthDelimited::max_encoded_len(len)];
    let len = LengthDelimited::encode(&packet[..len], &mut frame).unwrap();
    frame.truncate(len);
    frame
}

/// Reads until the server closes the connection (at most `within`); `true` if it did.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let until = Instant::now() + within;
    let mut sink = [0u8; 256];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn timeouts_fire_on_a_loop_holding_many_sessions() {
    const SILENT: usize = 60;
    const MUTE_AFTER_HELLO: usize = 40;
    let handshake = Duration::from_millis(400);
    let idle = Duration::from_millis(900);
    let config =
        ServerConfig::new().event_loops(1).link(small_link()).handshake_timeout(handshake).idle_timeout(idle);
    let (handle, addr, _ids) = serve(config);
    let target: SocketAddr = format!("{}:{}", addr.host, addr.port).parse().unwrap();

    // A live client, which talks on its own thread all along and must outlast every timeout.
    let live_addr = addr.clone();
    let live = thread::spawn(move || {
        let mut link = Link::connect_with(&live_addr, &small_link()).unwrap();
        let until = Instant::now() + idle * 3;
        let mut exchanges = 0;
        while Instant::now() < until {
            link.send(b"still here").unwrap();
            assert_eq!(next_message(&mut link), b"still here");
            exchanges += 1;
            thread::sleep(idle / 10);
        }
        link.close().unwrap();
        exchanges
    });
    eventually("the live client to connect", || handle.stats().active == 1);
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = (0..SILENT).map(|_| TcpStream::connect(target).unwrap()).collect();
    let mut mute: Vec<TcpStream> = (0..MUTE_AFTER_HELLO)
        .map(|i| {
            let mut stream = TcpStream::connect(target).unwrap();
            stream.write_all(&hello_frame(i as u32 + 1)).unwrap();
            stream
        })
        .collect();
    eventually("every connection to be taken in", || {
        handle.stats().accepted as usize == 1 + SILENT + MUTE_AFTER_HELLO
    });

    let bound = idle + Duration::from_secs(5);
    for stream in silent.iter_mut().chain(mute.iter_mut()) {
        let left = bound.saturating_sub(started.elapsed());
        assert!(closed_by_server(stream, left), "a silent client was kept past its timeout");
    }
    let stats = handle.stats();
    assert_eq!(stats.handshake_timeouts as usize, SILENT, "{stats:?}");
    assert_eq!(stats.idle_timeouts as usize, MUTE_AFTER_HELLO, "{stats:?}");
    let exchanges = live.join().expect("the live client was served throughout");
    assert!(exchanges > 10, "the live client exchanged only {exchanges} messages");
    assert_eq!(handle.stats().idle_timeouts as usize, MUTE_AFTER_HELLO);
    handle.shutdown();
}

/// Blocks in `on_message` on "block" until the test lets it go; echoes everything else.
struct Blocking {
    connected: Mutex<Sender<u64>>,
    blocked: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Handler for Blocking {
    fn on_connect(&self, peer: &PeerInfo) {
        let _ = self.connected.lock().unwrap().send(peer.id);
    }

    fn on_message(&self, _peer: &PeerInfo, message: &[u8], reply: &mut Reply<'_>) {
        if message == b"block" {
            let _ = self.blocked.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv_timeout(WAIT);
        }
        let _ = reply.send(message);
    }
}

#[test]
fn a_handler_that_blocks_holds_up_only_its_own_loop() {
    let (connected, ids) = channel();
    let (blocked_tx, blocked) = channel();
    let (release, release_rx) = channel();
    let handler = Blocking {
        connected: Mutex::new(connected),
        blocked: Mutex::new(blocked_tx),
        release: Mutex::new(release_rx),
    };
    let config = ServerConfig::new().event_loops(2).link(small_link());
    let server = Server::bind(&["tcp://127.0.0.1:0"], config).unwrap();
    let addr = server.local_addrs()[0].clone();
    let handle = server.spawn(handler).unwrap();
    // Each new client goes to the loop holding fewer: these two are on different loops.
    let mut first = Link::connect_with(&addr, &small_link()).unwrap();
    ids.recv_timeout(WAIT).unwrap();
    let mut second = Link::connect_with(&addr, &small_link()).unwrap();
    ids.recv_timeout(WAIT).unwrap();

    first.send(b"block").unwrap();
    // Drive the first link until the server reports its handler blocked.
    let until = Instant::now() + WAIT;
    while blocked.try_recv().is_err() {
        assert!(Instant::now() < until, "the handler was never called");
        let _ = first.next_event(Some(Duration::from_millis(10)));
    }
    // The other loop still answers while the first one waits in the handler.
    second.send(b"not held up").unwrap();
    assert_eq!(next_message(&mut second), b"not held up");
    release.send(()).unwrap();
    assert_eq!(next_message(&mut first), b"block");
    handle.shutdown();
}
