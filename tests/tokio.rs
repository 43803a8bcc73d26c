//! framelink-tokio against the `framelink` tool and the blocking adapter, on loopback: the
//! async `Link` talks to `framelink serve` over TCP, UDP and TCP+COBS (messages, the test
//! service's ECHO and INFO, ping); the tokio `Server` serves the blocking `framelink_std::Link`
//! and the tool's `ping` and `info`, and a serial port (a socat pty pair) session after session;
//! and the ways it ends: a server that goes away, a refused handshake (a full server), a
//! connection refused, a handshake and an idle timeout, a graceful shutdown. Every wait is bounded, and every child is killed on every path.

mod common;

use std::future::Future;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use framelink::core::service::{ServerCounters, ServiceMessage, TAG};
use framelink::core::session::{CloseReason, Timeout};
use framelink::core::wire::ErrorCode;
use framelink_tokio::{
    Addr, AddrError, Link, LinkConfig, LinkError, LinkEvent, Psk, Server, ServerConfig, ServerHandle,
};

use common::socat::{self, PtyPair, TempDir};
use common::tool::{Running, listener, run};
use common::{WAIT, example, run_example};

/// `framelink serve` on ephemeral loopback ports, TCP, UDP and TCP+COBS.
fn serve() -> (Running, Vec<Addr>) {
    let running = Running::start(&[
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--listen",
        "udp://127.0.0.1:0",
        "--listen",
        "tcp+cobs://127.0.0.1:0",
    ]);
    let addrs = running.listening(3);
    let addrs = ["tcp", "udp", "tcp+cobs"].map(|scheme| listener(&addrs, scheme).parse().unwrap());
    (running, addrs.to_vec())
}

/// `fut`, which must complete within [`WAIT`].
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("{what} took longer than {WAIT:?}"))
}

