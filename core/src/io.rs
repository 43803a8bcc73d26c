//! Blocking driver over `embedded_io::{Read, Write, ReadReady}`: a UART, a TCP stream.
//!
//! A thin loop around [`FramedSession`]: it writes what the session has to send, reads what is
//! ready, runs the timers, and hands out events. It has no protocol logic of its own.

use crate::Instant;
use crate::driver::{Clock, Error};
use crate::framed::FramedSession;
use crate::framing::{Decoder, Encoder};
use crate::session::{CloseReason, Event, Session, State};
use embedded_io::{Read, ReadReady, Write};

/// A session running over a blocking byte stream.
///
/// [`poll`](Self::poll) never blocks on reading: it reads only when
/// [`ReadReady::read_ready`] says bytes are waiting. The blocking helpers
/// ([`connect`](Self::connect), [`send`](Self::send), [`next_event`](Self::next_event),
/// [`close`](Self::close)) loop over `poll` and call an `idle` hook between rounds in which
/// nothing happened, with the next deadline: firmware can sleep there (`WFI`), a host can wait
/// on its socket.
///
/// Buffers: `read_buf` takes each read, `write_buf` collects whole frames for each write and must
/// hold the largest frame (for COBS, 13 + payload plus 1 in 254, plus 2).
pub struct IoLink<T, D, E, B, const W: usize = 16> {
    transport: T,
    framed: FramedSession<D, E, B, W>,
    read_buf: B,
    write_buf: B,
}

