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
    /// feed the rest here again, so that the messages after it may be lent too. And it stops
    /// before a frame that is not whole in `bytes` (for framings that can tell,
    /// [`Decoder::is_incomplete`](crate::framing::Decoder::is_incomplete)): when neither a
    /// message was lent nor an event queued and `consumed` is short of the input, feed the
    /// rest again with the bytes that follow it, or give it to `handle_bytes` (whose decoder
    /// holds it) when there is no room to read them after it.
    ///
    /// `bytes` may be changed: a keyed session opens each sealed packet that lies whole in it
    /// in place ([`handle_bytes_mut`](Self::handle_bytes_mut)), and lends its message from
    /// there as any.
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
    /// let (mut at, mut got) = (0, Vec::new());
    /// while at < n {
    ///     let lent = server.handle_bytes_lending(now, &mut wire[at..n]);
    ///     if let Some(message) = lent.message {
    ///         got.push(wire[at..][message].to_vec());
    ///     }
    ///     at += lent.consumed;
    /// }
    /// assert_eq!(got, [&b"first"[..], b"second"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_bytes_lending(&mut self, now: Instant, bytes: &mut [u8]) -> Lent {
        self.feed::<true, _>(now, bytes)
    }
}

/// The input of [`Connection`]'s decoding: bytes it only reads, or bytes it may change (where
/// a keyed session opens sealed packets in place).
#[cfg_attr(not(feature = "auth"), allow(dead_code))] // only keyed sessions change the bytes
pub(super) trait Input {
    /// Whether [`get_mut`](Self::get_mut) gives the bytes.
    const CHANGEABLE: bool;
    /// The bytes.
    fn get(&self) -> &[u8];
    /// The bytes, to change, if they may be.
    fn get_mut(&mut self) -> Option<&mut [u8]>;
}

impl Input for &[u8] {
    const CHANGEABLE: bool = false;
    fn get(&self) -> &[u8] {
        self
    }
    fn get_mut(&mut self) -> Option<&mut [u8]> {
        None
    }
}

impl Input for &mut [u8] {
    const CHANGEABLE: bool = true;
    fn get(&self) -> &[u8] {
        self
    }
    fn get_mut(&mut self) -> Option<&mut [u8]> {
        Some(self)
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

    /// Feeds `input` as a driver taking every event would: (message, lent?) in order, and
    /// the start of a frame left unfed because it is not whole.
    fn take_all(to: &mut Tcp, input: &[u8]) -> (Vec<(Vec<u8>, bool)>, Vec<u8>) {
        let (mut got, mut input, mut at) = (Vec::new(), input.to_vec(), 0);
        loop {
            while let Some(Ok(Event::Message(m))) = to.next_event() {
                got.push((m.to_vec(), false));
            }
            if at == input.len() {
                return (got, Vec::new());
            }
            let lent = to.handle_bytes_lending(NOW, &mut input[at..]);
            if let Some(message) = lent.message {
                got.push((input[at..][message].to_vec(), true));
            } else if at + lent.consumed < input.len() && !to.is_ready() {
                return (got, input[at + lent.consumed..].to_vec());
            }
            at += lent.consumed;
        }
    }

    /// A message in two packets, then "a", "b", "c" in one packet each; where each starts.
    fn four_messages(client: &mut Tcp) -> (Vec<u8>, Vec<usize>) {
        let (mut wire, mut starts) = (Vec::new(), Vec::new());
        let mut out = std::vec![0u8; 8192];
        for message in [&[1; 500][..], b"a", b"b", b"c"] {
            client.session_mut().send(NOW, message).unwrap();
            starts.push(wire.len());
            let n = client.poll_transmit(NOW, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        (wire, starts)
    }

    fn expected(b_lent: bool) -> Vec<(Vec<u8>, bool)> {
        [(std::vec![1; 500], false), (b"a".to_vec(), true), (b"b".to_vec(), b_lent), (b"c".to_vec(), true)]
            .into()
    }

    #[test]
    fn a_frame_not_whole_is_left_unfed_and_lent_once_the_rest_follows_it() {
        let (mut client, mut server) = pair();
        let (wire, starts) = four_messages(&mut client);
        // The input ends 8 bytes into the frame of "b": decoding stops before it.
        let cut = starts[2] + 8;
        let (mut got, rest) = take_all(&mut server, &wire[..cut]);
        assert_eq!(rest, &wire[starts[2]..cut]);
        // A driver that reads the rest after it: "b" is lent too.
        let mut input = rest.to_vec();
        input.extend_from_slice(&wire[cut..]);
        let (more, rest) = take_all(&mut server, &input);
        got.extend(more);
        assert!(rest.is_empty());
        assert_eq!(got, expected(true));
        assert_eq!(server.session().stats().messages_received, 4);
    }

    #[test]
    fn a_frame_split_across_inputs_is_copied_and_the_next_still_lent() {
        let (mut client, mut server) = pair();
        let (wire, starts) = four_messages(&mut client);
        let cut = starts[2] + 8;
        let (mut got, rest) = take_all(&mut server, &wire[..cut]);
        // A driver without room for the rest: the decoder holds the start of the frame.
        server.handle_bytes(NOW, &rest);
        let (more, rest) = take_all(&mut server, &wire[cut..]);
        got.extend(more);
        assert!(rest.is_empty());
        assert_eq!(got, expected(false));
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
