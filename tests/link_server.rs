//! `framelink_std::{Link, Server}` in one process, over real loopback sockets on ephemeral
//! ports: echo on every transport, replies that outgrow the send buffer, the client limit,
//! message limits, timeouts, a panicking handler, shutdown. Every wait is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use framelink::core::framing::{Encoder, LengthDelimited};
use framelink::core::session::{CloseReason, SendError, Timeout};
use framelink::core::wire::{
    Capabilities, ErrorCode, ErrorPayload, HelloPayload, PacketType, Repr, SeqNumber,
};
use framelink::std::{
    Addr, Handler, Link, LinkConfig, LinkError, LinkEvent, LinkEventRef, PeerInfo, Reply, Server,
    ServerConfig, ServerHandle,
};

const WAIT: Duration = Duration::from_secs(10);

/// Echoes, and obeys a few commands; reports what happens on a channel.
struct Echo {
    events: Mutex<Sender<String>>,
}

impl Handler for Echo {
    fn on_connect(&self, peer: &PeerInfo) {
        let _ = self.events.lock().unwrap().send(format!("connect {}", peer.transport.scheme()));
    }

    fn on_message(&self, _peer: &PeerInfo, message: &[u8], reply: &mut Reply<'_>) {
        let text = String::from_utf8_lossy(message);
        let words: Vec<&str> = text.split(' ').collect();
        match words[..] {
            ["boom"] => panic!("the handler fails on purpose"),
            ["bye"] => {
                reply.send(b"bye").unwrap();
                reply.close();
            }
            ["flood", count, size] => {
                for i in 0..count.parse::<u8>().unwrap() {
                    reply.send(&vec![i; size.parse().unwrap()]).unwrap();
                }
            }
            _ => reply.send(message).unwrap(),
        }
    }

    fn on_close(&self, _peer: &PeerInfo, reason: Result<CloseReason, &LinkError>) {
        let text = match reason {
            Ok(reason) => format!("close {reason:?}"),
            Err(error) => format!("lost {error}"),
        };
        let _ = self.events.lock().unwrap().send(text);
    }
}

fn serve(listen: &[&str], config: ServerConfig) -> (ServerHandle, Receiver<String>) {
    let addrs: Vec<Addr> = listen.iter().map(|a| a.parse().unwrap()).collect();
    let (events, receiver) = channel();
    let handle = Server::bind(&addrs, config).unwrap().spawn(Echo { events: Mutex::new(events) }).unwrap();
    (handle, receiver)
}

fn addr(handle: &ServerHandle, scheme: &str) -> Addr {
    handle.local_addrs().iter().find(|a| a.transport.scheme() == scheme).unwrap().clone()
}