impl<T, D, E, B, const W: usize> IoLink<T, D, E, B, W>
where
    T: Read + Write + ReadReady,
    D: Decoder,
    E: Encoder,
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Runs `framed` over `transport`.
    pub fn new(transport: T, framed: FramedSession<D, E, B, W>, read_buf: B, write_buf: B) -> Self {
        Self { transport, framed, read_buf, write_buf }
    }

    /// The session.
    pub fn session(&self) -> &Session<B, W> {
        self.framed.session()
    }

    /// The session, for calls the driver does not wrap.
    pub fn session_mut(&mut self) -> &mut Session<B, W> {
        self.framed.session_mut()
    }

    /// The transport, for what the driver does not do (sleeping until bytes arrive).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The framed session.
    pub fn framed(&self) -> &FramedSession<D, E, B, W> {
        &self.framed
    }

    /// Gives back the transport and the framed session.
    pub fn into_parts(self) -> (T, FramedSession<D, E, B, W>) {
        (self.transport, self.framed)
    }

    /// Writes everything the session has to send.
    pub fn flush(&mut self, now: Instant) -> Result<(), Error<T::Error>> {
        loop {
            let n = self.framed.poll_transmit(now, self.write_buf.as_mut())?;
            if n == 0 {
                return self.transport.flush().map_err(Error::Io);
            }
            self.transport.write_all(&self.write_buf.as_ref()[..n]).map_err(Error::Io)?;
        }
    }

    /// One round: runs due timers, writes, reads what is ready (without blocking), writes the
    /// answers. Returns whether anything was read.
    ///
    /// It reads even after the session ended: a server session starts over on a new HELLO
    /// (firmware behind a UART never sees its clients come and go).
    pub fn poll(&mut self, now: Instant) -> Result<bool, Error<T::Error>> {
        if self.session().poll_timeout().is_some_and(|t| t <= now) {
            self.framed.session_mut().handle_timeout(now);
        }
        self.flush(now)?;
        if !self.transport.read_ready().map_err(Error::Io)? {
            return Ok(false);
        }
        let n = self.transport.read(self.read_buf.as_mut()).map_err(Error::Io)?;
        if n == 0 {
            return Err(Error::ConnectionLost);
        }
        self.framed.handle_bytes(now, &self.read_buf.as_ref()[..n]);
        self.flush(now)?;
        Ok(true)
    }

    /// Polls until an event is ready and returns it; `idle(deadline)` runs whenever a round
    /// read nothing.
    ///
    /// After [`Event::Closed`] has been returned, further calls fail with [`Error::Closed`].
    pub fn next_event(
        &mut self,
        clock: &mut impl Clock,
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<Event<'_>, Error<T::Error>> {
        loop {
            if self.session().has_event() {
                break;
            }
            if self.session().is_closed() {
                return Err(Error::Closed(CloseReason::Local));
            }
            if !self.poll(clock.now())? && !self.session().has_event() {
                idle(self.session().poll_timeout());
            }
        }
        let event = self.framed.session_mut().poll_event();
        Ok(event.unwrap_or(Event::Closed(CloseReason::Local)))
    }

    /// Completes the handshake: polls until [`Event::Connected`], or fails with the reason the
    /// session ended (refused, timed out).
    pub fn connect(
        &mut self,
        clock: &mut impl Clock,
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<(), Error<T::Error>> {
        loop {
            match self.next_event(clock, &mut idle)? {
                Event::Connected => return Ok(()),
                Event::Closed(reason) => return Err(Error::Closed(reason)),
                _ => {}
            }
        }
    }

    /// Queues `message`, polling while the send buffer is full. Events that arrive meanwhile
    /// stay queued for [`next_event`](Self::next_event), except that a full receive buffer is
    /// not read here (credit stops the peer instead).
    pub fn send(
        &mut self,
        clock: &mut impl Clock,
        message: &[u8],
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<(), Error<T::Error>> {
        loop {
            let now = clock.now();
            match self.framed.session_mut().send(now, message) {
                Ok(()) => return self.flush(now),
                Err(crate::session::SendError::WouldBlock) => {
                    if !self.poll(now)? {
                        idle(self.session().poll_timeout());
                    }
                }
                Err(error) => return Err(self.closed_or(error.into())),
            }
        }
    }

    /// Closes gracefully: waits until everything sent is acknowledged and the peer confirmed.
    /// Messages that arrive meanwhile are dropped; read them before closing.
    pub fn close(
        &mut self,
        clock: &mut impl Clock,
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<(), Error<T::Error>> {
        self.framed.session_mut().close(clock.now());
        loop {
            match self.next_event(clock, &mut idle)? {
                Event::Closed(CloseReason::Local | CloseReason::Peer) => return Ok(()),
                Event::Closed(reason) => return Err(Error::Closed(reason)),
                _ => {}
            }
        }
    }

    fn closed_or(&self, error: Error<T::Error>) -> Error<T::Error> {
        if self.session().state() == State::Closed { Error::Closed(CloseReason::Local) } else { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{Cobs, CobsDecoder};
    use crate::session::Config;
    use core::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::vec::Vec;

    /// One end of an in-memory duplex byte pipe.
    struct PipeEnd {
        inbox: Rc<RefCell<VecDeque<u8>>>,
        outbox: Rc<RefCell<VecDeque<u8>>>,
        /// Bytes handed out per read, to exercise partial reads.
        chunk: usize,
    }

    impl embedded_io::ErrorType for PipeEnd {
        type Error = embedded_io::ErrorKind;
    }

    impl Read for PipeEnd {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let mut inbox = self.inbox.borrow_mut();
            let n = buf.len().min(inbox.len()).min(self.chunk);
            for (dst, src) in buf.iter_mut().zip(inbox.drain(..n)) {
                *dst = src;
            }
            Ok(n)
        }
    }

    impl ReadReady for PipeEnd {
        fn read_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(!self.inbox.borrow().is_empty())
        }
    }

    impl Write for PipeEnd {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.outbox.borrow_mut().extend(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    type Link = IoLink<PipeEnd, CobsDecoder<600>, Cobs, Vec<u8>>;

    fn link(
        session: Session<Vec<u8>>,
        inbox: &Rc<RefCell<VecDeque<u8>>>,
        outbox: &Rc<RefCell<VecDeque<u8>>>,
    ) -> Link {
        let pipe = PipeEnd { inbox: inbox.clone(), outbox: outbox.clone(), chunk: 7 };
        let framed = FramedSession::new(session, CobsDecoder::new(), std::vec![0; 600]);
        IoLink::new(pipe, framed, std::vec![0; 64], std::vec![0; 1300])
    }

    #[test]
    fn client_and_server_exchange_messages_over_a_byte_pipe() {
        let (a, b) = (Rc::new(RefCell::new(VecDeque::new())), Rc::new(RefCell::new(VecDeque::new())));
        let config = Config::new().max_payload(500);
        let buf = || std::vec![0u8; 4096];
        let mut client = link(Session::client(config, 9, buf(), buf(), Instant::ZERO), &a, &b);
        let mut server = link(Session::server(config, buf(), buf(), Instant::ZERO), &b, &a);
        let mut clock = || Instant::ZERO;
        // One thread drives both ends: the idle hook of one runs a round of the other.
        client.poll(Instant::ZERO).unwrap();
        assert_eq!(server.next_event(&mut clock, |_| {}).unwrap(), Event::Connected);
        client.connect(&mut clock, |_| {}).unwrap();
        client.send(&mut clock, b"Hello, Server!", |_| {}).unwrap();
        client.send(&mut clock, &[7u8; 2000], |_| {}).unwrap();
        assert_eq!(server.next_event(&mut clock, |_| {}).unwrap(), Event::Message(b"Hello, Server!"));
        assert_eq!(server.next_event(&mut clock, |_| {}).unwrap(), Event::Message(&[7u8; 2000]));
        let mut server_round = |_| {
            let _ = server.poll(Instant::ZERO);
        };
        client.close(&mut clock, &mut server_round).unwrap();
        assert_eq!(server.next_event(&mut clock, |_| {}).unwrap(), Event::Closed(CloseReason::Peer));
        assert!(matches!(server.next_event(&mut clock, |_| {}), Err(Error::Closed(_))));

        // The same server session, ended, still reads: the next client's HELLO starts it over.
        let mut next = link(Session::client(config, 10, buf(), buf(), Instant::ZERO), &a, &b);
        next.poll(Instant::ZERO).unwrap();
        for _ in 0..30 {
            server.poll(Instant::ZERO).unwrap();
            next.poll(Instant::ZERO).unwrap();
        }
        assert_eq!(server.session_mut().poll_event(), Some(Event::Connected));
        assert_eq!(next.session_mut().poll_event(), Some(Event::Connected));
    }

    #[test]
    fn end_of_stream_before_close_is_connection_lost() {
        struct Eof;
        impl embedded_io::ErrorType for Eof {
            type Error = embedded_io::ErrorKind;
        }
        impl Read for Eof {
            fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> {
                Ok(0)
            }
        }
        impl ReadReady for Eof {
            fn read_ready(&mut self) -> Result<bool, Self::Error> {
                Ok(true)
            }
        }
        impl Write for Eof {
            fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> Result<(), Self::Error> {
                Ok(())
            }
        }
        let session =
            Session::client(Config::new(), 1, std::vec![0u8; 2048], std::vec![0u8; 2048], Instant::ZERO);
        let framed =
            FramedSession::<CobsDecoder<1100>, Cobs, _>::new(session, CobsDecoder::new(), std::vec![0; 1100]);
        let mut link = IoLink::new(Eof, framed, std::vec![0; 64], std::vec![0; 1200]);
        let mut clock = || Instant::ZERO;
        assert_eq!(link.connect(&mut clock, |_| {}), Err(Error::ConnectionLost));
    }
}
