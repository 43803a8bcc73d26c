//! Decoding that lends a whole message from the input instead of copying it.

use core::ops::Range;

use super::Connection;
use crate::Instant;
use crate::buffer::Buffer;
use crate::framing::Framing;

/// What [`Connection::handle_bytes_lending`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a lent message is delivered only through it, and the rest of the input must be fed again"]
pub struct Lent {
    /// Input bytes consumed; feed the rest again once the message is taken.
    pub consumed: usize,
    /// Where in the input the message lent lies, if one was: it is delivered (no
    /// [`Event::Message`](crate::session::Event::Message) follows for it).
    pub message: Option<Range<usize>>,
}

impl<F: Framing, B: Buffer, const W: usize> Connection<F, B, W> {
    /// Like [`handle_bytes`](Self::handle_bytes), but a DATA packet whose frame lies whole in
    /// `bytes` and that carries a whole message the application takes next (see
    /// [`Session::handle_packet_lent`](crate::session::Session::handle_packet_lent)) is not
    /// copied into the receive buffer: decoding stops after it, and [`Lent::message`] says
    /// where the message lies in `bytes`. Hand it to the application, then feed
    /// `bytes[consumed..]` again (here or to `handle_bytes`) before any new input.
    ///
    /// Decoding also stops after a packet that queued an event (a message that came in
    /// pieces, or one copied because its frame was split across inputs): take the events
    /// ([`next_event`](Self::next_event)) until [`is_ready`](Self::is_ready) is false, then
    /// feed the rest here again, so that the messages after it may be lent too.
    ///
    /// ```
    /// use framelink_core::connection::Connection;
    /// use framelink_core::framing::LengthDelimitedDecoder;
    /// use framelink_core::session::{Config, Event, Session};
    /// use framelink_core::Instant;
    ///
    /// type Tcp = Connection<LengthDelimitedDecoder<1024, Vec<u8>>, Vec<u8>>;
    /// let now = Instant::ZERO;
    /// let session = |client| {
    ///     let (tx, rx) = (vec![0; 4096], vec![0; 4096]);
    ///     if client { Session::client(Config::new(), 1, tx, rx, now) } else { Session::server(Config::new(), tx, rx, now) }
    /// };
    /// let mut client = Tcp::new(session(true), LengthDelimitedDecoder::with_buffer(Vec::new()), Vec::new());
    /// let mut server = Tcp::new(session(false), LengthDelimitedDecoder::with_buffer(Vec::new()), Vec::new());
    /// let mut wire = vec![0u8; 8192];
    /// # let n = client.poll_transmit(now, &mut wire)?;
    /// # server.handle_bytes(now, &wire[..n]);
    /// # let n = server.poll_transmit(now, &mut wire)?;
    /// # client.handle_bytes(now, &wire[..n]);
    /// # assert_eq!(client.next_event(), Some(Ok(Event::Connected)));
    /// # assert_eq!(server.next_event(), Some(Ok(Event::Connected)));
    /// // After the handshake: two messages in one read.
    /// client.session_mut().send(now, b"first")?;
    /// client.session_mut().send(now, b"second")?;
    /// let n = client.poll_transmit(now, &mut wire)?;
    /// let mut input = &wire[..n];
    /// let mut got = Vec::new();
    /// while !input.is_empty() {
    ///     let lent = server.handle_bytes_lending(now, input);
    ///     if let Some(message) = lent.message {
    ///         got.push(input[message].to_vec());
    ///     }
    ///     input = &input[lent.consumed..];
    /// }
    /// assert_eq!(got, [&b"first"[..], b"second"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_bytes_lending(&mut self, now: Instant, bytes: &[u8]) -> Lent {
        self.feed::<true>(now, bytes)
    }
}

/// Where `inner` lies in `outer`, if it is part of it (compared by address).
pub(super) fn place_in(outer: &[u8], inner: &[u8]) -> Option<Range<usize>> {
    let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
    let end = start.checked_add(inner.len())?;
    (end <= outer.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::place_in;
    use crate::Instant;
    use crate::connection::Connection;
    use crate::framing::LengthDelimitedDecoder;
    use crate::session::{Config, Event, Session};

    type Tcp = Connection<LengthDelimitedDecoder<1024, Vec<u8>>, Vec<u8>>;
    const NOW: Instant = Instant::ZERO;

    fn pair() -> (Tcp, Tcp) {
        let config = Config::new().max_payload(300);
        let session = |client| {
            let (tx, rx) = (std::vec![0; 4096], Vec::new());
            let config = config.max_receive_buffer(4096);
            if client {
                Session::client(config, 1, tx, rx, NOW)
            } else {
                Session::server(config, tx, rx, NOW)
            }
        };
        let decoder = || LengthDelimitedDecoder::with_buffer(Vec::new());
        let (mut client, mut server) =
            (Tcp::new(session(true), decoder(), Vec::new()), Tcp::new(session(false), decoder(), Vec::new()));
        let mut wire = std::vec![0u8; 8192];
        let n = client.poll_transmit(NOW, &mut wire).unwrap();
        server.handle_bytes(NOW, &wire[..n]);
        let n = server.poll_transmit(NOW, &mut wire).unwrap();
        client.handle_bytes(NOW, &wire[..n]);
        assert_eq!(client.next_event(), Some(Ok(Event::Connected)));
        assert_eq!(server.next_event(), Some(Ok(Event::Connected)));
        (client, server)
    }

    /// Feeds `input` as a driver taking every event would: (message, lent?) in order.
    fn take_all(to: &mut Tcp, mut input: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut got = Vec::new();
        loop {
            while let Some(Ok(Event::Message(m))) = to.next_event() {
                got.push((m.to_vec(), false));
            }
            if input.is_empty() {
                return got;
            }
            let lent = to.handle_bytes_lending(NOW, input);
            if let Some(message) = lent.message {
                got.push((input[message].to_vec(), true));
            }
            input = &input[lent.consumed..];
        }
    }

    #[test]
    fn messages_after_one_in_pieces_or_split_across_inputs_are_still_lent() {
        let (mut client, mut server) = pair();
        // The frames of each message, one after the other: where each starts.
        let (mut wire, mut starts) = (Vec::new(), Vec::new());
        let mut out = std::vec![0u8; 8192];
        for message in [&[1; 500][..], b"a", b"b", b"c"] {
            client.session_mut().send(NOW, message).unwrap(); // the first in two packets
            starts.push(wire.len());
            let n = client.poll_transmit(NOW, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        // The frame of "b" split across two inputs: it is copied, the rest lent.
        let b_at = starts[2] + 8;
        let mut got = take_all(&mut server, &wire[..b_at]);
        got.extend(take_all(&mut server, &wire[b_at..]));
        let expected: Vec<(Vec<u8>, bool)> = [
            (std::vec![1; 500], false),
            (b"a".to_vec(), true),
            (b"b".to_vec(), false),
            (b"c".to_vec(), true),
        ]
        .into();
        assert_eq!(got, expected);
        assert_eq!(server.session().stats().messages_received, 4);
    }

    #[test]
    fn a_slice_is_placed_only_inside_its_outer_slice() {
        let outer = [0u8; 16];
        assert_eq!(place_in(&outer, &outer[3..9]), Some(3..9));
        assert_eq!(place_in(&outer, &outer[16..]), Some(16..16));
        assert_eq!(place_in(&outer[4..], &outer[..8]), None);
        assert_eq!(place_in(&outer[..8], &outer[4..12]), None);
        let other = [0u8; 4];
        assert_eq!(place_in(&outer, &other), None);
    }
}
