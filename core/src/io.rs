//! Blocking driver over `embedded_io::{Read, Write, ReadReady}`: a UART, a TCP stream.
//!
//! A thin loop around [`Connection`]: it writes what the session has to send, reads what is
//! ready, runs the timers, and hands out events. It has no protocol logic of its own.

use crate::Instant;
use crate::buffer::Buffer;
use crate::connection::Connection;
use crate::driver::{Clock, Error, closed, connected, event_or_end, lost_or_io};
use crate::framing::Framing;
use crate::session::{Event, SendError, Session};
use embedded_io::{Read, ReadReady, Write};

/// A session running over a blocking byte stream.
///
/// [`poll`](Self::poll) never blocks on reading: it reads only when
/// [`ReadReady::read_ready`] says bytes are waiting. The blocking helpers
/// ([`connect`](Self::connect), [`send`](Self::send), [`next_event`](Self::next_event),
/// [`close`](Self::close)) loop over `poll` and call an `idle` hook between rounds in which
/// nothing happened, with the next deadline: firmware can sleep there (`WFI`), a host can wait
/// on its socket. When the session has ended they fail with [`Error::Closed`] and the reason.
///
/// Buffers: `read_buf` takes each read, `write_buf` collects whole frames for each write and
/// must hold [`Connection::max_frame`] bytes.
pub struct IoLink<T, F, B: Buffer, const W: usize = 16> {
    transport: T,
    connection: Connection<F, B, W>,
    read_buf: B,
    write_buf: B,
}

impl<T, F, B, const W: usize> IoLink<T, F, B, W>
where
    T: Read + Write + ReadReady,
    F: Framing,
    B: Buffer,
{
    /// Runs `connection` over `transport`.
    pub fn new(transport: T, connection: Connection<F, B, W>, read_buf: B, write_buf: B) -> Self {
        Self { transport, connection, read_buf, write_buf }
    }

    /// The session.
    pub fn session(&self) -> &Session<B, W> {
        self.connection.session()
    }

    /// The session, for calls the driver does not wrap.
    pub fn session_mut(&mut self) -> &mut Session<B, W> {
        self.connection.session_mut()
    }

    /// The transport, for what the driver does not do (sleeping until bytes arrive).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The connection (the session and its framing).
    pub fn connection(&self) -> &Connection<F, B, W> {
        &self.connection
    }

    /// Gives back the transport and the connection.
    pub fn into_parts(self) -> (T, Connection<F, B, W>) {
        (self.transport, self.connection)
    }

    /// Writes everything the session has to send.
    pub fn flush(&mut self, now: Instant) -> Result<(), Error<T::Error>> {
        loop {
            let n = self.connection.poll_transmit(now, self.write_buf.as_mut())?;
            if n == 0 {
                return self.transport.flush().map_err(lost_or_io);
            }
            self.transport.write_all(&self.write_buf.as_ref()[..n]).map_err(lost_or_io)?;
        }
    }

    /// One round: runs due timers, writes, reads what is ready (without blocking), writes the
    /// answers. Returns whether anything was read.
    ///
    /// It reads even after the session ended: a server session starts over on a new HELLO
    /// (firmware behind a UART never sees its clients come and go).
    pub fn poll(&mut self, now: Instant) -> Result<bool, Error<T::Error>> {
        self.connection.handle_timeout(now);
        self.flush(now)?;
        if !self.transport.read_ready().map_err(lost_or_io)? {
            return Ok(false);
        }
        let n = self.transport.read(self.read_buf.as_mut()).map_err(lost_or_io)?;
        if n == 0 {
            return Err(Error::ConnectionLost);
        }
        self.connection.handle_bytes(now, &self.read_buf.as_ref()[..n]);
        self.flush(now)?;
        Ok(true)
    }

    /// Polls until an event is ready and returns it; `idle(deadline)` runs whenever a round
    /// read nothing. After [`Event::Closed`], fails with [`Error::Closed`] and the same reason.
    pub fn next_event(
        &mut self,
        clock: &mut impl Clock,
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<Event<'_>, Error<T::Error>> {
        while !self.connection.is_ready() {
            if !self.poll(clock.now())? && !self.connection.is_ready() {
                idle(self.connection.poll_timeout());
            }
        }
        event_or_end(self.connection.next_event())
    }

    /// Completes the handshake: polls until [`Event::Connected`], or fails with the reason the
    /// session ended (refused, timed out).
    pub fn connect(
        &mut self,
        clock: &mut impl Clock,
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<(), Error<T::Error>> {
        loop {
            if let Some(done) = connected(self.next_event(clock, &mut idle)) {
                return done;
            }
        }
    }

    /// Queues `message`, polling while the send buffer is full. Events that arrive meanwhile
    /// stay queued for [`next_event`](Self::next_event).
    pub fn send(
        &mut self,
        clock: &mut impl Clock,
        message: &[u8],
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<(), Error<T::Error>> {
        loop {
            let now = clock.now();
            match self.connection.session_mut().send(now, message) {
                Ok(()) => return self.flush(now),
                Err(SendError::WouldBlock) => {
                    if !self.poll(now)? {
                        idle(self.connection.poll_timeout());
                    }
                }
                Err(error) => return Err(Error::refused(error, self.connection.close_reason())),
            }
        }
    }

    /// Closes gracefully: waits until everything sent is acknowledged and the peer confirmed;
    /// `Ok` when the session ended gracefully, by this side or (earlier) by the peer. Messages
    /// that arrive meanwhile are dropped; read them before closing.
    pub fn close(
        &mut self,
        clock: &mut impl Clock,
        mut idle: impl FnMut(Option<Instant>),
    ) -> Result<(), Error<T::Error>> {
        self.connection.session_mut().close(clock.now());
        loop {
            if let Some(done) = closed(self.next_event(clock, &mut idle)) {
                return done;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::CobsDecoder;
    use crate::session::CloseReason;
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

    type Link = IoLink<PipeEnd, CobsDecoder<600>, Vec<u8>>;

    fn link(
        session: Session<Vec<u8>>,
        inbox: &Rc<RefCell<VecDeque<u8>>>,
        outbox: &Rc<RefCell<VecDeque<u8>>>,
    ) -> Link {
        let pipe = PipeEnd { inbox: inbox.clone(), outbox: outbox.clone(), chunk: 7 };
        let framed = Connection::new(session, CobsDecoder::new(), std::vec![0; 600]);
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
        let framed = Connection::<CobsDecoder<1100>, _>::new(session, CobsDecoder::new(), std::vec![0; 1100]);
        let mut link = IoLink::new(Eof, framed, std::vec![0; 64], std::vec![0; 1200]);
        let mut clock = || Instant::ZERO;
        assert_eq!(link.connect(&mut clock, |_| {}), Err(Error::ConnectionLost));
    }
}
