//! Serving a serial port: one peer, sessions one after another, as firmware serves its UART.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as StdInstant};

use framelink_core::session::CloseReason;

use super::{Control, Dispatch, Handler, LINGER, Outbox, PeerInfo, Served, dispatch};
use crate::clock::StdClock;
use crate::link::Socket;
use crate::serial::SerialPort;
use crate::{Addr, Link, LinkError, Transport};

/// The longest a read waits before the thread looks at the stop flag (a serial port cannot be
/// woken from another thread as a socket can).
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The first wait before opening a port that went away again.
const REOPEN_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries to open it.
const REOPEN_MAX: Duration = Duration::from_secs(2);

/// Serves `port` until the server stops or the port goes away: then, with
/// [`ServerConfig::reopen_serial`](crate::ServerConfig::reopen_serial), waits for it to come
/// back and serves it again; without, records it as the listener's failure.
pub(super) fn serve<H: Handler>(mut port: SerialPort, addr: Addr, control: &Control, handler: &H) {
    loop {
        let Some(error) = serve_port(port, control, handler) else {
            return;
        };
        if !control.config.reopen_serial {
            return fail(control, addr, error);
        }
        handler.on_serial_port(&addr, Err(&error));
        match reopen(&addr, control) {
            Some(again) => {
                handler.on_serial_port(&addr, Ok(()));
                port = again;
            }
            None => return,
        }
    }
}

/// Opens the port at `addr` once it is back, trying after [`REOPEN_FIRST`], then twice as long
/// each time up to [`REOPEN_MAX`]; `None` when the server stops first.
fn reopen(addr: &Addr, control: &Control) -> Option<SerialPort> {
    let mut backoff = REOPEN_FIRST;
    loop {
        let until = StdInstant::now() + backoff;
        while StdInstant::now() < until {
            if control.stopping() {
                return None;
            }
            std::thread::sleep(STOP_CHECK.min(until.saturating_duration_since(StdInstant::now())));
        }
        if let Ok(port) = SerialPort::open(&addr.host, &addr.serial_settings()) {
            return Some(port);
        }
        backoff = (backoff * 2).min(REOPEN_MAX);
    }
}

/// Serves `port` until the server stops (`None`) or the port fails (its error). A session that
/// ends leaves the session waiting for the next HELLO; a HELLO with a new session id ends the
/// session before it (the core reports `CloseReason::Reset`).
fn serve_port<H: Handler>(port: SerialPort, control: &Control, handler: &H) -> Option<LinkError> {
    let config = &control.config.link;
    let clock = StdClock::new();
    let session = config.server_session(Transport::Serial, &clock);
    let name = port.name().to_owned();
    let mut link = match Link::new(Socket::Serial(port), Transport::Serial, config, session, clock) {
        Ok(link) => link,
        Err(error) => return Some(LinkError::Io(error)),
    };
    let (peer, local) = (link.peer_addr(), link.local_addr());
    let id = control.next_id();
    let info =
        PeerInfo { id, addr: peer, local, transport: Transport::Serial, session_id: 0, port: Some(name) };
    let mut served = Served::new(info, &control.config);
    let mut counter = Counter::default();
    loop {
        let now = link.now();
        let outcome = dispatch(handler, link.framed_mut(), &mut served, control, now);
        match outcome {
            Dispatch::Wait => {}
            Dispatch::Ended(reason) => {
                control.count_end(&reason);
                if std::mem::take(&mut served.connected) {
                    handler.on_close(&served.info, Ok(reason));
                }
                served.outbox = Outbox::default();
            }
            Dispatch::Panicked => {
                // The handler failed this session: end it; the next HELLO starts another.
                served.connected = false;
                served.outbox = Outbox::default();
                link.framed_mut().session_mut().close(now);
            }
        }
        counter.update(control, &served);
        if control.stopping() {
            goodbye(&mut link, &mut served, handler);
            counter.release(control);
            return None;
        }
        let until = StdInstant::now() + STOP_CHECK;
        let result = if link.framed_mut().session().is_closed() {
            link.wait_input(until)
        } else {
            link.round(Some(until))
        };
        if let Err(error) = result {
            if served.connected {
                handler.on_close(&served.info, Err(&error));
            }
            counter.release(control);
            return Some(error);
        }
    }
}

/// The server's counters for the sessions on one port.
#[derive(Debug, Default)]
struct Counter {
    /// The session id last counted as accepted.
    counted: Option<u32>,
    /// Whether this port holds a slot in `active`.
    active: bool,
}

impl Counter {
    fn update(&mut self, control: &Control, served: &Served) {
        if served.connected && self.counted != Some(served.info.session_id) {
            self.counted = Some(served.info.session_id);
            control.accepted.fetch_add(1, Ordering::Relaxed);
        }
        if served.connected != self.active {
            self.active = served.connected;
            if self.active {
                control.active.fetch_add(1, Ordering::AcqRel);
            } else {
                control.release();
            }
        }
    }

    fn release(&mut self, control: &Control) {
        if std::mem::take(&mut self.active) {
            control.release();
        }
    }
}

/// At shutdown: closes a connected session gracefully, waiting at most [`LINGER`].
fn goodbye<H: Handler>(link: &mut Link, served: &mut Served, handler: &H) {
    if !std::mem::take(&mut served.connected) {
        return;
    }
    let until = StdInstant::now() + LINGER;
    let now = link.now();
    link.framed_mut().session_mut().close(now);
    while !link.framed_mut().session().is_closed() && StdInstant::now() < until {
        if link.round(Some(until)).is_err() {
            break;
        }
    }
    handler.on_close(&served.info, Ok(CloseReason::Local));
}

/// Records why the listener on `addr` stopped.
fn fail(control: &Control, addr: Addr, error: LinkError) {
    control.failures.lock().unwrap_or_else(PoisonError::into_inner).push((addr, error));
}