fn next_message(link: &mut Link) -> Vec<u8> {
    match link.next_event(Some(WAIT)) {
        Ok(Some(LinkEvent::Message(message))) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn expect_event(events: &Receiver<String>, prefix: &str) -> String {
    let event = events.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no `{prefix}` event"));
    assert!(event.starts_with(prefix), "expected `{prefix}...`, got `{event}`");
    event
}

/// Polls `condition` every few milliseconds, at most [`WAIT`].
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let until = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn echo_ping_flush_and_close_on_every_transport() {
    let (handle, events) =
        serve(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"], ServerConfig::new());
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        // Connected by its text, `udp://127.0.0.1:PORT`, as a user would write it.
        let text = addr(&handle, scheme).to_string();
        let mut link = Link::connect(text.as_str()).unwrap();
        expect_event(&events, &format!("connect {scheme}"));
        for message in [&b"Hello, "[..], b"Server!", b"", &[0u8; 100_000]] {
            link.send(message).unwrap();
        }
        for message in [&b"Hello, "[..], b"Server!", b"", &[0u8; 100_000]] {
            assert_eq!(next_message(&mut link), message, "{scheme}");
        }
        let token = link.ping(100).unwrap();
        match link.next_event(Some(WAIT)).unwrap() {
            Some(LinkEvent::Pong { token: got, .. }) => assert_eq!(got, token),
            other => panic!("expected a pong, got {other:?}"),
        }
        link.flush(Some(WAIT)).unwrap();
        assert!(link.rtt().samples > 0);
        assert_eq!(link.stats().messages_received, 4);
        assert_eq!(link.peer().unwrap().max_message, LinkConfig::DEFAULT_MAX_MESSAGE);
        link.close().unwrap();
        expect_event(&events, "close Peer");
    }
    handle.shutdown();
}

#[test]
fn replies_that_outgrow_the_send_buffer_wait_and_all_arrive_in_order() {
    // 40 replies of 60,000 bytes: 2.4 MB against a send buffer of 64 KiB + 64 KiB (UDP) or
    // 64 KiB + 1 MiB (TCP).
    let (handle, _events) =
        serve(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ServerConfig::new().max_message(65536));
    for scheme in ["tcp", "udp"] {
        let mut link = Link::connect(addr(&handle, scheme)).unwrap();
        link.send(b"flood 40 60000").unwrap();
        link.send(b"after the flood").unwrap();
        for i in 0..40u8 {
            assert_eq!(next_message(&mut link), vec![i; 60_000], "{scheme}");
        }
        assert_eq!(next_message(&mut link), b"after the flood");
        link.close().unwrap();
    }
}

#[test]
fn fed_messages_wait_for_a_batch_and_all_arrive_in_order() {
    let (handle, _events) = serve(&["tcp://127.0.0.1:0"], ServerConfig::new());
    let mut link = Link::connect(addr(&handle, "tcp")).unwrap();
    let mut fed = Vec::new();
    // Less than a batch (128 KiB): queued, nothing written yet.
    for i in 0..10u8 {
        fed.push(vec![i; 1000]);
        link.feed(&fed[usize::from(i)]).unwrap();
    }
    assert_eq!(link.stats().bytes_sent, 0, "written before a batch was queued");
    // This one passes the batch: everything queued goes out.
    fed.push(vec![10; 130_000]);
    link.feed(&fed[10]).unwrap();
    let sent = link.stats().bytes_sent;
    assert!(sent >= 140_000, "a full batch was not written: {sent} bytes");
    // Another short one waits, and goes out with the next call that reads.
    fed.push(b"last".to_vec());
    link.feed(&fed[11]).unwrap();
    assert_eq!(link.stats().bytes_sent, sent);
    for message in &fed {
        assert_eq!(&next_message(&mut link), message);
    }
    link.close().unwrap();
    handle.shutdown();
}

#[test]
fn messages_that_come_whole_are_lent_from_the_read_buffer() {
    let (handle, _events) = serve(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ServerConfig::new());
    for scheme in ["tcp", "udp"] {
        let mut link = Link::connect(addr(&handle, scheme)).unwrap();
        // Two at a time: the second comes in the same read on TCP, after the one lent.
        for i in 0..10u8 {
            link.send(&[i; 1000]).unwrap();
            link.send(&[i + 100; 900]).unwrap();
            for expected in [vec![i; 1000], vec![i + 100; 900]] {
                match link.next_event_ref(Some(WAIT)).unwrap() {
                    Some(LinkEventRef::Message(message)) => assert_eq!(message, expected, "{scheme}"),
                    other => panic!("{scheme}: expected a message, got {other:?}"),
                }
            }
        }
        // Lent, never copied: the receive buffer never took room.
        assert_eq!(link.buffer_storage().1, 0, "{scheme}");
        assert_eq!(link.stats().messages_received, 20);
        if scheme == "tcp" {
            // Twenty messages of one 60,000-byte packet each in flight at once: reads of 256 KiB
            // end inside frames, whose starts wait in the read buffer for their rest.
            let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 60_000]).collect();
            for message in &messages {
                link.send(message).unwrap();
            }
            for expected in &messages {
                match link.next_event_ref(Some(WAIT)).unwrap() {
                    Some(LinkEventRef::Message(message)) => assert!(message == &expected[..]),
                    other => panic!("expected a message, got {other:?}"),
                }
            }
            assert_eq!(link.buffer_storage().1, 0);
        }
        // A message in pieces still goes through the receive buffer.
        link.send(&[7; 100_000]).unwrap();
        assert_eq!(next_message(&mut link), vec![7; 100_000]);
        assert!(link.buffer_storage().1 >= 100_000, "{scheme}");
        link.close().unwrap();
    }
    handle.shutdown();
}

