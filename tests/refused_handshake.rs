//! A client that refuses the server's HELLO-ACK says why with an ERROR before it reports the
//! refusal (PROTOCOL.md 10.1), over TCP and over UDP (tagged with its session id). The server is
//! a plain socket on loopback that answers HELLO with a HELLO-ACK announcing a window of 0.
//! Every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::Duration;

use framelink::core::framing::datagram::{TAG_LEN, session_tag};
use framelink::core::framing::{Datagram, Encoder, LengthDelimited};
use framelink::core::session::CloseReason;
use framelink::core::wire::{ErrorCode, ErrorPayload, HelloPayload, PacketType, Repr};
use framelink::std::{Addr, Link, LinkError};

const WAIT: Duration = Duration::from_secs(10);

/// The HELLO-ACK a broken server answers `hello` with: it echoes the session id, but its
/// window of 0 means it could never be sent DATA.
fn zero_window_hello_ack(hello: &[u8]) -> (u32, Vec<u8>) {
    let repr = Repr::parse(hello).expect("the client's HELLO parses");
    assert_eq!(repr.kind, PacketType::Hello);
    let hello = HelloPayload::parse(repr.payload).unwrap();
    let answer = HelloPayload {
        version: 1,
        supports: hello.supports,
        requires: hello.requires,
        max_payload: 1024,
        window: 0,
        session_id: hello.session_id,
        max_message: 65536,
        credit: 65536,
        cookie: None,
    };
    let mut payload = [0u8; HelloPayload::LEN];
    answer.emit(&mut payload).unwrap();
    let repr = Repr::control(PacketType::HelloAck, &payload);
    let mut packet = vec![0u8; repr.buffer_len()];
    let len = repr.emit(&mut packet).unwrap();
    packet.truncate(len);
    (hello.session_id, packet)
}

/// The code and detail of an ERROR packet.
fn error_of(packet: &[u8]) -> (ErrorCode, u32) {
    let repr = Repr::parse(packet).expect("the client's answer parses");
    assert_eq!(repr.kind, PacketType::Error, "the client answers with ERROR");
    let error = ErrorPayload::parse(repr.payload).unwrap();
    (error.code, error.detail)
}

const REFUSAL: (ErrorCode, u32) = (ErrorCode::ProtocolViolation, 0x02);

fn assert_refused(result: Result<Link, LinkError>) {
    let (code, detail) = REFUSAL;
    match result {
        Err(LinkError::Refused(reason)) => assert_eq!(reason, CloseReason::LocalError { code, detail }),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a window of 0 was accepted"),
    }
}

#[test]
fn over_tcp_the_refused_hello_ack_is_answered_with_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let read_packet = |stream: &mut std::net::TcpStream| {
            let mut prefix = [0u8; 4];
            stream.read_exact(&mut prefix).unwrap();
            let mut packet = vec![0u8; u32::from_le_bytes(prefix) as usize];
            stream.read_exact(&mut packet).unwrap();
            packet
        };
        let hello = read_packet(&mut stream);
        let (_, answer) = zero_window_hello_ack(&hello);
        let mut frame = vec![0u8; answer.len() + 4];
        let len = LengthDelimited::encode(&answer, &mut frame).unwrap();
        stream.write_all(&frame[..len]).unwrap();
        error_of(&read_packet(&mut stream))
    });
    let addr: Addr = format!("tcp://127.0.0.1:{port}").parse().unwrap();
    assert_refused(Link::connect(&addr));
    assert_eq!(server.join().unwrap(), REFUSAL);
}

#[test]
fn over_udp_the_refused_hello_ack_is_answered_with_a_tagged_error() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let (len, client) = socket.recv_from(&mut buf).unwrap();
        let (session_id, answer) = zero_window_hello_ack(&buf[TAG_LEN..len]);
        assert_eq!(session_tag(&buf[..len]), Some(session_id));
        let mut datagram = vec![0u8; answer.len() + TAG_LEN];
        let len = Datagram::encode_tagged(session_id, &answer, &mut datagram).unwrap();
        socket.send_to(&datagram[..len], client).unwrap();
        // The client may have sent its HELLO again meanwhile (retransmission): skip those.
        for _ in 0..10 {
            let (len, _) = socket.recv_from(&mut buf).unwrap();
            let packet = &buf[TAG_LEN..len];
            if Repr::parse(packet).is_ok_and(|repr| repr.kind == PacketType::Hello) {
                continue;
            }
            assert_eq!(session_tag(&buf[..len]), Some(session_id), "the ERROR carries the session tag");
            return error_of(packet);
        }
        panic!("no answer but HELLOs");
    });
    let addr: Addr = format!("udp://127.0.0.1:{port}").parse().unwrap();
    assert_refused(Link::connect(&addr));
    assert_eq!(server.join().unwrap(), REFUSAL);
}
