//! The event loops that serve TCP and TCP+COBS clients: each a thread owning many connections
//! over one [`mio::Poll`], with one read and one write buffer shared by all of them and a heap of
//! deadlines ([`Timers`]).
//!
//! A loop accepts, hands each new client to the least loaded loop, and drives a connection
//! ([`EventLoop::drive`], one [`Conn::step`]) whenever its socket is ready, its deadline comes or
//! a message is pushed to it. A session that ended lingers (its last bytes sent, its writing
//! side shut) until the client closes too, at most [`LINGER`].

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use framelink_core::framing::{Cobs, Encoder, LengthDelimited};
use framelink_core::session::{CloseReason, Session};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::client::{Client, Conn, Phase, Shared, Step, write_some};
use super::timers::Timers;
use super::{Control, EventContext, Handler, LINGER, MAX_REFUSING, PeerInfo, Reply, Served};
use crate::clock::StdClock;
use crate::conn::{Framed, zeroed};
use crate::{LinkError, Transport};

/// The token of the loop's [`Waker`].
const WAKER: Token = Token(usize::MAX);
/// Listener `i` has the token `LISTENER - i`.
const LISTENER: usize = usize::MAX - 1;
/// Due deadlines handled before the loop looks at its sockets again (the rest wait for the
/// next turn, which does not wait): a burst of keepalives does not hold up answers.
const TIMERS_PER_TURN: usize = 4;
/// Connections accepted per readiness event of a listener before the loop turns to the others.
const ACCEPTS_PER_TURN: usize = 64;
/// Buffer for each read, shared by the loop's connections: several largest frames, so that a
/// frame usually lies whole in one read and is decoded where it lies.
const READ_LEN: usize = 256 * 1024;
/// Largest frames per write.
const FRAMES_PER_WRITE: usize = 4;
/// How long to wait before accepting again when the process is out of descriptors and has no
/// spare left.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Readiness events taken per wait.
const EVENTS: usize = 1024;

/// What other threads ask of a loop (or of a UDP socket's thread, which takes the same
/// commands but for `Adopt`).
pub(super) enum Command {
    /// Serve this accepted connection (its client slot is reserved and counted).
    Adopt(TcpStream, Transport),
    /// Queue a message for the client with this id, if this loop serves it.
    Send(u64, Arc<[u8]>),
    /// Queue a message for every connected client of this loop.
    Broadcast(Arc<[u8]>),
}

/// How other threads reach a loop: its commands, its waker, and how many connections it holds.
#[derive(Clone, Debug)]
pub(super) struct LoopHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    load: Arc<AtomicUsize>,
}

impl LoopHandle {
    /// Hands `command` to the loop and wakes it; `false` if the loop is gone.
    pub(super) fn post(&self, command: Command) -> bool {
        self.commands.send(command).is_ok() && self.waker.wake().is_ok()
    }

    /// Wakes the loop (to see that the server stops).
    pub(super) fn wake(&self) {
        let _ = self.waker.wake();
    }
}

/// A loop's poll and command queue, made before its thread starts so that every loop can be
/// handed every other's [`LoopHandle`] (a UDP socket's thread is made of the same parts).
pub(super) struct LoopParts {
    pub(super) poll: Poll,
    pub(super) commands: Receiver<Command>,
    handle: LoopHandle,
}

impl LoopParts {
    pub(super) fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (sender, commands) = channel();
        let handle = LoopHandle { commands: sender, waker, load: Arc::new(AtomicUsize::new(0)) };
        Ok(Self { poll, commands, handle })
    }

    pub(super) fn handle(&self) -> LoopHandle {
        self.handle.clone()
    }
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// One event loop: its connections, listeners and deadlines.
pub(super) struct EventLoop<H> {
    poll: Poll,
    registry: Registry,
    commands: Receiver<Command>,
    loops: Vec<LoopHandle>,
    listeners: Vec<(TcpListener, Transport)>,
    /// A descriptor held in reserve: when the process has no other left, `accept` fails
    /// (EMFILE) and the client would wait unanswered in the backlog; giving the spare up lets
    /// the loop take the client and refuse it with ERROR Busy.
    spare: Option<File>,
    accept_again: Option<StdInstant>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
    timers: Timers<(usize, u32)>,
    /// Connections to come back to (input left after their read budget): slot and generation.
    ready: VecDeque<(usize, u32)>,
    shared: Shared<H>,
}

