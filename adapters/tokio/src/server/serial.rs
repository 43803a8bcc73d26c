//! Serving a serial port: one peer, sessions one after another, as firmware serves its UART.
//!
//! The port is opened at bind, so that a wrong path fails there. Each session starts with the
//! peer's first bytes (its HELLO) and runs as a TCP client's does, in a task of its own; when
//! it ends (a close, the idle timeout, a port error) the port is opened again for the next
//! one. A port that cannot be opened (a USB board that resets, a cable pulled out) is tried
//! again after [`REOPEN_FIRST`], then twice as long each time up to [`REOPEN_MAX`], until it
//! opens or the server stops.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use framelink_core::wire::ErrorCode;
use framelink_std::{Addr, LinkError, Transport};
use tokio::sync::watch;

use super::{REFUSAL_LINGER, Shared, drain_time, serve_client, stopped};
use crate::Link;
use crate::io::Io;
use crate::serial;

/// The first wait before opening a port that failed or went away.
const REOPEN_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries to open it.
const REOPEN_MAX: Duration = Duration::from_secs(2);

/// A serial port opened at bind, to be served.
pub(super) struct Port {
    io: Io,
    addr: Addr,
}

impl Port {
    /// Opens the port of `addr`; the error names the port and the cause.
    pub(super) fn open(addr: Addr) -> io::Result<Self> {
        match serial::open(&addr) {
            Ok(io) => Ok(Self { io, addr }),
            Err(LinkError::Io(error)) => Err(error),
            Err(other) => Err(io::Error::other(format!("{addr}: {other}"))),
        }
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// Serves `port` one session at a time until the server stops; the live session, if any, then
/// closes gracefully (at most [`drain_time`]).
pub(super) async fn serve_port<H, F>(port: Port, shared: Arc<Shared>, handler: Arc<H>)
where
    H: Fn(Link) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let Port { io, addr } = port;
    let mut stop = shared.stop.clone();
    let mut opened = Some(io);
    // How long to wait before opening the port again: none after a session that connected.
    let mut wait = Duration::ZERO;
    loop {
        let mut io = match opened.take() {
            Some(io) => io,
            None => match reopen(&addr, &mut stop, wait).await {
                Some(io) => io,
                None => return,
            },
        };
        wait = REOPEN_FIRST;
        // The peer's first bytes start a session; the handshake timeout runs from there.
        let ready = tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            ready = io.readable() => ready,
        };
        if ready.is_err() {
            continue;
        }
        let Some(slot) = shared.counters.take_slot() else {
            shared.counters.refused();
            if let Ok(link) = shared.link(io, Transport::Serial) {
                let refusal = link.refuse(ErrorCode::Busy, shared.limit());
                let _ = tokio::time::timeout(REFUSAL_LINGER, refusal).await;
            }
            continue;
        };
        let client = serve_client(io, Transport::Serial, Arc::clone(&shared), Arc::clone(&handler), slot);
        let mut session = tokio::spawn(client);
        tokio::select! {
            ended = &mut session => {
                if matches!(ended, Ok(true)) {
                    wait = Duration::ZERO;
                }
            }
            () = stopped(&mut stop) => {
                // The link closes its session by itself at the stop; give it the time to.
                if tokio::time::timeout(drain_time(&shared), &mut session).await.is_err() {
                    session.abort();
                }
                return;
            }
        }
    }
}

/// Opens the port at `addr` after `wait` (at once for none), then waits twice as long before
/// each new try, from [`REOPEN_FIRST`] up to [`REOPEN_MAX`]; `None` when the server stops first.
async fn reopen(addr: &Addr, stop: &mut watch::Receiver<bool>, mut wait: Duration) -> Option<Io> {
    loop {
        tokio::select! {
            biased;
            () = stopped(stop) => return None,
            () = tokio::time::sleep(wait) => {}
        }
        if let Ok(io) = serial::open(addr) {
            return Some(io);
        }
        wait = (wait * 2).clamp(REOPEN_FIRST, REOPEN_MAX);
    }
}
