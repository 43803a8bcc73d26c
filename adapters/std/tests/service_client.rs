//! `ServiceClient` against a `Server` answering the test service, over loopback TCP and UDP:
//! every request, transfers both ways, application messages in between, timeouts and the
//! cancel flag. Every wait is bounded by the client's timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use framelink_std::{
    Addr, CancelToken, Link, LinkError, LinkEvent, PeerInfo, Reply, RequestError, Server, ServerConfig,
    ServerHandle, ServiceClient,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A server on TCP and UDP that answers the test service when `responder`, and echoes every
/// other message.
fn serve(responder: bool) -> ServerHandle {
    let config = ServerConfig::new();
    let config = if responder { config.responder("test server", "9.9") } else { config };
    let addrs: Vec<Addr> =
        ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"].iter().map(|a| a.parse().unwrap()).collect();
    Server::bind(&addrs, config)
        .unwrap()
        .spawn(|_: &PeerInfo, message: &[u8], reply: &mut Reply<'_>| {
            let _ = reply.send(message);
        })
        .unwrap()
}

fn addr(handle: &ServerHandle, scheme: &str) -> Addr {
    handle.local_addrs().iter().find(|a| a.transport.scheme() == scheme).unwrap().clone()
}

#[test]
fn every_request_is_answered_on_tcp_and_udp() {
    let handle = serve(true);
    for scheme in ["tcp", "udp"] {
        let mut client = ServiceClient::connect(addr(&handle, scheme)).unwrap().with_timeout(TIMEOUT);
        let info = client.info().unwrap();
        assert_eq!((info.name.as_str(), info.software.as_str()), ("test server", "9.9"), "{scheme}");
        assert!(info.max_message > 0);
        client.echo(b"hello").unwrap();
        client.ping(1000).unwrap();

        let received = client.source(300_000).unwrap();
        assert_eq!(received.bytes, 300_000, "{scheme}");
        let mut seen = 0;
        let timed = client.source_with(Some(50_000), Some(TIMEOUT), |data| seen += data.len()).unwrap();
        assert_eq!((timed.bytes, seen), (50_000, 50_000));

        let sent = client.sink(123_456).unwrap();
        assert_eq!(sent.bytes, 123_456);
        let stats = client.stats().unwrap();
        assert_eq!(stats.sink_bytes, 123_456, "{scheme}");
        assert_eq!(stats.source_bytes, 350_000, "{scheme}");
        assert_eq!(stats.echoes, 2, "{scheme}");
        assert!(stats.server.is_some());
        client.close().unwrap();
    }
    handle.shutdown();
}

#[test]
fn timed_transfers_end_on_time_and_application_messages_pass_between_requests() {
    let handle = serve(true);
    let mut client = ServiceClient::connect(addr(&handle, "tcp")).unwrap().with_timeout(TIMEOUT);
    let transfer = client.source_for(Duration::from_millis(200)).unwrap();
    assert!(transfer.bytes > 0 && transfer.bits_per_second() > 0.0);
    let sunk = client.sink_for(Duration::from_millis(200)).unwrap();
    assert!(sunk.bytes > 0);
    assert_eq!(client.stats().unwrap().sink_bytes, sunk.bytes);

    let link: &mut Link = client.link_mut();
    link.send(b"plain text").unwrap();
    assert_eq!(link.next_event(Some(TIMEOUT)).unwrap(), Some(LinkEvent::Message(b"plain text".to_vec())));
    client.echo(b"after").unwrap();
    client.close().unwrap();
    handle.shutdown();
}

#[test]
fn a_peer_without_a_responder_times_out_and_a_cancel_token_ends_the_wait() {
    // The server echoes every message back, service requests included: an ECHO request comes
    // back as a request, which is no reply.
    let handle = serve(false);
    let mut client =
        ServiceClient::connect(addr(&handle, "tcp")).unwrap().with_timeout(Duration::from_millis(300));
    match client.info() {
        Err(RequestError::Reply(error)) => assert!(error.to_string().contains("service request"), "{error}"),
        other => panic!("expected an unexpected request, got {other:?}"),
    }
    client.close().unwrap();

    // A server whose handler says nothing: INFO waits, until the timeout or the flag.
    let quiet = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new())
        .unwrap()
        .spawn(|_: &PeerInfo, _: &[u8], _: &mut Reply<'_>| {})
        .unwrap();
    let target = quiet.local_addrs()[0].clone();
    let mut client = ServiceClient::connect(&target).unwrap().with_timeout(Duration::from_millis(300));
    assert!(matches!(client.stats(), Err(RequestError::TimedOut)));
    let token = CancelToken::new();
    let mut client = client.with_timeout(TIMEOUT);
    client.link_mut().set_cancel_token(Some(token.clone()));
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    assert!(matches!(client.info(), Err(RequestError::Link(LinkError::Interrupted))));
    canceller.join().unwrap();
    client.link_mut().set_cancel_token(None);
    // A flag of the client's own ends requests, and leaves the link to close gracefully.
    let flag = Arc::new(AtomicBool::new(false));
    let mut client = client.with_cancel(flag.clone());
    let setter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::Relaxed);
    });
    assert!(matches!(client.stats(), Err(RequestError::Link(LinkError::Interrupted))));
    setter.join().unwrap();
    client.close().unwrap();
    quiet.shutdown();
    handle.shutdown();
}

#[cfg(feature = "serde")]
#[test]
fn replies_serialize_to_json() {
    let handle = serve(true);
    let mut client = ServiceClient::connect(addr(&handle, "tcp")).unwrap().with_timeout(TIMEOUT);
    let info = serde_json::to_value(client.info().unwrap()).unwrap();
    assert_eq!(info["name"], "test server");
    let stats = serde_json::to_value(client.stats().unwrap()).unwrap();
    assert_eq!(stats["echoes"], 0);
    assert!(stats["server"]["accepted"].as_u64().unwrap() >= 1);
    client.close().unwrap();
    handle.shutdown();
}
