//! The server's client slots and counters, shared by its tasks and reported by STATS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use framelink_core::service::ServerCounters;
use framelink_core::session::{CloseReason, Timeout};
use framelink_core::wire::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Client slots (one permit per client being served, handshakes included) and what happened
/// to the clients.
#[derive(Debug)]
pub(crate) struct Counters {
    slots: Arc<Semaphore>,
    max: usize,
    accepted: AtomicU64,
    refused: AtomicU64,
    handshake_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    too_large: AtomicU64,
    protocol_errors: AtomicU64,
    stray_datagrams: AtomicU64,
}

impl Counters {
    /// `max` slots, all free.
    pub(crate) fn new(max: usize) -> Self {
        let max = max.min(Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            handshake_timeouts: AtomicU64::new(0),
            idle_timeouts: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            stray_datagrams: AtomicU64::new(0),
        }
    }

    /// A client slot, held until the client's task ends; `None` at the client limit.
    pub(crate) fn take_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// A client completed its handshake.
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A client was refused at the client limit.
    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// `count` more datagrams had no session to go to.
    pub(crate) fn stray(&self, count: u64) {
        self.stray_datagrams.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts a session that ended at a limit.
    pub(crate) fn ended(&self, reason: CloseReason) {
        let counter = match reason {
            CloseReason::TimedOut(Timeout::Handshake) => &self.handshake_timeouts,
            CloseReason::TimedOut(Timeout::Idle) => &self.idle_timeouts,
            CloseReason::LocalError {
                code: ErrorCode::MessageTooLarge | ErrorCode::PayloadTooLarge, ..
            } => &self.too_large,
            CloseReason::LocalError { .. } => &self.protocol_errors,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> ServerCounters {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut counters = ServerCounters::default();
        counters.clients = (self.max - self.slots.available_permits()) as u64;
        counters.accepted = load(&self.accepted);
        counters.refused_busy = load(&self.refused);
        counters.handshake_timeouts = load(&self.handshake_timeouts);
        counters.idle_timeouts = load(&self.idle_timeouts);
        counters.too_large = load(&self.too_large);
        counters.protocol_errors = load(&self.protocol_errors);
        counters.stray_datagrams = load(&self.stray_datagrams);
        counters
    }
}
