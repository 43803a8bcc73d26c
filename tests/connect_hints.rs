//! The connect path of `Link`: a cancel token ends the TCP connect and the handshake at once,
//! and a handshake without an answer says which framing the peer's bytes looked like, both ways
//! (`tcp://` against a COBS server, `tcp+cobs://` against a length-delimited peer), or that none
//! came. Loopback only; every wait is bounded by a short handshake timeout.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use framelink::core::framing::LengthDelimited;
use framelink::std::{
    CancelToken, Framing, Link, LinkConfig, LinkError, PeerInfo, Reply, Server, ServerConfig, Transport,
};

/// The handshake timeout of these tests: short, since each waits it out.
const HANDSHAKE: Duration = Duration::from_millis(500);

fn config() -> LinkConfig {
    LinkConfig::new().handshake_timeout(HANDSHAKE)
}

/// A peer that takes TCP connections, writes `answer` to each, and reads what comes until the
/// client goes away (at most 10 s).
fn raw_peer(answer: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(&answer);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut sink = [0u8; 4096];
            while matches!(stream.read(&mut sink), Ok(1..)) {}
        }
    });
    addr.to_string()
}

#[test]
fn tcp_against_a_cobs_server_says_cobs() {
    let server = Server::bind(&["tcp+cobs://127.0.0.1:0"], ServerConfig::new()).unwrap();
    let cobs = server.local_addrs()[0].clone();
    let handle = server.spawn(|_: &PeerInfo, _: &[u8], _: &mut Reply<'_>| {}).unwrap();
    let plain = format!("tcp://{}:{}", cobs.host, cobs.port);
    let error = Link::connect_with(plain.as_str(), &config()).unwrap_err();
    match &error {
        LinkError::NoAnswer {
            transport: Transport::Tcp,
            bytes_received,
            looks_like: Some(Framing::Cobs),
        } => {
            assert!(*bytes_received > 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("like COBS frames: try tcp+cobs://"), "{error}");
    // The right framing works.
    Link::connect_with(&cobs, &config()).unwrap().close().unwrap();
    handle.shutdown();
}

#[test]
fn cobs_against_a_length_delimited_peer_says_length_delimited() {
    // A peer that answers in the length-delimited framing: a prefix, then a packet's worth.
    let mut answer = LengthDelimited::prefix(40).to_vec();
    answer.extend_from_slice(&[0x5a; 40]);
    let addr = format!("tcp+cobs://{}", raw_peer(answer));
    let error = Link::connect_with(addr.as_str(), &config()).unwrap_err();
    assert!(
        matches!(
            error,
            LinkError::NoAnswer {
                transport: Transport::TcpCobs,
                bytes_received: 44,
                looks_like: Some(Framing::LengthDelimited)
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("look like length-delimited frames: try tcp://"), "{error}");
}

#[test]
fn other_bytes_or_none_name_no_framing() {
    let addr = format!("tcp://{}", raw_peer(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()));
    let error = Link::connect_with(addr.as_str(), &config()).unwrap_err();
    assert!(matches!(error, LinkError::NoAnswer { bytes_received: 21, looks_like: None, .. }), "{error:?}");
    assert!(error.to_string().contains("21 bytes that are no framelink frames"), "{error}");
    let addr = format!("tcp+cobs://{}", raw_peer(Vec::new()));
    let error = Link::connect_with(addr.as_str(), &config()).unwrap_err();
    assert!(matches!(error, LinkError::NoAnswer { bytes_received: 0, looks_like: None, .. }), "{error:?}");
    assert!(error.to_string().contains("try tcp://"), "{error}");
}

#[test]
fn a_cancelled_token_ends_the_handshake_at_once() {
    let addr = format!("tcp://{}", raw_peer(Vec::new()));
    let token = CancelToken::new();
    let canceller = token.clone();
    let config = LinkConfig::new().handshake_timeout(Duration::from_secs(60)).cancel_token(token);
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        canceller.cancel();
    });
    let started = Instant::now();
    let error = Link::connect_with(addr.as_str(), &config).unwrap_err();
    assert!(matches!(error, LinkError::Interrupted), "{error:?}");
    assert!(error.is_recoverable());
    // Far below the 60 s handshake timeout, with slack for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn a_cancelled_token_ends_waits_and_the_link_goes_on_once_reset() {
    let server = Server::bind(&["tcp://127.0.0.1:0"], ServerConfig::new()).unwrap();
    let addr = server.local_addrs()[0].clone();
    let handle = server.spawn(|_: &PeerInfo, m: &[u8], reply: &mut Reply<'_>| {
        let _ = reply.send(m);
    });
    let handle = handle.unwrap();
    let token = CancelToken::new();
    let mut link = Link::connect_with(&addr, &LinkConfig::new().cancel_token(token.clone())).unwrap();
    token.cancel();
    // No timeout: only the token ends this wait.
    assert!(matches!(link.next_event(None), Err(LinkError::Interrupted)));
    assert!(matches!(link.flush(None), Ok(()) | Err(LinkError::Interrupted)));
    token.reset();
    link.send(b"again").unwrap();
    let echoed = link.next_event(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(echoed, Some(framelink::std::LinkEvent::Message(b"again".to_vec())));
    link.close().unwrap();
    handle.shutdown();
}

#[test]
fn a_token_cancelled_before_the_connect_stops_it_before_any_packet() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let token = CancelToken::new();
    token.cancel();
    let config = LinkConfig::new().cancel_token(token);
    for scheme in ["tcp", "udp", "tcp+cobs"] {
        let addr = format!("{scheme}://{}", silent.local_addr().unwrap());
        let error = Link::connect_with(addr.as_str(), &config).unwrap_err();
        assert!(matches!(error, LinkError::Interrupted), "{addr}: {error:?}");
    }
}