#[test]
fn a_client_over_the_limit_gets_busy_and_a_freed_slot_is_reused() {
    let (handle, events) =
        serve(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ServerConfig::new().max_clients(1));
    let first = Link::connect(addr(&handle, "tcp")).unwrap();
    expect_event(&events, "connect");
    for scheme in ["tcp", "udp"] {
        match Link::connect(addr(&handle, scheme)) {
            Err(LinkError::Refused(CloseReason::PeerError { code: ErrorCode::Busy, detail: 1 })) => {}
            other => panic!("{scheme}: expected busy, got {other:?}"),
        }
    }
    assert_eq!(handle.stats().refused, 2);
    first.close().unwrap();
    eventually("the slot to be free", || handle.stats().active == 0);
    let mut again = Link::connect(addr(&handle, "udp")).unwrap();
    again.send(b"in").unwrap();
    assert_eq!(next_message(&mut again), b"in");
    again.close().unwrap();
}

#[test]
fn the_message_limit_is_announced_and_enforced() {
    let (handle, _events) = serve(&["tcp://127.0.0.1:0"], ServerConfig::new().max_message(1000));
    // A well-behaved client learns the limit in the handshake: refused locally, link intact.
    let mut link = Link::connect(addr(&handle, "tcp")).unwrap();
    match link.send(&[7; 1001]) {
        Err(error @ LinkError::Send(SendError::TooLarge { max: 1000 })) => assert!(error.is_recoverable()),
        other => panic!("expected too large, got {other:?}"),
    }
    link.send(&[7; 1000]).unwrap();
    assert_eq!(next_message(&mut link), [7; 1000]);
    link.close().unwrap();

    // A client that ignores it is answered with ERROR MessageTooLarge.
    let mut stream = raw_handshake(&addr(&handle, "tcp"));
    write_packet(&mut stream, &Repr::data(SeqNumber(0), None, false, &[1; 1500]));
    let (code, detail) = read_error(&mut stream);
    assert_eq!((code, detail), (ErrorCode::MessageTooLarge, 1000));
}

#[test]
fn silent_clients_are_dropped_after_the_handshake_and_idle_timeouts() {
    let link =
        LinkConfig::new().keepalive(Duration::from_millis(50)).idle_timeout(Duration::from_millis(300));
    let config = ServerConfig::new().link(link).handshake_timeout(Duration::from_millis(200)).max_clients(4);
    let (handle, events) = serve(&["tcp://127.0.0.1:0"], config);
    let target = addr(&handle, "tcp");

    // Connects and never says HELLO: disconnected, and the slot comes back.
    let mut mute = TcpStream::connect((target.host.as_str(), target.port)).unwrap();
    mute.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(mute.read(&mut [0u8; 64]).unwrap(), 0);

    // Completes the handshake, then answers nothing: pinged, then ERROR IdleTimeout.
    let started = Instant::now();
    let mut silent = raw_handshake(&target);
    expect_event(&events, "connect");
    let (code, detail) = read_error(&mut silent);
    assert_eq!((code, detail), (ErrorCode::IdleTimeout, 300));
    // A liveness bound (the idle timeout is 300 ms), generous for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(expect_event(&events, "close"), format!("close {:?}", CloseReason::TimedOut(Timeout::Idle)));
    eventually("every slot to be free", || handle.stats().active == 0);
}

