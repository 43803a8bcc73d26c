//! Messages lent from the caller's input instead of copied into the receive buffer.
//!
//! A DATA packet that carries a whole message the application takes next can go to it
//! straight from the bytes the driver read: [`Session::handle_packet_lent`] counts such a
//! message as received and delivered without copying it, and the driver hands the packet's
//! payload over itself. [`Connection::handle_bytes_lending`](crate::connection::Connection)
//! does this for a stream or datagram it decodes.

use super::Session;
use crate::Instant;
use crate::buffer::Buffer;
use crate::wire::Repr;

/// Where a lend stands while one packet is handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Lend {
    /// Every message goes into the receive buffer.
    #[default]
    No,
    /// The caller would take the packet's message itself.
    Wanted,
    /// It did: the message is the caller's.
    Done,
}

impl<B: Buffer, const W: usize> Session<B, W> {
    /// Like [`handle_packet`](Self::handle_packet), but a DATA packet that carries a whole
    /// message the application takes next (in order, in one packet, with no message, event or
    /// held packet before it) is not copied into the receive buffer: it counts as received and
    /// delivered, and `true` says that the caller hands `packet.payload` to the application
    /// itself, in place of the [`Event::Message`](super::Event::Message) that
    /// [`poll_event`](Self::poll_event) would have lent. Otherwise the same as `handle_packet`,
    /// and `false`. A keyed session opens a packet given here into room of its own, and never
    /// lends it ([`Connection::handle_bytes_lending`](crate::connection::Connection) opens
    /// packets in place, and lends from there).
    ///
    /// ```
    /// use framelink_core::session::{Config, Event, Session};
    /// use framelink_core::wire::Repr;
    /// use framelink_core::Instant;
    ///
    /// let now = Instant::ZERO;
    /// let mut client: Session<[u8; 4096]> = Session::client(Config::new(), 1, [0; 4096], [0; 4096], now);
    /// let mut server: Session<[u8; 4096]> = Session::server(Config::new(), [0; 4096], [0; 4096], now);
    /// let mut buf = [0u8; 1024];
    /// # for _ in 0..2 {
    /// #     while let Some(n) = client.poll_transmit(now, &mut buf)? {
    /// #         server.handle_packet(now, &Repr::parse(&buf[..n]).unwrap());
    /// #     }
    /// #     while let Some(n) = server.poll_transmit(now, &mut buf)? {
    /// #         client.handle_packet(now, &Repr::parse(&buf[..n]).unwrap());
    /// #     }
    /// # }
    /// # assert_eq!(client.poll_event(), Some(Event::Connected));
    /// # assert_eq!(server.poll_event(), Some(Event::Connected));
    /// // After the handshake:
    /// client.send(now, b"straight from the input")?;
    /// let n = client.poll_transmit(now, &mut buf)?.unwrap();
    /// let packet = Repr::parse(&buf[..n]).unwrap();
    /// assert!(server.handle_packet_lent(now, &packet));
    /// assert_eq!(packet.payload, b"straight from the input");
    /// assert_eq!(server.poll_event(), None); // delivered already
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    pub fn handle_packet_lent(&mut self, now: Instant, packet: &Repr<'_>) -> bool {
        #[cfg(feature = "auth")]
        if self.is_keyed() {
            self.handle_packet(now, packet);
            return false;
        }
        self.handle_plain_lent(now, packet)
    }

    /// [`handle_packet_lent`](Self::handle_packet_lent) for a packet in the clear (unkeyed,
    /// or opened).
    pub(super) fn handle_plain_lent(&mut self, now: Instant, packet: &Repr<'_>) -> bool {
        // The message the last poll_event lent is done with (this call borrows the session).
        self.release_message();
        self.lend = Lend::Wanted;
        self.handle_plain(now, packet);
        let lent = self.lend == Lend::Done;
        self.lend = Lend::No;
        if lent {
            // Delivered as it was accepted: its room was never taken, but its credit was spent.
            self.delivered += 1;
            if self.credit_update_due() {
                self.pending.credit = true;
            }
        }
        lent
    }

    /// In-order DATA into the receive buffer (whether it completed a message), or, when the
    /// caller wants to take a whole message the application takes next, nowhere: the caller
    /// has it.
    #[inline]
    pub(super) fn take_payload(&mut self, packet: &Repr<'_>) -> Result<bool, ()> {
        if self.lend == Lend::Wanted && !packet.more && self.rx.is_empty() && self.events.is_empty() {
            self.lend = Lend::Done;
            return Ok(true);
        }
        self.rx.push(packet.payload, packet.more)
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use crate::Instant;
    use crate::session::{Config, Event, Session};
    use crate::wire::{PacketType, Repr};

    type S = Session<Vec<u8>, 8>;
    const NOW: Instant = Instant::ZERO;

    /// Every packet `s` sends now.
    fn drain(s: &mut S) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Some(len) = s.poll_transmit(NOW, &mut buf).unwrap() {
            out.push(buf[..len].to_vec());
        }
        out
    }

