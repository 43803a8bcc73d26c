//! Async driver over `embedded_io_async::{Read, Write}`: embassy-net TCP sockets, async UARTs.
//!
//! The same thin loop as [`io`](crate::io), awaiting bytes or the session's next deadline,
//! whichever comes first. It runs on any executor (embassy tasks, or `block_on` on a host).

use core::future::Future;

use embassy_futures::select::{Either, select};
use embedded_io_async::{Read, Write};

use crate::Instant;
use crate::buffer::Buffer;
use crate::connection::Connection;
use crate::driver::{Clock, Error, closed, connected, event_or_end, lost_or_io};
use crate::framing::Framing;
use crate::session::{Event, SendError, Session};

/// A timer the async driver awaits until the session's next deadline.
///
/// With embassy-time: `async move { Timer::at(to_embassy(deadline)).await }`.
pub trait Sleep {
    /// Completes at `deadline`, on the same clock as the driver's [`Clock`].
    fn until(&mut self, deadline: Instant) -> impl Future<Output = ()>;
}

/// A session running over an async byte stream.
///
/// While it waits for bytes it also waits for the session's next deadline (keepalive, idle,
/// handshake and close timers), so dropping the read future must not lose bytes: the
/// transport's `read` must be cancel-safe (embassy-net's TCP socket and buffered UARTs are).
///
/// The helpers behave as [`IoLink`](crate::io::IoLink)'s, with a [`Sleep`] for its `idle`
/// hook, and take their arguments in the same order. Buffers as for `IoLink`: `read_buf` takes
/// each read, `write_buf` collects whole frames for each write and must hold
/// [`Connection::max_frame`] bytes.
pub struct AsyncLink<T, F, B: Buffer, const W: usize = 16> {
    transport: T,
    connection: Connection<F, B, W>,
    read_buf: B,
    write_buf: B,
}