impl<H: Handler> EventLoop<H> {
    /// A loop that accepts on `listeners` (clones of the server's, possibly none) and serves what
    /// it is handed; `loops[index]` is its own handle.
    pub(super) fn new(
        parts: LoopParts,
        index: usize,
        loops: Vec<LoopHandle>,
        listeners: Vec<(std::net::TcpListener, Transport)>,
        control: Arc<Control>,
        handler: Arc<H>,
    ) -> io::Result<Self> {
        let registry = parts.poll.registry().try_clone()?;
        let mut mio_listeners = Vec::with_capacity(listeners.len());
        for (i, (listener, transport)) in listeners.into_iter().enumerate() {
            listener.set_nonblocking(true)?;
            let mut listener = TcpListener::from_std(listener);
            registry.register(&mut listener, Token(LISTENER - i), Interest::READABLE)?;
            mio_listeners.push((listener, transport));
        }
        let link = &control.config.link;
        let frame = LengthDelimited::max_encoded_len(link.packet_len(Transport::Tcp))
            .max(Cobs::max_encoded_len(link.packet_len(Transport::TcpCobs)) + Cobs::PREAMBLE.len());
        let shared = Shared {
            control,
            handler,
            clock: StdClock::new(),
            read_buf: zeroed(READ_LEN),
            write_buf: zeroed(FRAMES_PER_WRITE * frame),
            index,
            by_id: HashMap::new(),
        };
        Ok(Self {
            poll: parts.poll,
            registry,
            commands: parts.commands,
            loops,
            listeners: mio_listeners,
            spare: spare_descriptor(),
            accept_again: None,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            timers: Timers::default(),
            ready: VecDeque::new(),
            shared,
        })
    }