#[test]
fn a_panicking_handler_ends_only_its_own_client() {
    let (handle, _events) = serve(&["tcp://127.0.0.1:0"], ServerConfig::new());
    let target = addr(&handle, "tcp");
    let mut steady = Link::connect(&target).unwrap();
    let mut doomed = Link::connect(&target).unwrap();
    doomed.send(b"boom").unwrap();
    assert!(matches!(doomed.next_event(Some(WAIT)), Err(LinkError::ConnectionLost)));
    steady.send(b"fine").unwrap();
    assert_eq!(next_message(&mut steady), b"fine");
    steady.close().unwrap();
    eventually("the slots to be free", || handle.stats().active == 0);
}

#[test]
fn the_handler_can_close_a_session() {
    let (handle, events) = serve(&["udp://127.0.0.1:0"], ServerConfig::new());
    let mut link = Link::connect(addr(&handle, "udp")).unwrap();
    link.send(b"bye").unwrap();
    assert_eq!(next_message(&mut link), b"bye");
    assert_eq!(link.next_event(Some(WAIT)).unwrap(), Some(LinkEvent::Closed(CloseReason::Peer)));
    assert!(matches!(link.send(b"more"), Err(LinkError::Closed(CloseReason::Peer))));
    link.close().unwrap();
    expect_event(&events, "connect");
    expect_event(&events, "close Local");
}

#[test]
fn udp_peers_are_served_apart() {
    let (handle, _events) = serve(&["udp://127.0.0.1:0"], ServerConfig::new());
    let target = addr(&handle, "udp");
    let mut links: Vec<Link> = (0..5).map(|_| Link::connect(&target).unwrap()).collect();
    for round in 0..20 {
        for (i, link) in links.iter_mut().enumerate() {
            link.send(format!("{i}/{round}").as_bytes()).unwrap();
        }
    }
    for (i, link) in links.iter_mut().enumerate() {
        for round in 0..20 {
            assert_eq!(next_message(link), format!("{i}/{round}").as_bytes());
        }
    }
    assert_eq!(handle.stats().active, 5);
    for link in links {
        link.close().unwrap();
    }
    eventually("the peers to be dropped", || handle.stats().active == 0);
}

#[test]
fn shutdown_closes_every_client_and_returns_promptly() {
    let (handle, _events) = serve(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ServerConfig::new());
    let mut links: Vec<Link> =
        ["tcp", "udp"].iter().map(|s| Link::connect(addr(&handle, s)).unwrap()).collect();
    let started = Instant::now();
    handle.shutdown();
    // Shutdown must not hang; the bound is generous for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(15), "shutdown took {:?}", started.elapsed());
    for link in &mut links {
        assert_eq!(link.next_event(Some(WAIT)).unwrap(), Some(LinkEvent::Closed(CloseReason::Peer)));
    }
}

#[test]
fn waits_end_at_the_callers_timeout() {
    let (handle, _events) = serve(&["tcp://127.0.0.1:0"], ServerConfig::new());
    let mut link = Link::connect(addr(&handle, "tcp")).unwrap();
    let started = Instant::now();
    assert_eq!(link.next_event(Some(Duration::from_millis(50))).unwrap(), None);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(15), "{waited:?}");
    link.flush(Some(Duration::from_millis(10))).unwrap();
    link.close().unwrap();
}

/// A raw TCP client that completes the handshake by hand.
fn raw_handshake(target: &Addr) -> TcpStream {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let hello = HelloPayload {
        version: 1,
        supports: Capabilities::NONE,
        requires: Capabilities::NONE,
        max_payload: 4096,
        window: 16,
        session_id: 77,
        max_message: 65536,
        credit: 65536,
        cookie: None,
    };
    let mut body = [0u8; HelloPayload::LEN];
    hello.emit(&mut body).unwrap();
    write_packet(&mut stream, &Repr::control(PacketType::Hello, &body));
    assert_eq!(read_packet(&mut stream).0, PacketType::HelloAck);
    stream
}