/// Waits (at most [`WAIT`]) until `holds` says yes of the server's counters.
async fn until_stats(handle: &ServerHandle, what: &str, holds: impl Fn(&ServerCounters) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !holds(&handle.stats()) {
        assert!(tokio::time::Instant::now() < deadline, "{what}: {:?}", handle.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (at most [`WAIT`]) until no client holds a slot of the server.
async fn every_slot_free(handle: &ServerHandle) {
    until_stats(handle, "every client slot free", |stats| stats.clients == 0).await;
}

/// A service request written into a message.
fn request(message: ServiceMessage<'_>) -> Vec<u8> {
    let mut out = vec![0u8; message.encoded_len()];
    let len = message.emit(&mut out).unwrap();
    out.truncate(len);
    out
}

/// The next message on `link`, which must be a service message; its bytes.
async fn reply(link: &mut Link) -> Vec<u8> {
    match bounded("a reply", link.recv()).await.unwrap() {
        LinkEvent::Message(message) => {
            assert_eq!(message.first(), Some(&TAG), "a service reply");
            message
        }
        other => panic!("a message was wanted, not {other:?}"),
    }
}

/// Two loopback ports nobody listens on: TCP and UDP.
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    (tcp, udp)
}

#[tokio::test]
async fn the_async_link_talks_to_framelink_serve_over_every_transport() {
    let (serve, addrs) = serve();
    for (round, addr) in addrs.iter().enumerate() {
        let mut link = bounded("connect", Link::connect(addr)).await.unwrap();
        assert_eq!(link.transport(), addr.transport);
        assert_eq!(link.peer_addr().port(), addr.port);

        // A text message: the server prints it.
        link.send(format!("Hello, Server! ({round})").as_bytes()).await.unwrap();
        serve.stdout.wait_for("the message", |lines, _| {
            lines.iter().any(|l| *l == format!("Received: Hello, Server! ({round})"))
        });

        // ECHO, large enough to travel in fragments over UDP.
        let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        link.send(&request(ServiceMessage::Echo { id: 7, payload: &payload })).await.unwrap();
        let echoed = reply(&mut link).await;
        match ServiceMessage::parse(&echoed).unwrap() {
            Some(ServiceMessage::EchoReply { id, payload: back }) => {
                assert_eq!((id, back), (7, &payload[..]))
            }
            other => panic!("not an ECHO reply: {other:?}"),
        }

        // INFO.
        link.send(&request(ServiceMessage::Info)).await.unwrap();
        let info = reply(&mut link).await;
        match ServiceMessage::parse(&info).unwrap() {
            Some(ServiceMessage::InfoReply(info)) => {
                assert_eq!(info.name, "framelink serve");
                assert_eq!(info.software, env!("CARGO_PKG_VERSION"));
            }
            other => panic!("not an INFO reply: {other:?}"),
        }

        // A session PING.
        let token = link.ping(16).await.unwrap();
        match bounded("the pong", link.recv()).await.unwrap() {
            LinkEvent::Pong { token: got, .. } => assert_eq!(got, token),
            other => panic!("a PONG was wanted, not {other:?}"),
        }
        bounded("flush", link.flush()).await.unwrap();
        assert!(link.stats().messages_sent >= 3, "{:?}", link.stats());
        bounded("close", link.close()).await.unwrap();
    }
}

#[tokio::test]
async fn recv_is_cancel_safe_under_a_timeout() {
    let (_serve, addrs) = serve();
    let mut link = bounded("connect", Link::connect(&addrs[1])).await.unwrap();
    // Nothing comes: each wait is cut short, and the link goes on.
    for _ in 0..5 {
        assert!(tokio::time::timeout(Duration::from_millis(20), link.recv()).await.is_err());
    }
    link.send(&request(ServiceMessage::Echo { id: 1, payload: b"after the timeouts" })).await.unwrap();
    let echoed = reply(&mut link).await;
    assert!(matches!(
        ServiceMessage::parse(&echoed).unwrap(),
        Some(ServiceMessage::EchoReply { id: 1, payload: b"after the timeouts" })
    ));
    bounded("close", link.close()).await.unwrap();
}

#[tokio::test]
async fn a_server_that_goes_away_ends_the_link() {
    // TCP: the end of the stream.
    let (mut serve, addrs) = serve();
    let mut tcp = bounded("connect", Link::connect(&addrs[0])).await.unwrap();
    // UDP: no more answers; the idle timeout (or the port's ICMP refusal) ends it.
    let config =
        LinkConfig::new().keepalive(Duration::from_millis(100)).idle_timeout(Duration::from_millis(600));
    let mut udp = bounded("connect", Link::connect_with(&addrs[1], &config)).await.unwrap();
    serve.child.0.kill().unwrap();
    serve.child.0.wait().unwrap();

    let error = bounded("the end over TCP", tcp.recv()).await.unwrap_err();
    assert!(matches!(error, LinkError::ConnectionLost), "{error}");
    assert!(matches!(tcp.send(b"more").await, Err(LinkError::ConnectionLost)), "the failure stays");

    let end = bounded("the end over UDP", udp.recv()).await;
    match end {
        Ok(LinkEvent::Closed(CloseReason::TimedOut(Timeout::Idle))) => {}
        Err(LinkError::Io(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("the UDP link should end: {other:?}"),
    }
}

#[tokio::test]
async fn connecting_where_nobody_listens_fails() {
    let error = Link::connect("tcp://no-port").await.unwrap_err();
    assert!(matches!(error, LinkError::Addr(AddrError::MissingPort(_))), "{error}");
    // Not a serial port: bind fails, naming it.
    let error = Server::bind(&["serial:///dev/null"], ServerConfig::new()).await.unwrap_err();
    assert!(error.to_string().contains("/dev/null"), "{error}");

    let (tcp, udp) = free_ports();
    let addr: Addr = format!("tcp://127.0.0.1:{tcp}").parse().unwrap();
    let error = bounded("connect", Link::connect(&addr)).await.unwrap_err();
    assert!(
        matches!(&error, LinkError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error}"
    );

    let addr: Addr = format!("udp://127.0.0.1:{udp}").parse().unwrap();
    let config = LinkConfig::new().handshake_timeout(Duration::from_millis(500));
    match bounded("connect", Link::connect_with(&addr, &config)).await {
        Err(LinkError::Closed(CloseReason::TimedOut(Timeout::Handshake))) => {}
        Err(LinkError::Io(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("nobody answers over UDP: {other:?}"),
    }
}

#[tokio::test]
async fn the_async_link_talks_to_framelink_serve_over_a_serial_line() {
    let error = Link::connect("serial:///dev/framelink-no-such-port").await.unwrap_err();
    assert!(error.to_string().contains("/dev/framelink-no-such-port"), "{error}");
    if !socat::available("the_async_link_talks_to_framelink_serve_over_a_serial_line") {
        return;
    }
    let dir = TempDir::new("tokio-serial");
    let pair = PtyPair::new(&dir.0, "line");
    let serve = Running::start(&["serve", "--listen", &pair.addr_a()]);
    serve.listening(1);
    let mut link = bounded("connect", Link::connect(pair.addr_b())).await.unwrap();
    assert_eq!(link.port_name(), Some(pair.b.to_str().unwrap()));
    link.send(b"Hello, Server!").await.unwrap();
    serve.stdout.wait_for("the message", |lines, _| lines.iter().any(|l| l == "Received: Hello, Server!"));
    // Larger than one packet on a serial line (256 bytes): it travels in fragments.
    let payload = vec![0x5a; 1000];
    link.send(&request(ServiceMessage::Echo { id: 3, payload: &payload })).await.unwrap();
    let echoed = reply(&mut link).await;
    match ServiceMessage::parse(&echoed).unwrap() {
        Some(ServiceMessage::EchoReply { id, payload: back }) => assert_eq!((id, back), (3, &payload[..])),
        other => panic!("not an ECHO reply: {other:?}"),
    }
    bounded("close", link.close()).await.unwrap();
}

/// A tokio server on TCP, UDP and TCP+COBS that answers the test service and echoes every
/// other message in capitals.
async fn tokio_server(config: ServerConfig) -> (ServerHandle, Vec<Addr>) {
    let listen = ["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tcp+cobs://127.0.0.1:0"];
    let server = Server::bind(&listen, config.responder("tokio test", "0.0.1")).await.unwrap();
    let addrs = server.local_addrs().to_vec();
    let handle = server.serve(|mut link: Link| async move {
        while let Ok(Some(message)) = link.recv_message().await {
            if link.send(&message.to_ascii_uppercase()).await.is_err() {
                return;
            }
        }
    });
    (handle, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_server_serves_the_blocking_link_and_the_tool() {
    let (handle, addrs) = tokio_server(ServerConfig::new()).await;
    for addr in &addrs {
        let addr = addr.clone();
        // The blocking link, on a thread of its own.
        let (echoed, info_name) = tokio::task::spawn_blocking(move || {
            let mut link = framelink_std::Link::connect(&addr).unwrap();
            link.send(b"hello, tokio").unwrap();
            let echoed = link.next_event(Some(WAIT)).unwrap();
            link.send(&request(ServiceMessage::Info)).unwrap();
            let Some(LinkEvent::Message(info)) = link.next_event(Some(WAIT)).unwrap() else {
                panic!("no INFO reply")
            };
            let name = match ServiceMessage::parse(&info).unwrap() {
                Some(ServiceMessage::InfoReply(info)) => info.name.to_owned(),
                other => panic!("not an INFO reply: {other:?}"),
            };
            link.close().unwrap();
            (echoed, name)
        })
        .await
        .unwrap();
        assert_eq!(echoed, Some(LinkEvent::Message(b"HELLO, TOKIO".to_vec())));
        assert_eq!(info_name, "tokio test");
    }
    // The tool: ping and info.
    for addr in &addrs {
        let addr = addr.to_string();
        let (ping, info) = tokio::task::spawn_blocking(move || {
            (
                run(&["ping", &addr, "-c", "3", "-i", "0", "--json"]).ok().json(),
                run(&["info", &addr, "--json"]).ok().json(),
            )
        })
        .await
        .unwrap();
        assert_eq!(ping["received"], 3, "{ping}");
        assert_eq!(info["name"], "tokio test", "{info}");
        assert_eq!(info["version"], "0.0.1", "{info}");
    }
    let stats = handle.stats();
    assert!(stats.accepted >= 9, "{stats:?}");
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_benches_the_tokio_server_both_ways() {
    let (handle, addrs) = tokio_server(ServerConfig::new()).await;
    for addr in &addrs[..2] {
        let addr = addr.to_string();
        let (forward, reverse) = tokio::task::spawn_blocking(move || {
            let forward = run(&["bench", &addr, "--bytes", "1M", "-i", "0", "--json"]).ok().json();
            let reverse = run(&["bench", &addr, "--bytes", "1M", "-R", "-i", "0", "--json"]).ok().json();
            (forward, reverse)
        })
        .await
        .unwrap();
        // SINK counts what it took in; SOURCE's bytes are checked by the tool as they come.
        assert_eq!(
            (forward["direction"].as_str(), forward["bytes"].as_u64()),
            (Some("forward"), Some(1 << 20))
        );
        assert_eq!(
            (reverse["direction"].as_str(), reverse["bytes"].as_u64()),
            (Some("reverse"), Some(1 << 20))
        );
    }
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_at_once_each_get_their_own_answers() {
    let (handle, addrs) = tokio_server(ServerConfig::new()).await;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..30 {
        let addr = addrs[client % 3].clone();
        clients.spawn(async move {
            let mut link = Link::connect(&addr).await.unwrap();
            for n in 0..20 {
                let text = format!("client {client} message {n}");
                link.send(text.as_bytes()).await.unwrap();
                let answer = link.recv().await.unwrap();
                assert_eq!(answer, LinkEvent::Message(text.to_uppercase().into_bytes()), "{addr}");
            }
            link.close().await.unwrap();
        });
    }
    let ended = bounded("every client", async {
        let mut ended = 0;
        while let Some(result) = clients.join_next().await {
            result.unwrap();
            ended += 1;
        }
        ended
    })
    .await;
    assert_eq!(ended, 30);
    assert_eq!(handle.stats().accepted, 30);
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_sessions_with_the_right_key_only() {
    fn keyed(byte: u8) -> LinkConfig {
        LinkConfig::new().handshake_timeout(Duration::from_secs(5)).psk(Psk::new([byte; 32]))
    }
    let (handle, addrs) = tokio_server(ServerConfig::new().max_clients(1).link(keyed(7))).await;
    for addr in &addrs {
        // The async link and the blocking one, with the server's key.
        let mut link = bounded("connect", Link::connect_with(addr, &keyed(7))).await.unwrap();
        assert!(link.is_keyed());
        assert_eq!(link.keyed_suite(), Some(framelink_std::Suite::Aes256Gcm), "desktops agree on AES-GCM");
        link.send(b"sealed").await.unwrap();
        assert_eq!(bounded("echo", link.recv()).await.unwrap(), LinkEvent::Message(b"SEALED".to_vec()));
        // A second client at the limit of 1 is refused, keyed as it is.
        let busy = bounded("connect", Link::connect_with(addr, &keyed(7))).await.unwrap_err();
        assert!(
            matches!(busy, LinkError::Refused(CloseReason::PeerError { code: ErrorCode::Busy, .. })),
            "{busy}"
        );
        bounded("close", link.close()).await.unwrap();
        every_slot_free(&handle).await;
        let blocking = addr.clone();
        let echoed = tokio::task::spawn_blocking(move || {
            // An Ascon-only client (as the firmware is) gets Ascon from the same server.
            let mut link = framelink_std::Link::connect_with(&blocking, &keyed(7).ascon_only(true)).unwrap();
            assert_eq!(link.keyed_suite(), Some(framelink_std::Suite::Ascon128));
            link.send(b"sealed too").unwrap();
            let echoed = link.next_event(Some(WAIT)).unwrap();
            link.close().unwrap();
            echoed
        })
        .await
        .unwrap();
        assert_eq!(echoed, Some(LinkEvent::Message(b"SEALED TOO".to_vec())));
        every_slot_free(&handle).await;
        // Another key, or none, is refused at the handshake.
        for config in [keyed(8), LinkConfig::new().handshake_timeout(Duration::from_secs(5))] {
            let error = bounded("connect", Link::connect_with(addr, &config)).await.unwrap_err();
            assert!(matches!(error, LinkError::Refused(_)), "{addr}: {error}");
        }
    }
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_with_its_key_file_reaches_a_keyed_tokio_server() {
    let dir = TempDir::new("tokio-keyed");
    let path = dir.path("key");
    let path = path.to_str().unwrap().to_owned();
    run(&["keygen", &path]).ok();
    let psk = Psk::from_hex(std::fs::read_to_string(&path).unwrap().trim().as_bytes()).unwrap();
    let (handle, addrs) = tokio_server(ServerConfig::new().link(LinkConfig::new().psk(psk))).await;
    for addr in &addrs {
        let (addr, path) = (addr.to_string(), path.clone());
        let info = tokio::task::spawn_blocking(move || {
            run(&["info", &addr, "--psk-file", &path, "--json"]).ok().json()
        })
        .await
        .unwrap();
        assert_eq!(info["name"], "tokio test", "{info}");
    }
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn a_handler_that_panics_ends_its_client_only() {
    let server =
        Server::bind(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"], ServerConfig::new()).await.unwrap();
    let addrs = server.local_addrs().to_vec();
    let handle = server.serve(|mut link: Link| async move {
        while let Ok(Some(message)) = link.recv_message().await {
            assert_ne!(message, b"panic", "the handler panics, as asked");
            let _ = link.send(&message).await;
        }
    });
    for addr in &addrs {
        let mut doomed = bounded("connect", Link::connect(addr)).await.unwrap();
        let mut other = bounded("connect", Link::connect(addr)).await.unwrap();
        doomed.send(b"panic").await.unwrap();
        // TCP: the connection drops with the task; UDP: nothing answers any more, and a short
        // wait shows it.
        let end = tokio::time::timeout(Duration::from_millis(500), doomed.recv()).await;
        assert!(!matches!(end, Ok(Ok(LinkEvent::Message(_)))), "{end:?}");
        other.send(b"still served").await.unwrap();
        assert_eq!(
            bounded("echo", other.recv()).await.unwrap(),
            LinkEvent::Message(b"still served".to_vec())
        );
        bounded("close", other.close()).await.unwrap();
    }
    // Both panicked clients' slots came back.
    every_slot_free(&handle).await;
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_cross_full_sockets_both_ways() {
    // 8 MiB each way, more than the sockets hold: both sides' writes meet full sockets.
    let config = ServerConfig::new().max_message(16 << 20);
    let (handle, addrs) = tokio_server(config).await;
    let message: Vec<u8> = (0..8u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    for addr in [&addrs[0], &addrs[2]] {
        let mut link = bounded("connect", Link::connect_with(addr, &LinkConfig::new().max_message(16 << 20)))
            .await
            .unwrap();
        bounded("send", link.send(&message)).await.unwrap();
        match bounded("the echo", link.recv()).await.unwrap() {
            LinkEvent::Message(echo) => {
                assert!(echo == message.to_ascii_uppercase(), "{addr}: {} bytes", echo.len())
            }
            other => panic!("{addr}: {other:?}"),
        }
        bounded("close", link.close()).await.unwrap();
    }
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn fed_messages_wait_for_a_batch_and_all_arrive_in_order() {
    let (handle, addrs) = tokio_server(ServerConfig::new()).await;
    let mut link = bounded("connect", Link::connect(&addrs[0])).await.unwrap();
    let fed: Vec<Vec<u8>> =
        (0..10u8).map(|i| vec![b'a' + i; 1000]).chain([vec![b'z'; 130_000], b"last".to_vec()]).collect();
    for message in &fed[..10] {
        bounded("feed", link.feed(message)).await.unwrap();
    }
    assert_eq!(link.stats().bytes_sent, 0, "written before a batch (128 KiB) was queued");
    bounded("feed", link.feed(&fed[10])).await.unwrap();
    let sent = link.stats().bytes_sent;
    assert!(sent >= 140_000, "a full batch was not written: {sent} bytes");
    bounded("feed", link.feed(&fed[11])).await.unwrap();
    assert_eq!(link.stats().bytes_sent, sent, "the short one waits for the next call");
    for message in &fed {
        match bounded("the echo", link.recv()).await.unwrap() {
            LinkEvent::Message(echo) => assert!(echo == message.to_ascii_uppercase(), "{} bytes", echo.len()),
            other => panic!("{other:?}"),
        }
    }
    bounded("close", link.close()).await.unwrap();
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn a_full_server_refuses_the_handshake() {
    let (handle, addrs) = tokio_server(ServerConfig::new().max_clients(1)).await;
    for addr in [&addrs[0], &addrs[1]] {
        let mut first = bounded("connect", Link::connect(addr)).await.unwrap();
        let error = bounded("connect", Link::connect(addr)).await.unwrap_err();
        let busy = CloseReason::PeerError { code: ErrorCode::Busy, detail: 1 };
        assert!(matches!(error, LinkError::Refused(reason) if reason == busy), "{error}");
        // The first client is still served.
        first.send(b"still here").await.unwrap();
        assert_eq!(bounded("echo", first.recv()).await.unwrap(), LinkEvent::Message(b"STILL HERE".to_vec()));
        bounded("close", first.close()).await.unwrap();
        // Its slot is free again once its task has ended.
        every_slot_free(&handle).await;
    }
    assert_eq!(handle.stats().refused_busy, 2);
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn the_server_drops_silent_clients_at_its_timeouts() {
    let config = ServerConfig::new()
        .handshake_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_millis(600));
    let (handle, addrs) = tokio_server(config).await;
    // A TCP connection that never says HELLO is dropped at the handshake timeout.
    let mut silent = tokio::net::TcpStream::connect((addrs[0].host.as_str(), addrs[0].port)).await.unwrap();
    let mut byte = [0u8; 1];
    let read = bounded("the server's end", tokio::io::AsyncReadExt::read(&mut silent, &mut byte)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // A client that stops answering is dropped at the idle timeout: its keepalives go
    // unanswered while it sleeps in a blocking call of its own.
    let addr = addrs[1].clone();
    let (done, silent_until) = std::sync::mpsc::channel::<()>();
    let client = tokio::task::spawn_blocking(move || {
        let _link = framelink_std::Link::connect(&addr).unwrap();
        let _ = silent_until.recv_timeout(WAIT);
    });
    until_stats(&handle, "an idle timeout", |stats| stats.idle_timeouts == 1).await;
    drop(done);
    client.await.unwrap();
    let stats = handle.stats();
    assert_eq!((stats.handshake_timeouts, stats.idle_timeouts), (1, 1), "{stats:?}");
    bounded("shutdown", handle.shutdown()).await;
}

#[tokio::test]
async fn shutdown_closes_every_session_gracefully() {
    let (handle, addrs) = tokio_server(ServerConfig::new()).await;
    let mut links = Vec::new();
    for addr in &addrs {
        links.push(bounded("connect", Link::connect(addr)).await.unwrap());
    }
    let shutdown = tokio::spawn(handle.shutdown());
    for link in &mut links {
        assert_eq!(bounded("the close", link.recv()).await.unwrap(), LinkEvent::Closed(CloseReason::Peer));
        assert!(matches!(link.recv().await, Err(LinkError::Closed(CloseReason::Peer))));
    }
    bounded("shutdown", shutdown).await.unwrap();
    // Nobody listens any more.
    let error = bounded("connect", Link::connect(&addrs[0])).await.unwrap_err();
    assert!(
        matches!(&error, LinkError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error}"
    );
}

/// Over a pty pair: one session after another on the tokio server's serial port, the blocking
/// link's then the async link's, and again once the port went away and came back; shutdown
/// closes the live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokio_server_serves_a_serial_port_session_after_session() {
    let missing = Server::bind(&["serial:///dev/framelink-no-such-port"], ServerConfig::new()).await;
    let error = missing.unwrap_err();
    assert!(error.to_string().contains("/dev/framelink-no-such-port"), "{error}");
    if !socat::available("the_tokio_server_serves_a_serial_port_session_after_session") {
        return;
    }
    let dir = TempDir::new("tokio-serial-server");
    let mut pair = PtyPair::new(&dir.0, "line");
    let config = ServerConfig::new().responder("tokio serial", "0.0.1");
    let server = Server::bind(&[pair.addr_a()], config).await.unwrap();
    assert_eq!(server.local_addrs(), [pair.addr_a().parse::<Addr>().unwrap()]);
    let handle = server.serve(|mut link: Link| async move {
        assert_eq!(link.transport(), framelink_tokio::Transport::Serial);
        while let Ok(Some(message)) = link.recv_message().await {
            if link.send(&message.to_ascii_uppercase()).await.is_err() {
                return;
            }
        }
    });
    // The blocking link, on a thread of its own.
    let addr = pair.addr_b();
    let echoed = tokio::task::spawn_blocking(move || {
        let mut link = framelink_std::Link::connect(&addr).unwrap();
        link.send(b"first session").unwrap();
        let echoed = link.next_event(Some(WAIT)).unwrap();
        link.close().unwrap();
        echoed
    })
    .await
    .unwrap();
    assert_eq!(echoed, Some(LinkEvent::Message(b"FIRST SESSION".to_vec())));
    until_stats(&handle, "the first session ended", |stats| stats.accepted == 1 && stats.clients == 0).await;
    // The async link, after it on the same port.
    let mut link = bounded("connect", Link::connect(pair.addr_b())).await.unwrap();
    link.send(b"second session").await.unwrap();
    assert_eq!(
        bounded("the echo", link.recv()).await.unwrap(),
        LinkEvent::Message(b"SECOND SESSION".to_vec())
    );
    link.send(&request(ServiceMessage::Info)).await.unwrap();
    match ServiceMessage::parse(&reply(&mut link).await).unwrap() {
        Some(ServiceMessage::InfoReply(info)) => assert_eq!(info.name, "tokio serial"),
        other => panic!("not an INFO reply: {other:?}"),
    }
    bounded("close", link.close()).await.unwrap();
    until_stats(&handle, "the second session ended", |stats| stats.accepted == 2 && stats.clients == 0).await;
    // The port goes away (both ptys hang up), then comes back at the same path.
    pair.unplug();
    for path in [&pair.a, &pair.b] {
        let _ = std::fs::remove_file(path);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pair = PtyPair::new(&dir.0, "line");
    let addr = pair.addr_b();
    // The client says when its session is live: the server's counters cannot tell, since the
    // port hanging up also starts (and fails) a session there.
    let (answered, live_session) = tokio::sync::oneshot::channel();
    let live = tokio::task::spawn_blocking(move || {
        let mut link = framelink_std::Link::connect(&addr).unwrap();
        link.send(b"third session").unwrap();
        let echoed = link.next_event(Some(WAIT)).unwrap();
        let _ = answered.send(());
        (echoed, link.next_event(Some(WAIT)).unwrap())
    });
    bounded("the third session", live_session).await.unwrap();
    until_stats(&handle, "the third session", |stats| stats.clients == 1).await;
    // Shutdown closes the live session gracefully and ends the port's task.
    bounded("shutdown", handle.shutdown()).await;
    let (echoed, end) = bounded("the blocking link", live).await.unwrap();
    assert_eq!(echoed, Some(LinkEvent::Message(b"THIRD SESSION".to_vec())));
    assert_eq!(end, Some(LinkEvent::Closed(CloseReason::Peer)));
}

#[test]
fn the_examples_run() {
    // A server and a client in one program, over TCP and UDP.
    for listen in ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"] {
        let ran = run_example("tokio_echo", &[listen], None);
        assert!(ran.status.success(), "{listen}: {}", ran.stderr);
        let scheme = listen.split_once("://").unwrap().0;
        assert!(ran.stderr.contains(&format!("listening on {scheme}://127.0.0.1:")), "{}", ran.stderr);
        assert!(ran.stderr.contains("disconnected: closed"), "{}", ran.stderr);
    }
    // framelink serve on tokio: the tool's info and ping against it, then Ctrl-C.
    let mut serve = Running::spawn(
        std::process::Command::new(example("tokio_serve")).args(["tcp://127.0.0.1:0", "udp://127.0.0.1:0"]),
    );
    let addrs = serve.listening(2);
    for addr in &addrs {
        let info = run(&["info", addr, "--json"]).ok().json();
        assert_eq!(info["name"], "framelink-tokio serve", "{info}");
        run(&["ping", addr, "-c", "2", "-i", "0"]).ok();
    }
    serve.interrupt();
    assert_eq!(serve.wait(WAIT), Some(0), "{:?}", serve.stderr.snapshot());
    // The exit can come before the reader of its stderr has taken the last lines.
    let lines = serve
        .stderr
        .wait_for("the stop", |lines, ended| ended || lines.iter().any(|l| l.starts_with("stopping")));
    assert!(lines.iter().any(|l| l.starts_with("stopping")), "{lines:?}");
}