    /// Serves until the server stops and every connection has closed (at most [`LINGER`] and a
    /// second after the stop).
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS);
        let mut stop_by: Option<StdInstant> = None;
        loop {
            if stop_by.is_none() && self.shared.control.stopping() {
                self.begin_stop();
                stop_by = Some(StdInstant::now() + LINGER + Duration::from_secs(1));
            }
            if let Some(by) = stop_by
                && (self.live == 0 || StdInstant::now() >= by)
            {
                break;
            }
            let deadline = [self.timers.next(), self.accept_again, stop_by].into_iter().flatten().min();
            let timeout = if self.ready.is_empty() {
                deadline.map(|at| at.saturating_duration_since(StdInstant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                break;
            }
            for event in &events {
                match event.token() {
                    WAKER => {}
                    Token(token) if token > LISTENER - self.listeners.len() => self.accept(LISTENER - token),
                    Token(slot) => {
                        if let Some(Slot { conn: Some(conn), .. }) = self.slots.get_mut(slot) {
                            let closed = event.is_read_closed() || event.is_error();
                            conn.readable |= event.is_readable() || closed;
                            conn.read_closed |= closed;
                        }
                        self.drive(slot);
                    }
                }
            }
            self.run_commands();
            for _ in 0..self.ready.len() {
                let Some((slot, generation)) = self.ready.pop_front() else { break };
                if self.slots.get(slot).is_some_and(|s| s.generation == generation && s.conn.is_some()) {
                    self.drive(slot);
                }
            }
            self.run_timers();
            if self.accept_again.is_some_and(|at| at <= StdInstant::now()) {
                self.accept_again = None;
                for i in 0..self.listeners.len() {
                    self.accept(i);
                }
            }
        }
        for slot in 0..self.slots.len() {
            self.remove(slot);
        }
    }

    /// Stops accepting and closes every session (CLOSE to each client).
    fn begin_stop(&mut self) {
        for (mut listener, _) in self.listeners.drain(..) {
            let _ = self.registry.deregister(&mut listener);
        }
        let now = self.shared.clock.now();
        for slot in 0..self.slots.len() {
            match &mut self.slots[slot].conn {
                Some(Conn { phase: Phase::Serving(client), .. }) => {
                    client.framed.session_mut().close(now);
                    self.drive(slot);
                    self.finish(slot, Ok(CloseReason::Local));
                    self.drive(slot);
                }
                // Nothing said yet, nothing to say goodbye to.
                Some(Conn { phase: Phase::Accepted { .. }, .. }) => self.remove(slot),
                _ => {}
            }
        }
    }

    fn run_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Adopt(stream, transport) => {
                    if self.shared.control.stopping() {
                        self.shared.control.release();
                        self.own_load().fetch_sub(1, Ordering::Relaxed);
                    } else {
                        self.adopt(stream, transport);
                    }
                }
                Command::Send(id, message) => {
                    if let Some(&slot) = self.shared.by_id.get(&id) {
                        self.queue(slot, &message);
                    }
                }
                Command::Broadcast(message) => {
                    let slots: Vec<usize> = self.shared.by_id.values().copied().collect();
                    for slot in slots {
                        self.queue(slot, &message);
                    }
                }
            }
        }
    }

    /// Queues a pushed message for the client in `slot` (if it is connected and takes a message
    /// that large) and sends what can go.
    fn queue(&mut self, slot: usize, message: &[u8]) {
        let Some(Conn { phase: Phase::Serving(client), .. }) = &mut self.slots[slot].conn else { return };
        let Client { framed, served } = &mut **client;
        if served.connected {
            let at = EventContext::of(framed.session(), served.own_max);
            let mut reply = Reply { outbox: &mut served.outbox, state: at.state, max: at.max };
            if reply.send(message).is_ok() {
                self.drive(slot);
            }
        }
    }

    fn run_timers(&mut self) {
        let now = StdInstant::now();
        let mut handled = 0;
        while handled < TIMERS_PER_TURN
            && let Some((at, (slot, generation))) = self.timers.pop_due(now)
        {
            let Some(Slot { generation: current, conn: Some(conn) }) = self.slots.get_mut(slot) else {
                continue;
            };
            if *current != generation || conn.armed != Some(at) {
                continue;
            }
            conn.armed = None;
            handled += 1;
            self.drive(slot);
        }
    }

    fn own_load(&self) -> &AtomicUsize {
        &self.loops[self.shared.index].load
    }

    /// Accepts what waits on listener `i`, a bounded number per call.
    fn accept(&mut self, i: usize) {
        let control = Arc::clone(&self.shared.control);
        let _accepting = control.accepting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.spare.is_none() {
            self.spare = spare_descriptor();
        }
        for _ in 0..ACCEPTS_PER_TURN {
            let Some((listener, transport)) = self.listeners.get(i) else { return };
            let transport = *transport;
            match listener.accept() {
                Ok((stream, _)) => self.take(stream, transport),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we took it.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                // Out of file descriptors (or memory): refuse the client with the spare
                // descriptor, or, with none left, try again a little later.
                Err(_) => match self.spare.take() {
                    Some(file) => {
                        drop(file);
                        if let Ok((stream, _)) = listener.accept() {
                            refuse_now(stream, transport, &self.shared.control);
                        }
                        self.spare = spare_descriptor();
                    }
                    None => {
                        self.accept_again = Some(StdInstant::now() + ACCEPT_RETRY);
                        return;
                    }
                },
            }
        }
        // More may wait: the listener will not say so again.
        self.accept_again = Some(StdInstant::now());
    }

    /// Takes a client in: refuses it at the client limit, or hands it to the least loaded loop.
    fn take(&mut self, stream: TcpStream, transport: Transport) {
        let control = &self.shared.control;
        if control.stopping() {
            return;
        }
        if !control.reserve() {
            self.refuse(stream, transport);
            return;
        }
        control.accepted.fetch_add(1, Ordering::Relaxed);
        let index = self.shared.index;
        let target = (0..self.loops.len())
            .min_by_key(|&i| (self.loops[i].load.load(Ordering::Relaxed), i != index))
            .unwrap_or(index);
        self.loops[target].load.fetch_add(1, Ordering::Relaxed);
        if target == index {
            self.adopt(stream, transport);
        } else if !self.loops[target].post(Command::Adopt(stream, transport)) {
            self.loops[target].load.fetch_sub(1, Ordering::Relaxed);
            self.shared.control.release();
        }
    }

    /// Answers a client over the limit with ERROR Busy, then lingers so that the ERROR is not
    /// lost to a reset. Beyond [`MAX_REFUSING`] at once, clients are dropped without one.
    fn refuse(&mut self, stream: TcpStream, transport: Transport) {
        let control = &self.shared.control;
        let frame = control.refusal(transport, 0);
        if control.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
            control.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let until = StdInstant::now() + LINGER;
        let conn = Conn::new(stream, Phase::Lingering { until, shut: false, refusal: true });
        match self.insert(conn) {
            Some(slot) => {
                if let Some(conn) = &mut self.slots[slot].conn {
                    conn.out = frame;
                }
                self.drive(slot);
            }
            None => {
                self.shared.control.refusing.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Starts serving an accepted client whose slot is reserved: it holds only its socket until
    /// it says something.
    fn adopt(&mut self, stream: TcpStream, transport: Transport) {
        let _ = stream.set_nodelay(true);
        let mut conn = Conn::new(stream, Phase::Accepted { transport, at: StdInstant::now() });
        // Registering reports input that is already there.
        conn.readable = false;
        match self.insert(conn) {
            Some(slot) => self.drive(slot),
            None => {
                self.shared.control.release();
                self.own_load().fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Gives the accepted connection in `slot` its session; `false` if it cannot be served.
    fn start_session(&mut self, slot: usize, transport: Transport, at: StdInstant) -> bool {
        let control = Arc::clone(&self.shared.control);
        let Some(conn) = &mut self.slots[slot].conn else { return false };
        let (Ok(addr), Ok(local)) = (conn.stream.peer_addr(), conn.stream.local_addr()) else { return false };
        let link = &control.config.link;
        let started = self.shared.clock.from_std(at);
        let session = link.keyed(Session::server(
            link.server_session_config(transport),
            Vec::new(),
            Vec::new(),
            started,
        ));
        let framed = Framed::new(transport, session, link.packet_len(transport));
        let id = control.next_id();
        let info = PeerInfo { id, addr, local, transport, session_id: 0, port: None };
        let served = Served::new(info, &control.config);
        conn.phase = Phase::Serving(Box::new(Client { framed, served }));
        self.shared.by_id.insert(id, slot);
        control.clients.lock().unwrap_or_else(PoisonError::into_inner).insert(id, self.shared.index);
        true
    }

    /// Registers `conn` and gives it a slot; `None` (the connection dropped) if it cannot be
    /// registered.
    fn insert(&mut self, mut conn: Conn) -> Option<usize> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot { generation: 0, conn: None });
            self.slots.len() - 1
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self.registry.register(&mut conn.stream, Token(slot), interest).is_err() {
            self.free.push(slot);
            return None;
        }
        let entry = &mut self.slots[slot];
        entry.generation = entry.generation.wrapping_add(1);
        entry.conn = Some(conn);
        self.live += 1;
        Some(slot)
    }

    /// Drops the connection in `slot`, settling what it held: a client slot, a refusal, its
    /// share of the loop's load, its registrations.
    fn remove(&mut self, slot: usize) {
        let Some(mut conn) = self.slots.get_mut(slot).and_then(|s| s.conn.take()) else { return };
        let _ = self.registry.deregister(&mut conn.stream);
        self.free.push(slot);
        self.live -= 1;
        match conn.phase {
            Phase::Accepted { .. } => {
                self.shared.control.release();
                self.own_load().fetch_sub(1, Ordering::Relaxed);
            }
            Phase::Serving(client) => {
                self.shared.control.release();
                self.forget(client.served.info.id);
                self.own_load().fetch_sub(1, Ordering::Relaxed);
            }
            Phase::Lingering { refusal: true, .. } => {
                self.shared.control.refusing.fetch_sub(1, Ordering::AcqRel);
            }
            Phase::Lingering { refusal: false, .. } => {
                self.own_load().fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Unlists a client that can no longer be sent to.
    fn forget(&mut self, id: u64) {
        self.shared.by_id.remove(&id);
        self.shared.control.clients.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// Ends the session of the connection in `slot` (it lingers from now on): gives its client
    /// slot back, counts why it ended and tells the handler.
    fn finish(&mut self, slot: usize, end: Result<CloseReason, LinkError>) {
        let Some(conn) = &mut self.slots[slot].conn else { return };
        let until = StdInstant::now() + LINGER;
        let phase =
            std::mem::replace(&mut conn.phase, Phase::Lingering { until, shut: false, refusal: false });
        let Phase::Serving(client) = phase else {
            conn.phase = phase;
            return;
        };
        let control = Arc::clone(&self.shared.control);
        control.release();
        self.forget(client.served.info.id);
        if client.served.connected {
            let handler = &self.shared.handler;
            let info = &client.served.info;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handler.on_close(info, end.as_ref().map(|reason| *reason));
            }));
        }
    }

    /// Does everything due on the connection in `slot`: writes, reads, timers, the handler's
    /// events; then drops it, or arms its next deadline.
    fn drive(&mut self, slot: usize) {
        let Some(Slot { generation, conn: Some(conn) }) = self.slots.get_mut(slot) else { return };
        let generation = *generation;
        if let Phase::Accepted { transport, at } = conn.phase {
            let due = at + self.shared.control.config.link.handshake_timeout <= StdInstant::now();
            if !conn.readable && !due {
                let deadline = conn.deadline(&self.shared);
                if let Some(deadline) = deadline {
                    self.timers.arm(&mut conn.armed, deadline, (slot, generation));
                }
                return;
            }
            if !self.start_session(slot, transport, at) {
                return self.remove(slot);
            }
        }
        let Some(conn) = &mut self.slots[slot].conn else { return };
        let step = conn.step(&mut self.shared);
        match step {
            Step::Keep => {}
            Step::Ended(end) => {
                if let Ok(reason) = &end {
                    self.shared.control.count_end(reason);
                }
                self.finish(slot, end);
                // Its last bytes, and the end of the stream.
                if let Some(conn) = &mut self.slots[slot].conn
                    && matches!(conn.step(&mut self.shared), Step::Drop)
                {
                    return self.remove(slot);
                }
            }
            Step::Failed(error) => {
                self.finish(slot, Err(error));
                return self.remove(slot);
            }
            Step::Drop => return self.remove(slot),
        }
        let Some(conn) = &mut self.slots[slot].conn else { return };
        if conn.unread {
            conn.unread = false;
            self.ready.push_back((slot, generation));
        }
        if let Some(deadline) = conn.deadline(&self.shared) {
            self.timers.arm(&mut conn.armed, deadline, (slot, generation));
        }
    }
}

/// Answers a client with ERROR Busy and closes at once (no linger: its descriptor is the spare,
/// wanted back at once). What the client sent so far is read first, so that closing does not
/// reset the connection and lose the ERROR.
fn refuse_now(mut stream: TcpStream, transport: Transport, control: &Control) {
    let frame = control.refusal(transport, 0);
    if write_some(&mut stream, &frame).ok() != Some(frame.len()) {
        return;
    }
    let mut sink = [0u8; 512];
    for _ in 0..16 {
        if !matches!(stream.read(&mut sink), Ok(1..)) {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// A descriptor to keep in reserve (see [`EventLoop::accept`]).
fn spare_descriptor() -> Option<File> {
    File::open(if cfg!(windows) { "NUL" } else { "/dev/null" }).ok()
}
