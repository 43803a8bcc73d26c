//! Sessions over the datagram framing: the session tag on every datagram, packets of other
//! sessions dropped, and the RETRY cookie exchange of PROTOCOL.md 10.1, all in memory.

// Test binaries built with `defmt` (and a DEFMT_LOG level) need a global logger to link.
#[cfg(feature = "defmt")]
use framelink_defmt_sink as _;

use framelink_core::Instant;
use framelink_core::connection::Connection;
use framelink_core::framing::datagram::{TAG_LEN, session_tag};
use framelink_core::framing::{Datagram, DatagramDecoder, Encoder};
use framelink_core::session::{CloseReason, Config, Event, Session, State};
use framelink_core::wire::{DecodeError, HelloPayload, PacketType, Repr, RetryPayload};

type Udp = Connection<DatagramDecoder, Vec<u8>>;

const T0: Instant = Instant::ZERO;
const ID: u32 = 0x5EED_CAFE;

fn config() -> Config {
    Config::new().max_payload(512).retransmit(true)
}

fn client() -> Udp {
    let session = Session::client(config(), ID, vec![0; 4096], vec![0; 4096], T0);
    Connection::new(session, DatagramDecoder::new(600), vec![0; 600])
}

fn server() -> Udp {
    let session = Session::server(config(), vec![0; 4096], vec![0; 4096], T0);
    Connection::new(session, DatagramDecoder::new(600), vec![0; 600])
}

/// Every datagram `from` has to send now.
fn datagrams(from: &mut Udp, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 700];
    while let Ok(n @ 1..) = from.poll_datagram(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

fn kind(datagram: &[u8]) -> PacketType {
    Repr::parse(&datagram[TAG_LEN..]).unwrap().kind
}

/// A datagram of `repr`, tagged `tag`.
fn forged(tag: u32, repr: &Repr<'_>) -> Vec<u8> {
    let (mut packet, mut out) = ([0u8; 128], [0u8; 132]);
    let n = repr.emit(&mut packet).unwrap();
    let n = Datagram::encode_tagged(tag, &packet[..n], &mut out).unwrap();
    out[..n].to_vec()
}

fn connected() -> (Udp, Udp) {
    let (mut c, mut s) = (client(), server());
    for d in datagrams(&mut c, T0) {
        s.handle_bytes(T0, &d);
    }
    for d in datagrams(&mut s, T0) {
        c.handle_bytes(T0, &d);
    }
    assert_eq!(c.session_mut().poll_event(), Some(Event::Connected));
    assert_eq!(s.session_mut().poll_event(), Some(Event::Connected));
    (c, s)
}

#[test]
fn every_datagram_carries_the_session_id() {
    let (mut c, mut s) = connected();
    c.session_mut().send(T0, b"hi").unwrap();
    s.session_mut().send(T0, b"there").unwrap();
    let both = [datagrams(&mut c, T0), datagrams(&mut s, T0)];
    assert!(both.iter().all(|d| !d.is_empty()));
    for d in both.iter().flatten() {
        assert_eq!(session_tag(d), Some(ID));
    }
}

#[test]
fn packets_tagged_for_another_session_reach_no_session() {
    let (mut c, mut s) = connected();
    // A spoofer who does not know the id: CLOSE, ERROR, DATA, ACK, a new HELLO-ACK.
    let error = [0u8, 9, 0, 0, 0, 0];
    let spoofed = [
        forged(ID ^ 1, &Repr::control(PacketType::Close, &[])),
        forged(0, &Repr::control(PacketType::Error, &error)),
        forged(ID.wrapping_add(7), &Repr::data(framelink_core::wire::SeqNumber(0), None, false, b"evil")),
    ];
    for d in &spoofed {
        s.handle_bytes(T0, d);
        c.handle_bytes(T0, d);
    }
    assert_eq!((s.session().state(), c.session().state()), (State::Established, State::Established));
    assert_eq!(s.session_mut().poll_event(), None);
    assert_eq!(c.session_mut().poll_event(), None);
    assert_eq!(s.session().stats().decode_errors, 3);
    assert_eq!(c.session().stats().packets_received, 1, "only the HELLO-ACK");
    // The real ones still work.
    c.session_mut().send(T0, b"real").unwrap();
    for d in datagrams(&mut c, T0) {
        s.handle_bytes(T0, &d);
    }
    assert_eq!(s.session_mut().poll_event(), Some(Event::Message(b"real")));
    // A forged datagram is reported as what it is.
    let mut probe = server();
    probe.handle_bytes(T0, &forged(1, &Repr::control(PacketType::Hello, &[0; 22])));
    assert_eq!(
        DecodeError::ForeignSession { tag: 9 }.to_string(),
        "datagram for another session (0x00000009)"
    );
}

#[test]
fn a_retry_makes_the_client_send_its_hello_again_with_the_cookie() {
    let mut c = client();
    let first = datagrams(&mut c, T0);
    assert_eq!(first.len(), 1);
    let hello = Repr::parse(&first[0][TAG_LEN..]).unwrap();
    assert_eq!(HelloPayload::parse(hello.payload).unwrap().cookie, None);

    // The server answers with RETRY (tagged as the HELLO was); the client sends HELLO again.
    let cookie = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
    let retry = forged(ID, &Repr::control(PacketType::Retry, &RetryPayload { cookie }.cookie));
    assert!(retry.len() < first[0].len(), "a RETRY is smaller than the HELLO it answers");
    c.handle_bytes(T0, &retry);
    let again = datagrams(&mut c, T0);
    assert_eq!(again.len(), 1);
    assert_eq!(kind(&again[0]), PacketType::Hello);
    let hello = Repr::parse(&again[0][TAG_LEN..]).unwrap();
    assert_eq!(HelloPayload::parse(hello.payload).unwrap().cookie, Some(cookie));

    // The server takes the HELLO with its cookie: the session proceeds.
    let mut s = server();
    s.handle_bytes(T0, &again[0]);
    for d in datagrams(&mut s, T0) {
        c.handle_bytes(T0, &d);
    }
    assert_eq!(c.session_mut().poll_event(), Some(Event::Connected));
}

#[test]
fn a_client_follows_a_few_retries_only() {
    let mut c = client();
    let _ = datagrams(&mut c, T0);
    let mut hellos = 0;
    for i in 0..10u8 {
        c.handle_bytes(T0, &forged(ID, &Repr::control(PacketType::Retry, &[i; 8])));
        hellos += datagrams(&mut c, T0).len();
    }
    assert_eq!(hellos, 4);
    assert_eq!(c.session().state(), State::HelloSent);
    // A RETRY of another session, or once connected, changes nothing.
    let (mut c, _) = connected();
    c.handle_bytes(T0, &forged(ID, &Repr::control(PacketType::Retry, &[0; 8])));
    assert_eq!(c.session().state(), State::Established);
    assert!(datagrams(&mut c, T0).is_empty());
    let _ = CloseReason::Local;
}