    /// Feeds `packets` lending where it can; the messages lent.
    fn lend_all(to: &mut S, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut lent = Vec::new();
        for packet in packets {
            let repr = Repr::parse(packet).unwrap();
            if to.handle_packet_lent(NOW, &repr) {
                lent.push(repr.payload.to_vec());
            }
        }
        lent
    }

    fn messages(s: &mut S) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(event) = s.poll_event() {
            if let Event::Message(m) = event {
                out.push(m.to_vec());
            }
        }
        out
    }

    /// A connected pair whose server's receive buffer holds `rx` bytes.
    fn pair(rx: usize) -> (S, S) {
        let config = Config::new().max_payload(256).max_message(2000);
        let mut client = S::client(config, 1, std::vec![0; 4096], std::vec![0; 4096], NOW);
        let mut server = S::server(config, std::vec![0; 4096], std::vec![0; rx], NOW);
        for _ in 0..3 {
            for p in drain(&mut client) {
                server.handle_packet(NOW, &Repr::parse(&p).unwrap());
            }
            for p in drain(&mut server) {
                client.handle_packet(NOW, &Repr::parse(&p).unwrap());
            }
        }
        assert_eq!(client.poll_event(), Some(Event::Connected));
        assert_eq!(server.poll_event(), Some(Event::Connected));
        (client, server)
    }

    #[test]
    fn whole_messages_are_lent_and_never_delivered_twice() {
        let (mut client, mut server) = pair(4096);
        for text in [&b"one"[..], b"two", b""] {
            client.send(NOW, text).unwrap();
        }
        assert_eq!(lend_all(&mut server, &drain(&mut client)), [&b"one"[..], b"two", b""]);
        assert_eq!(messages(&mut server), Vec::<Vec<u8>>::new());
        let stats = server.stats();
        assert_eq!((stats.messages_received, stats.bytes_received), (3, 6));
        // The sender hears they arrived.
        for p in drain(&mut server) {
            client.handle_packet(NOW, &Repr::parse(&p).unwrap());
        }
        assert!(client.is_send_drained());
    }

    #[test]
    fn a_message_in_pieces_or_behind_another_is_copied_in_order() {
        let (mut client, mut server) = pair(4096);
        client.send(NOW, &[7; 600]).unwrap(); // three packets of at most 256 bytes
        client.send(NOW, b"after").unwrap();
        // Nothing lent: the first is in pieces, the second waits behind it.
        assert_eq!(lend_all(&mut server, &drain(&mut client)), Vec::<Vec<u8>>::new());
        assert_eq!(messages(&mut server), [std::vec![7; 600], b"after".to_vec()]);
        // A message still lent by poll_event is released first, then the next may be lent.
        client.send(NOW, b"x").unwrap();
        client.send(NOW, b"y").unwrap();
        let packets = drain(&mut client);
        server.handle_packet(NOW, &Repr::parse(&packets[0]).unwrap());
        assert_eq!(server.poll_event(), Some(Event::Message(b"x")));
        // x is released by the next call, and y lent.
        assert_eq!(lend_all(&mut server, &packets[1..]), [b"y".to_vec()]);
        assert_eq!(messages(&mut server), Vec::<Vec<u8>>::new());
        assert_eq!(server.stats().messages_received, 4);
    }

    #[test]
    fn an_event_queued_first_stays_first() {
        let (mut client, mut server) = pair(4096);
        let token = server.ping(NOW, 0).unwrap();
        for p in drain(&mut server) {
            client.handle_packet(NOW, &Repr::parse(&p).unwrap());
        }
        client.send(NOW, b"after the pong").unwrap();
        let packets = drain(&mut client);
        assert_eq!(Repr::parse(&packets[0]).unwrap().kind, PacketType::Pong);
        assert_eq!(lend_all(&mut server, &packets), Vec::<Vec<u8>>::new());
        assert!(matches!(server.poll_event(), Some(Event::Pong { token: t, .. }) if t == token));
        assert_eq!(messages(&mut server), [b"after the pong".to_vec()]);
    }

    #[test]
    fn credit_keeps_flowing_past_the_receive_buffer() {
        // 40 messages of 200 bytes through a receive buffer of 1 KiB, every one lent.
        let (mut client, mut server) = pair(1024);
        let mut lent = 0;
        for round in 0..200 {
            if lent == 40 {
                break;
            }
            while client.stats().messages_sent < 40 && client.send(NOW, &[round as u8; 200]).is_ok() {}
            lent += lend_all(&mut server, &drain(&mut client)).len();
            for p in drain(&mut server) {
                client.handle_packet(NOW, &Repr::parse(&p).unwrap());
            }
        }
        assert_eq!(lent, 40);
        assert_eq!(server.stats().messages_received, 40);
    }
}