impl<T, F, B, const W: usize> AsyncLink<T, F, B, W>
where
    T: Read + Write,
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

    /// The connection (the session and its framing).
    pub fn connection(&self) -> &Connection<F, B, W> {
        &self.connection
    }

    /// Gives back the transport and the connection.
    pub fn into_parts(self) -> (T, Connection<F, B, W>) {
        (self.transport, self.connection)
    }

    /// Writes everything the session has to send.
    pub async fn flush(&mut self, now: Instant) -> Result<(), Error<T::Error>> {
        loop {
            let n = self.connection.poll_transmit(now, self.write_buf.as_mut())?;
            if n == 0 {
                return self.transport.flush().await.map_err(lost_or_io);
            }
            self.transport.write_all(&self.write_buf.as_ref()[..n]).await.map_err(lost_or_io)?;
        }
    }

    /// One round: runs due timers, writes, then awaits bytes or the next deadline (not at all
    /// if an event is already waiting), feeds what arrived and writes the answers.
    ///
    /// It reads even after the session ended: a server session starts over on a new HELLO.
    pub async fn poll(
        &mut self,
        clock: &mut impl Clock,
        sleep: &mut impl Sleep,
    ) -> Result<(), Error<T::Error>> {
        let now = clock.now();
        self.connection.handle_timeout(now);
        self.flush(now).await?;
        if self.session().has_event() {
            return Ok(());
        }
        let read = self.transport.read(self.read_buf.as_mut());
        let n = match self.connection.poll_timeout() {
            Some(deadline) => match select(read, sleep.until(deadline)).await {
                Either::First(result) => result.map_err(lost_or_io)?,
                Either::Second(()) => return Ok(()),
            },
            None => read.await.map_err(lost_or_io)?,
        };
        if n == 0 {
            return Err(Error::ConnectionLost);
        }
        let now = clock.now();
        self.connection.handle_bytes(now, &self.read_buf.as_ref()[..n]);
        self.flush(now).await
    }

    /// Awaits the next event. After [`Event::Closed`], fails with [`Error::Closed`] and the
    /// same reason.
    pub async fn next_event(
        &mut self,
        clock: &mut impl Clock,
        sleep: &mut impl Sleep,
    ) -> Result<Event<'_>, Error<T::Error>> {
        while !self.connection.is_ready() {
            self.poll(clock, sleep).await?;
        }
        event_or_end(self.connection.next_event())
    }

    /// Completes the handshake, or fails with the reason the session ended.
    pub async fn connect(
        &mut self,
        clock: &mut impl Clock,
        sleep: &mut impl Sleep,
    ) -> Result<(), Error<T::Error>> {
        loop {
            if let Some(done) = connected(self.next_event(clock, sleep).await) {
                return done;
            }
        }
    }

    /// Queues `message`, driving the link while the send buffer is full.
    pub async fn send(
        &mut self,
        clock: &mut impl Clock,
        message: &[u8],
        sleep: &mut impl Sleep,
    ) -> Result<(), Error<T::Error>> {
        loop {
            let now = clock.now();
            match self.connection.session_mut().send(now, message) {
                Ok(()) => return self.flush(now).await,
                Err(SendError::WouldBlock) => self.poll(clock, sleep).await?,
                Err(error) => return Err(Error::refused(error, self.connection.close_reason())),
            }
        }
    }

    /// Closes gracefully: waits until everything sent is acknowledged and the peer confirmed;
    /// `Ok` when the session ended gracefully, by this side or (earlier) by the peer. Messages
    /// that arrive meanwhile are dropped; read them before closing.
    pub async fn close(
        &mut self,
        clock: &mut impl Clock,
        sleep: &mut impl Sleep,
    ) -> Result<(), Error<T::Error>> {
        self.connection.session_mut().close(clock.now());
        loop {
            if let Some(done) = closed(self.next_event(clock, sleep).await) {
                return done;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::LengthDelimitedDecoder;
    use crate::session::{CloseReason, Config, Timeout};
    use core::cell::{Cell, RefCell};
    use core::pin::Pin;
    use core::task::{Context, Poll, Waker};
    use embassy_futures::{block_on, join::join};
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::vec::Vec;

    #[derive(Default)]
    struct Queue {
        bytes: VecDeque<u8>,
        reader: Option<Waker>,
    }

    /// One end of an in-memory async duplex pipe.
    struct PipeEnd {
        inbox: Rc<RefCell<Queue>>,
        outbox: Rc<RefCell<Queue>>,
    }

    impl embedded_io_async::ErrorType for PipeEnd {
        type Error = embedded_io_async::ErrorKind;
    }

    struct ReadFut<'a> {
        inbox: &'a RefCell<Queue>,
        buf: &'a mut [u8],
    }

    impl Future for ReadFut<'_> {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            let mut q = self.inbox.borrow_mut();
            if q.bytes.is_empty() {
                q.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = q.bytes.len().min(self.buf.len()).min(5);
            let taken: Vec<u8> = q.bytes.drain(..n).collect();
            drop(q);
            self.buf[..n].copy_from_slice(&taken);
            Poll::Ready(n)
        }
    }

    impl Read for PipeEnd {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            Ok(ReadFut { inbox: &self.inbox, buf }.await)
        }
    }

    impl Write for PipeEnd {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            let mut q = self.outbox.borrow_mut();
            q.bytes.extend(buf);
            if let Some(w) = q.reader.take() {
                w.wake();
            }
            Ok(buf.len())
        }
        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    /// A sleep that never ends: the test relies on bytes alone.
    struct Never;
    impl Sleep for Never {
        fn until(&mut self, _: Instant) -> impl Future<Output = ()> {
            core::future::pending()
        }
    }

    /// A sleep that ends at once by moving a virtual clock to the deadline.
    struct Jump(Rc<Cell<u64>>);
    impl Sleep for Jump {
        fn until(&mut self, deadline: Instant) -> impl Future<Output = ()> {
            self.0.set(self.0.get().max(deadline.as_micros()));
            core::future::ready(())
        }
    }

    type Link = AsyncLink<PipeEnd, LengthDelimitedDecoder<600>, Vec<u8>>;

    fn link(session: Session<Vec<u8>>, inbox: &Rc<RefCell<Queue>>, outbox: &Rc<RefCell<Queue>>) -> Link {
        let pipe = PipeEnd { inbox: inbox.clone(), outbox: outbox.clone() };
        let framed = Connection::new(session, LengthDelimitedDecoder::new(), std::vec![0; 600]);
        AsyncLink::new(pipe, framed, std::vec![0; 64], std::vec![0; 1200])
    }

    #[test]
    fn client_and_server_tasks_exchange_messages() {
        let (a, b) = (Rc::default(), Rc::default());
        let config = Config::new().max_payload(500);
        let buf = || std::vec![0u8; 4096];
        let mut client = link(Session::client(config, 9, buf(), buf(), Instant::ZERO), &a, &b);
        let mut server = link(Session::server(config, buf(), buf(), Instant::ZERO), &b, &a);
        let client_task = async {
            let mut clock = || Instant::ZERO;
            client.connect(&mut clock, &mut Never).await.unwrap();
            client.send(&mut clock, b"Hello, Server!", &mut Never).await.unwrap();
            client.send(&mut clock, &[3u8; 1500], &mut Never).await.unwrap();
            client.close(&mut clock, &mut Never).await.unwrap();
        };
        let server_task = async {
            let mut clock = || Instant::ZERO;
            let mut got = Vec::new();
            loop {
                match server.next_event(&mut clock, &mut Never).await.unwrap() {
                    Event::Message(m) => got.push(m.to_vec()),
                    Event::Closed(reason) => return (got, reason),
                    _ => {}
                }
            }
        };
        let ((), (got, reason)) = block_on(join(client_task, server_task));
        assert_eq!(got, [b"Hello, Server!".to_vec(), [3u8; 1500].to_vec()]);
        assert_eq!(reason, CloseReason::Peer);
    }

    #[test]
    fn timers_fire_while_waiting_for_bytes() {
        let (a, b) = (Rc::default(), Rc::default());
        let time = Rc::new(Cell::new(0));
        let buf = || std::vec![0u8; 2048];
        let mut client = link(Session::client(Config::new(), 1, buf(), buf(), Instant::ZERO), &a, &b);
        let mut clock = {
            let time = time.clone();
            move || Instant::from_micros(time.get())
        };
        let result = block_on(client.connect(&mut clock, &mut Jump(time.clone())));
        assert_eq!(result, Err(Error::Closed(CloseReason::TimedOut(Timeout::Handshake))));
        assert_eq!(time.get(), 10_000_000, "woke exactly at the handshake deadline");
    }
}