fn write_packet(stream: &mut TcpStream, repr: &Repr<'_>) {
    let mut packet = vec![0u8; repr.buffer_len()];
    let len = repr.emit(&mut packet).unwrap();
    let mut frame = vec![0u8; len + 4];
    let len = LengthDelimited::encode(&packet[..len], &mut frame).unwrap();
    stream.write_all(&frame[..len]).unwrap();
}

fn read_packet(stream: &mut TcpStream) -> (PacketType, Vec<u8>) {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).unwrap();
    let mut packet = vec![0u8; u32::from_le_bytes(prefix) as usize];
    stream.read_exact(&mut packet).unwrap();
    let repr = Repr::parse(&packet).unwrap();
    (repr.kind, repr.payload.to_vec())
}

/// Reads packets (skipping PINGs and ACKs) until an ERROR; its code and detail.
fn read_error(stream: &mut TcpStream) -> (ErrorCode, u32) {
    for _ in 0..1000 {
        let (kind, payload) = read_packet(stream);
        if kind == PacketType::Error {
            let error = ErrorPayload::parse(&payload).unwrap();
            return (error.code, error.detail);
        }
    }
    panic!("no ERROR in 1000 packets");
}

#[test]
fn the_responder_serves_the_test_service_and_passes_text_to_the_handler() {
    use framelink::core::service::{ServiceMessage, check_pattern};
    let config = ServerConfig::new().responder("test server", "1.2.3");
    let (handle, events) =
        serve(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"], config);
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        let mut link = Link::connect(addr(&handle, scheme)).unwrap();
        expect_event(&events, "connect");
        let request = |m: ServiceMessage<'_>| {
            let mut buf = vec![0u8; m.encoded_len()];
            m.emit(&mut buf).unwrap();
            buf
        };
        link.send(&request(ServiceMessage::Echo { id: 9, payload: b"ping" })).unwrap();
        let reply = next_message(&mut link);
        assert_eq!(
            ServiceMessage::parse(&reply),
            Ok(Some(ServiceMessage::EchoReply { id: 9, payload: b"ping" }))
        );
        // Text still reaches the handler (which echoes it).
        link.send(b"plain text").unwrap();
        assert_eq!(next_message(&mut link), b"plain text");
        link.send(&request(ServiceMessage::Source { id: 2, bytes: 300_000, millis: 0, size: 1000 })).unwrap();
        let mut received = 0u64;
        loop {
            let reply = next_message(&mut link);
            match ServiceMessage::parse(&reply).unwrap().unwrap() {
                ServiceMessage::SourceData { offset, data, .. } => {
                    assert_eq!(offset, received);
                    assert!(check_pattern(offset, data));
                    received += data.len() as u64;
                }
                ServiceMessage::SourceEnd { bytes, .. } => {
                    assert_eq!((bytes, received), (300_000, 300_000));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        link.send(&request(ServiceMessage::Info)).unwrap();
        let reply = next_message(&mut link);
        let Ok(Some(ServiceMessage::InfoReply(info))) = ServiceMessage::parse(&reply) else {
            panic!("{reply:?}")
        };
        assert_eq!((info.name, info.software), ("test server", "1.2.3"));
        link.send(&request(ServiceMessage::Stats)).unwrap();
        let reply = next_message(&mut link);
        let Ok(Some(ServiceMessage::StatsReply(stats))) = ServiceMessage::parse(&reply) else {
            panic!("{reply:?}")
        };
        assert_eq!((stats.echoes, stats.source_bytes), (1, 300_000));
        link.close().unwrap();
        expect_event(&events, "close");
    }
    handle.shutdown();
}
