//! A userspace impairment relay for UDP: [`Relay`], its [`RelayConfig`], and the running
//! [`RelayHandle`] with its [`RelayStats`]. The public documentation (design, example, limits) is on
//! [`Relay`].

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

/// Token of the listening socket.
const LISTENER: Token = Token(0);
/// Token of the shutdown waker.
const WAKER: Token = Token(1);
/// First token of a client's socket.
const FIRST_CLIENT: usize = 2;
/// Largest datagram read (the largest UDP payload fits).
const DATAGRAM_READ: usize = 65536;
/// Datagrams read from one socket before the others get a turn (and due copies are sent).
const READ_BUDGET: usize = 64;
/// The longest the loop sleeps without a reason; a fallback for a lost wake-up only.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// What a queued copy costs beyond its bytes, in [`Relay::max_queued_bytes`] accounting.
const COPY_OVERHEAD: usize = 64;
/// Salt of the downstream random stream, so that the two directions never draw alike.
const DOWNSTREAM_SALT: u64 = 0x6A09_E667_F3BC_C909;

/// The impairments of one direction of a [`Relay`]. Every default is zero: a transparent relay.
///
/// Each setting maps onto a flag of `framelink relay`:
///
/// | setter | flag | what it does to each datagram |
/// |---|---|---|
/// | [`loss`](Self::loss) | `--loss P` | dropped with probability P |
/// | [`duplicate`](Self::duplicate) | `--dup P` | a second copy sent, with probability P |
/// | [`reorder`](Self::reorder) | `--reorder P` | each copy held back, with probability P |
/// | [`delay`](Self::delay) | `--delay MS` | each copy sent this much later |
/// | [`jitter`](Self::jitter) | `--jitter MS` | ± a uniform random part of this, per copy |
/// | [`corrupt`](Self::corrupt) | `--corrupt P` | one bit of each copy flipped, with probability P |
/// | [`seed`](Self::seed) | `--seed N` | the random stream |
///
/// ```
/// use std::time::Duration;
/// use framelink_std::{RelayConfig, RelayConfigError};
///
/// let config = RelayConfig::new().loss(0.1).duplicate(0.05).reorder(0.1).delay(Duration::from_millis(5)).seed(42);
/// assert_eq!(config.validate(), Ok(()));
/// assert_eq!(config.loss_value(), 0.1);
/// assert!(matches!(RelayConfig::new().loss(1.5).validate(), Err(RelayConfigError::Probability { name: "loss", .. })));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RelayConfig {
    loss: f64,
    duplicate: f64,
    reorder: f64,
    corrupt: f64,
    delay: Duration,
    jitter: Duration,
    seed: u64,
}

impl RelayConfig {
    /// The longest [`delay`](Self::delay) or [`jitter`](Self::jitter) accepted: one hour.
    pub const MAX_DELAY: Duration = Duration::from_secs(3600);
    /// The base of a reorder hold-back when the [`delay`](Self::delay) is shorter: 1 ms.
    pub const MIN_REORDER_HOLD: Duration = Duration::from_millis(1);

    /// No impairment at all, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The probability (0.0 to 1.0) that a datagram is dropped; a dropped datagram has no copy.
    pub fn loss(mut self, probability: f64) -> Self {
        self.loss = probability;
        self
    }

    /// The probability (0.0 to 1.0) that a datagram that was not lost is sent twice. Each copy
    /// gets its own delay, jitter, reorder and corruption draws.
    pub fn duplicate(mut self, probability: f64) -> Self {
        self.duplicate = probability;
        self
    }

    /// The probability (0.0 to 1.0) that a copy is held back by an extra delay drawn uniformly
    /// from `[d, 4d]`, where `d` is the [`delay`](Self::delay), or
    /// [`MIN_REORDER_HOLD`](Self::MIN_REORDER_HOLD) if that is longer. Datagrams that arrive
    /// within the hold-back overtake it; a lone datagram is only delayed.
    pub fn reorder(mut self, probability: f64) -> Self {
        self.reorder = probability;
        self
    }

    /// The probability (0.0 to 1.0) that one bit, drawn uniformly, of a copy is flipped (to test
    /// a receiver's CRC). An empty datagram has no bit to flip and is never corrupted.
    pub fn corrupt(mut self, probability: f64) -> Self {
        self.corrupt = probability;
        self
    }

    /// How much later than its arrival each copy is sent (at most [`MAX_DELAY`](Self::MAX_DELAY)).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// A uniform random offset in `[-jitter, +jitter]` added to each copy's
    /// [`delay`](Self::delay); a delay that would be negative is zero. Jitter larger than the
    /// gap between datagrams reorders them too (at most [`MAX_DELAY`](Self::MAX_DELAY)).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The seed of the random stream: the same seed, settings and order of datagrams give the
    /// same decisions. Each datagram takes the same number of draws whatever the settings, so
    /// the decisions for the n-th datagram depend on the seed and n only. The downstream
    /// direction draws from a stream derived from its seed, so the two directions differ even
    /// when they share a config.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The [`loss`](Self::loss) probability.
    pub fn loss_value(&self) -> f64 {
        self.loss
    }

    /// The [`duplicate`](Self::duplicate) probability.
    pub fn duplicate_value(&self) -> f64 {
        self.duplicate
    }

    /// The [`reorder`](Self::reorder) probability.
    pub fn reorder_value(&self) -> f64 {
        self.reorder
    }

    /// The [`corrupt`](Self::corrupt) probability.
    pub fn corrupt_value(&self) -> f64 {
        self.corrupt
    }

    /// The [`delay`](Self::delay).
    pub fn delay_value(&self) -> Duration {
        self.delay
    }

    /// The [`jitter`](Self::jitter).
    pub fn jitter_value(&self) -> Duration {
        self.jitter
    }

    /// The [`seed`](Self::seed).
    pub fn seed_value(&self) -> u64 {
        self.seed
    }

    /// Checks every setting; [`Relay::bind`] does this too. The first bad setting is named.
    pub fn validate(&self) -> Result<(), RelayConfigError> {
        let probabilities = [
            ("loss", self.loss),
            ("dup", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ];
        for (name, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(RelayConfigError::Probability { name, value });
            }
        }
        for (name, value) in [("delay", self.delay), ("jitter", self.jitter)] {
            if value > Self::MAX_DELAY {
                return Err(RelayConfigError::TooLong { name, value });
            }
        }
        Ok(())
    }
}

/// A [`RelayConfig`] setting out of range. `name` is the setting's `framelink relay` flag
/// without its dashes: `loss`, `dup`, `reorder`, `corrupt`, `delay`, `jitter`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum RelayConfigError {
    /// A probability outside 0.0 to 1.0 (or not a number).
    Probability {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A delay or jitter longer than [`RelayConfig::MAX_DELAY`].
    TooLong {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: Duration,
    },
}

impl fmt::Display for RelayConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Probability { name, value } => {
                write!(f, "--{name} must be a probability from 0 to 1, not {value}")
            }
            Self::TooLong { name, value } => {
                write!(f, "--{name} must be at most {} s, not {value:?}", RelayConfig::MAX_DELAY.as_secs())
            }
        }
    }
}

impl std::error::Error for RelayConfigError {}

impl From<RelayConfigError> for io::Error {
    fn from(error: RelayConfigError) -> Self {
        Self::new(io::ErrorKind::InvalidInput, error)
    }
}

/// Counters of one direction of a relay.
///
/// Every datagram received is either dropped or becomes one copy, or two when duplicated; each
/// copy is then forwarded, fails to send, overflows the queue, or is still queued:
/// `forwarded + send_errors + overflowed + queued == received - dropped + duplicated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectionStats {
    /// Datagrams read and given to the impairments.
    pub received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Datagrams dropped by [`loss`](RelayConfig::loss).
    pub dropped: u64,
    /// Second copies made by [`duplicate`](RelayConfig::duplicate).
    pub duplicated: u64,
    /// Copies held back by [`reorder`](RelayConfig::reorder).
    pub reordered: u64,
    /// Copies with one bit flipped by [`corrupt`](RelayConfig::corrupt).
    pub corrupted: u64,
    /// Copies sent (the kernel took them; it may still drop them at a full receiver).
    pub forwarded: u64,
    /// Their bytes.
    pub bytes_forwarded: u64,
    /// Copies dropped because the queue held [`Relay::max_queued_bytes`].
    pub overflowed: u64,
    /// Copies whose send failed (for example a full send buffer) or whose client was gone.
    pub send_errors: u64,
}

/// Counters of a relay, per direction and overall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// Client to target.
    pub upstream: DirectionStats,
    /// Target to client.
    pub downstream: DirectionStats,
    /// Copies waiting for their time, both directions.
    pub queued: usize,
    /// Clients with a socket to the target now.
    pub clients: usize,
    /// Clients forgotten after [`Relay::idle_timeout`].
    pub clients_expired: u64,
    /// Datagrams from new clients refused: [`Relay::max_clients`] were mapped, or no socket to
    /// the target could be opened. Not counted in `upstream.received`.
    pub refused: u64,
    /// Receive errors other than "would block", such as the target's port being unreachable.
    pub errors: u64,
}

impl RelayStats {
    fn direction(&mut self, direction: Direction) -> &mut DirectionStats {
        match direction {
            Direction::Up => &mut self.upstream,
            Direction::Down => &mut self.downstream,
        }
    }
}

/// A userspace impairment relay for UDP, bound and not yet running: [`run`](Self::run) it on this
/// thread or [`spawn`](Self::spawn) it, then read its [`RelayStats`] from the [`RelayHandle`].
///
/// The relay sits between UDP clients and one UDP target (a server) and forwards every datagram
/// both ways, whatever its content, after dropping, duplicating, reordering, delaying, jittering
/// or corrupting it as configured. It makes a lossy link out of loopback where the kernel has no
/// `netem`, and the decisions are seeded: the same seed gives the same decisions for the same
/// order of datagrams.
///
/// ```text
/// client ──▶ listen socket ──[upstream impairments]──▶ per-client socket ──▶ target
/// client ◀── listen socket ◀──[downstream impairments]── per-client socket ◀── target
/// ```
///
/// Each distinct client address gets its own socket connected to the target, so the target sees
/// one peer per client and its replies go back to the right client. Both directions are impaired,
/// each with its own [`RelayConfig`] ([`Relay::bind`] uses one for both, [`Relay::bind_split`]
/// takes two) and its own random stream.
///
/// # Example
///
/// ```
/// use std::net::UdpSocket;
/// use std::time::{Duration, Instant};
/// use framelink_std::{Relay, RelayConfig};
///
/// // The far side: a UDP socket on an ephemeral loopback port that echoes by hand.
/// let server = UdpSocket::bind("127.0.0.1:0")?;
/// server.set_read_timeout(Some(Duration::from_secs(5)))?;
/// // 20 ms each way, ± 5 ms of jitter, a fixed seed.
/// let config = RelayConfig::new().delay(Duration::from_millis(20)).jitter(Duration::from_millis(5)).seed(7);
/// let relay = Relay::bind("127.0.0.1:0".parse()?, server.local_addr()?, config)?.spawn()?;
///
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.set_read_timeout(Some(Duration::from_secs(5)))?;
/// let start = Instant::now();
/// client.send_to(b"hello", relay.local_addr())?;
///
/// let mut buf = [0; 64];
/// let (len, relay_side) = server.recv_from(&mut buf)?; // the relay's socket for this client
/// server.send_to(&buf[..len], relay_side)?;
/// let (len, _) = client.recv_from(&mut buf)?;
/// assert_eq!(&buf[..len], b"hello");
/// assert!(start.elapsed() >= Duration::from_millis(30)); // at least 2 × (20 − 5) ms
///
/// let stats = relay.shutdown()?;
/// assert_eq!((stats.upstream.forwarded, stats.downstream.forwarded), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # How it runs
///
/// One thread, one [`mio`] poll over a few non-blocking sockets: the listening socket and one
/// socket per client. Every datagram read is given its fate at once and each copy that survives
/// goes into a binary heap keyed by (due time, arrival sequence); the poll waits until the
/// earliest due time (or a socket is readable), then sends what is due. A single thread keeps
/// the decisions of each direction in one deterministic order without locks, never spins, and
/// stops at once when [`RelayHandle::shutdown`] wakes it. Timers have the poll's precision:
/// about 1 ms (timeouts round up).
///
/// # What it does not do
///
/// - No bandwidth or rate limit and no queue model: a copy is only delayed, never paced.
/// - No netem-exact distributions: loss is independent per datagram (no Gilbert-Elliott bursts,
///   no correlation), jitter is uniform, reordering is a hold-back
///   ([`RelayConfig::reorder`]).
/// - It cannot see what the kernel drops. It asks for 4 MiB of `SO_RCVBUF` on its sockets
///   (the kernel caps it at `rmem_max`; the usual default, about 200 KiB, holds a few hundred
///   datagrams), yet a burst larger than that, or one that meets the relay's thread
///   descheduled, is dropped by the kernel before the relay reads it, and a burst of copies the
///   relay sends can overflow the receiver's buffer the same way. The stats count
///   what the relay received and forwarded; compare them with what each end sent and received.
/// - No TCP; no per-client settings.
pub struct Relay {
    poll: Poll,
    listener: UdpSocket,
    local_addr: SocketAddr,
    target: SocketAddr,
    configs: [RelayConfig; 2],
    max_clients: usize,
    idle_timeout: Duration,
    max_queued_bytes: usize,
}

impl Relay {
    /// The default [`max_clients`](Self::max_clients): 256.
    pub const DEFAULT_MAX_CLIENTS: usize = 256;
    /// The default [`idle_timeout`](Self::idle_timeout): 60 s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default [`max_queued_bytes`](Self::max_queued_bytes): 16 MiB.
    pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 << 20;

    /// Binds `listen` (port 0 picks a free port; see [`local_addr`](Self::local_addr)) to relay
    /// to `target`, with the same impairments both ways (each direction draws its own random
    /// stream from `config`'s seed). A bad `config` is an [`io::ErrorKind::InvalidInput`] error
    /// holding the [`RelayConfigError`]; so is a `target` without a host or a port (`0.0.0.0`,
    /// port 0) or equal to the bound address.
    pub fn bind(listen: SocketAddr, target: SocketAddr, config: RelayConfig) -> io::Result<Self> {
        Self::bind_split(listen, target, config.clone(), config)
    }

    /// Like [`bind`](Self::bind), with separate impairments for `upstream` (client to target)
    /// and `downstream` (target to client).
    pub fn bind_split(
        listen: SocketAddr,
        target: SocketAddr,
        upstream: RelayConfig,
        downstream: RelayConfig,
    ) -> io::Result<Self> {
        upstream.validate()?;
        downstream.validate()?;
        if target.port() == 0 || target.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot relay to {target}: it needs a host and a port"),
            ));
        }
        let context =
            |error: io::Error| io::Error::new(error.kind(), format!("cannot listen on {listen}: {error}"));
        let mut listener = UdpSocket::bind(listen).map_err(context)?;
        crate::conn::raise_udp_recv_buffer(&listener);
        let local_addr = listener.local_addr()?;
        if local_addr == target {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot relay {local_addr} to itself"),
            ));
        }
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Self {
            poll,
            listener,
            local_addr,
            target,
            configs: [upstream, downstream],
            max_clients: Self::DEFAULT_MAX_CLIENTS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_queued_bytes: Self::DEFAULT_MAX_QUEUED_BYTES,
        })
    }

    /// Clients (distinct source addresses) mapped at once, each with its own socket to the
    /// target (default 256). A datagram from a new client beyond the limit is dropped and
    /// counted in [`RelayStats::refused`].
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients;
        self
    }

    /// How long a client may be silent both ways, with nothing queued for it, before its socket
    /// is closed (default 60 s; at least 1 ms). It gets a new one when it sends again.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The memory the queue of delayed copies may hold, counting each copy's bytes and a small
    /// overhead (default 16 MiB). A copy beyond it is dropped and counted in
    /// [`DirectionStats::overflowed`].
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// The bound listening address, with the real port: where clients send.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where datagrams are relayed to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Relays on this thread until the process ends; returns only on an error of the poll itself.
    pub fn run(self) -> io::Result<()> {
        let mut engine = Engine::new(self);
        engine.run(None)
    }

    /// Relays on a background thread; the handle reads its stats and stops it.
    pub fn spawn(self) -> io::Result<RelayHandle> {
        let waker = Waker::new(self.poll.registry(), WAKER)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stats: Mutex::new(RelayStats::default()),
            error: Mutex::new(None),
        });
        let (local_addr, target) = (self.local_addr, self.target);
        let mut engine = Engine::new(self);
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new().name("framelink-relay".into()).spawn(move || {
            if let Err(error) = engine.run(Some(&thread_shared)) {
                *thread_shared.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
            }
        })?;
        Ok(RelayHandle { shared, waker, thread: Some(thread), local_addr, target })
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("local_addr", &self.local_addr)
            .field("target", &self.target)
            .field("upstream", &self.configs[0])
            .field("downstream", &self.configs[1])
            .field("max_clients", &self.max_clients)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .finish_non_exhaustive()
    }
}

/// A running relay; [`shutdown`](Self::shutdown) (or dropping it) stops it.
pub struct RelayHandle {
    shared: Arc<Shared>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
    target: SocketAddr,
}

impl RelayHandle {
    /// The listening address: where clients send.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where datagrams are relayed to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The counters so far (updated each time the relay has handled what woke it).
    pub fn stats(&self) -> RelayStats {
        *self.shared.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the relay at once and waits for its thread; copies still queued are discarded
    /// (they stay counted in [`RelayStats::queued`]). Returns the final counters, or the error
    /// that had stopped the relay.
    pub fn shutdown(mut self) -> io::Result<RelayStats> {
        self.stop()?;
        Ok(self.stats())
    }

    fn stop(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        self.shared.stop.store(true, Ordering::Release);
        // If the wake-up were lost, the relay still sees `stop` within `MAX_WAIT`.
        let _ = self.waker.wake();
        if thread.join().is_err() {
            return Err(io::Error::other("the relay thread panicked"));
        }
        match self.shared.error.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayHandle")
            .field("local_addr", &self.local_addr)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// What the handle and the relay's thread share.
struct Shared {
    stop: AtomicBool,
    stats: Mutex<RelayStats>,
    error: Mutex<Option<io::Error>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Client to target.
    Up,
    /// Target to client.
    Down,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Self::Up => 0,
            Self::Down => 1,
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood; Vigna's reference constants): small, fast, seedable with
/// any `u64`, and good enough for impairment decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`: 0.0 never, 1.0 always (one draw either way).
    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits: a uniform f64 in [0, 1).
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }
}

/// Draws each datagram takes: loss, duplicate, then five for each of two copies.
#[cfg(test)]
const DRAWS_PER_DATAGRAM: usize = 12;

/// The fate of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    lost: bool,
    duplicated: bool,
    copies: [CopyPlan; 2],
}

impl Plan {
    /// The copies to send: none, one, or two.
    fn copies(&self) -> &[CopyPlan] {
        match (self.lost, self.duplicated) {
            (true, _) => &[],
            (false, false) => &self.copies[..1],
            (false, true) => &self.copies,
        }
    }
}

/// The fate of one copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CopyPlan {
    /// After its arrival, when the copy is sent.
    delay: Duration,
    /// Held back by `reorder`.
    reordered: bool,
    /// The bit to flip, counted from the first byte's least significant bit.
    flip: Option<u64>,
}

/// Decides the fate of a datagram of `len` bytes, always with [`DRAWS_PER_DATAGRAM`] draws.
fn plan(config: &RelayConfig, rng: &mut SplitMix64, len: usize) -> Plan {
    let lost = rng.chance(config.loss);
    let duplicated = rng.chance(config.duplicate);
    let first = plan_copy(config, rng, len);
    let second = plan_copy(config, rng, len);
    Plan { lost, duplicated, copies: [first, second] }
}

fn plan_copy(config: &RelayConfig, rng: &mut SplitMix64, len: usize) -> CopyPlan {
    let corrupt = rng.chance(config.corrupt);
    let bit_draw = rng.next_u64();
    let reordered = rng.chance(config.reorder);
    let hold_draw = rng.next_u64();
    let jitter_draw = rng.next_u64();

    let delay = nanos(config.delay);
    let jitter = nanos(config.jitter);
    // delay + uniform [-jitter, +jitter], never below zero.
    let offset = jitter_draw % jitter.saturating_mul(2).saturating_add(1);
    let mut total = delay.saturating_add(offset).saturating_sub(jitter);
    if reordered {
        // An extra uniform [base, 4 base].
        let base = delay.max(nanos(RelayConfig::MIN_REORDER_HOLD));
        let hold = base.saturating_add(hold_draw % base.saturating_mul(3).saturating_add(1));
        total = total.saturating_add(hold);
    }
    let bits = u64::try_from(len).unwrap_or(u64::MAX).saturating_mul(8);
    let flip = (corrupt && bits > 0).then(|| bit_draw % bits);
    CopyPlan { delay: Duration::from_nanos(total), reordered, flip }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A copy waiting for its time.
struct Pending {
    due: Instant,
    /// Order of scheduling: breaks ties, so equal delays keep arrival order.
    seq: u64,
    direction: Direction,
    /// The client it came from (upstream) or goes to (downstream).
    client: SocketAddr,
    data: Vec<u8>,
}

impl Pending {
    fn cost(&self) -> usize {
        self.data.len().saturating_add(COPY_OVERHEAD)
    }
}

// `BinaryHeap` is a max-heap: the earliest (due, seq) must compare greatest.
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Pending {}

/// A client's socket to the target.
struct Client {
    socket: UdpSocket,
    token: Token,
    last_active: Instant,
    /// Upstream copies queued for this socket.
    pending: usize,
}

/// The running relay: sockets, schedule, random streams and counters, on one thread.
struct Engine {
    poll: Poll,
    listener: UdpSocket,
    target: SocketAddr,
    configs: [RelayConfig; 2],
    rngs: [SplitMix64; 2],
    max_clients: usize,
    idle_timeout: Duration,
    max_queued_bytes: usize,
    clients: HashMap<SocketAddr, Client>,
    tokens: HashMap<Token, SocketAddr>,
    next_token: usize,
    schedule: BinaryHeap<Pending>,
    queued_bytes: usize,
    seq: u64,
    /// Sockets that were still readable when their read budget ran out.
    readable: Vec<Token>,
    /// No client expires before this.
    next_sweep: Option<Instant>,
    stats: RelayStats,
    buf: Vec<u8>,
}

impl Engine {
    fn new(relay: Relay) -> Self {
        let seed = relay.configs[0].seed;
        let down_seed = relay.configs[1].seed ^ DOWNSTREAM_SALT;
        Self {
            poll: relay.poll,
            listener: relay.listener,
            target: relay.target,
            rngs: [SplitMix64::new(seed), SplitMix64::new(down_seed)],
            configs: relay.configs,
            max_clients: relay.max_clients,
            idle_timeout: relay.idle_timeout,
            max_queued_bytes: relay.max_queued_bytes,
            clients: HashMap::new(),
            tokens: HashMap::new(),
            next_token: FIRST_CLIENT,
            schedule: BinaryHeap::new(),
            queued_bytes: 0,
            seq: 0,
            readable: Vec::new(),
            next_sweep: None,
            stats: RelayStats::default(),
            buf: vec![0; DATAGRAM_READ],
        }
    }

    fn run(&mut self, shared: Option<&Shared>) -> io::Result<()> {
        let stopped = || shared.is_some_and(|shared| shared.stop.load(Ordering::Acquire));
        let mut events = Events::with_capacity(64);
        while !stopped() {
            let timeout =
                if self.readable.is_empty() { self.wait_time(Instant::now()) } else { Duration::ZERO };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.publish(shared);
                    return Err(error);
                }
            }
            for event in &events {
                let token = event.token();
                if token != WAKER && !self.readable.contains(&token) {
                    self.readable.push(token);
                }
            }
            for token in std::mem::take(&mut self.readable) {
                if self.read(token) {
                    self.readable.push(token);
                }
            }
            let now = Instant::now();
            self.send_due(now);
            self.sweep(now);
            self.publish(shared);
        }
        self.publish(shared);
        Ok(())
    }

    /// How long to wait for sockets: until the next copy is due or a client may expire.
    fn wait_time(&self, now: Instant) -> Duration {
        let due = self.schedule.peek().map(|pending| pending.due);
        let next = match (due, self.next_sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map_or(MAX_WAIT, |at| at.saturating_duration_since(now).min(MAX_WAIT))
    }

    fn publish(&mut self, shared: Option<&Shared>) {
        self.stats.queued = self.schedule.len();
        self.stats.clients = self.clients.len();
        if let Some(shared) = shared {
            *shared.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.stats;
        }
    }

    /// Reads up to [`READ_BUDGET`] datagrams from one socket; true if it may hold more.
    fn read(&mut self, token: Token) -> bool {
        let mut buf = std::mem::take(&mut self.buf);
        let more = self.read_with(token, &mut buf);
        self.buf = buf;
        more
    }

    fn read_with(&mut self, token: Token, buf: &mut [u8]) -> bool {
        for _ in 0..READ_BUDGET {
            let received = if token == LISTENER {
                self.listener.recv_from(buf)
            } else {
                let Some(&client) = self.tokens.get(&token) else { return false };
                let Some(entry) = self.clients.get(&client) else { return false };
                entry.socket.recv(buf).map(|len| (len, client))
            };
            match received {
                Ok((len, client)) => {
                    let data = buf.get(..len).unwrap_or_default();
                    if token == LISTENER {
                        self.on_client_datagram(data, client);
                    } else {
                        self.on_target_datagram(data, client);
                    }
                }
                Err(error) => match error.kind() {
                    io::ErrorKind::WouldBlock => return false,
                    io::ErrorKind::Interrupted => {}
                    // An ICMP error (the target's port closed) is reported once; read on.
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
                        self.stats.errors += 1;
                    }
                    _ => {
                        self.stats.errors += 1;
                        return false;
                    }
                },
            }
        }
        true
    }

    fn on_client_datagram(&mut self, data: &[u8], client: SocketAddr) {
        let now = Instant::now();
        let known = self.clients.contains_key(&client);
        if !known && (self.clients.len() >= self.max_clients || self.open(client, now).is_err()) {
            self.stats.refused += 1;
            return;
        }
        if let Some(entry) = self.clients.get_mut(&client) {
            entry.last_active = now;
        }
        self.impair(Direction::Up, data, client, now);
    }

    fn on_target_datagram(&mut self, data: &[u8], client: SocketAddr) {
        let now = Instant::now();
        if let Some(entry) = self.clients.get_mut(&client) {
            entry.last_active = now;
        }
        self.impair(Direction::Down, data, client, now);
    }

    /// Opens `client`'s socket to the target.
    fn open(&mut self, client: SocketAddr, now: Instant) -> io::Result<()> {
        let ip = self.target.ip();
        let local = match (ip.is_loopback(), ip) {
            (true, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            (true, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            (false, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (false, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let mut socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
        crate::conn::raise_udp_recv_buffer(&socket);
        socket.connect(self.target)?;
        let token = self.new_token();
        self.poll.registry().register(&mut socket, token, Interest::READABLE)?;
        self.clients.insert(client, Client { socket, token, last_active: now, pending: 0 });
        self.tokens.insert(token, client);
        if let Some(expiry) = now.checked_add(self.idle_timeout) {
            self.next_sweep = Some(self.next_sweep.map_or(expiry, |at| at.min(expiry)));
        }
        Ok(())
    }

    fn new_token(&mut self) -> Token {
        loop {
            let token = Token(self.next_token);
            self.next_token = self.next_token.checked_add(1).unwrap_or(FIRST_CLIENT);
            if !self.tokens.contains_key(&token) {
                return token;
            }
        }
    }

    /// Decides the datagram's fate and queues its copies.
    fn impair(&mut self, direction: Direction, data: &[u8], client: SocketAddr, now: Instant) {
        let index = direction.index();
        let plan = plan(&self.configs[index], &mut self.rngs[index], data.len());
        let stats = self.stats.direction(direction);
        stats.received += 1;
        stats.bytes_received += data.len() as u64;
        if plan.lost {
            stats.dropped += 1;
            return;
        }
        if plan.duplicated {
            stats.duplicated += 1;
        }
        for copy in plan.copies() {
            let stats = self.stats.direction(direction);
            let cost = data.len().saturating_add(COPY_OVERHEAD);
            if self.queued_bytes.saturating_add(cost) > self.max_queued_bytes {
                stats.overflowed += 1;
                continue;
            }
            let mut bytes = data.to_vec();
            if let Some(bit) = copy.flip {
                let byte = usize::try_from(bit / 8).ok().and_then(|at| bytes.get_mut(at));
                if let Some(byte) = byte {
                    *byte ^= 1 << (bit % 8);
                    stats.corrupted += 1;
                }
            }
            if copy.reordered {
                stats.reordered += 1;
            }
            if direction == Direction::Up
                && let Some(entry) = self.clients.get_mut(&client)
            {
                entry.pending += 1;
            }
            let due = now.checked_add(copy.delay).unwrap_or(now);
            self.schedule.push(Pending { due, seq: self.seq, direction, client, data: bytes });
            self.seq = self.seq.wrapping_add(1);
            self.queued_bytes = self.queued_bytes.saturating_add(cost);
        }
    }

    /// Sends every copy due by `now`, earliest first.
    fn send_due(&mut self, now: Instant) {
        while self.schedule.peek().is_some_and(|pending| pending.due <= now) {
            let Some(pending) = self.schedule.pop() else { break };
            self.queued_bytes = self.queued_bytes.saturating_sub(pending.cost());
            let sent = match pending.direction {
                Direction::Up => match self.clients.get_mut(&pending.client) {
                    Some(entry) => {
                        entry.pending = entry.pending.saturating_sub(1);
                        entry.last_active = now;
                        entry.socket.send(&pending.data)
                    }
                    None => Err(io::ErrorKind::NotConnected.into()),
                },
                Direction::Down => self.listener.send_to(&pending.data, pending.client),
            };
            let stats = self.stats.direction(pending.direction);
            match sent {
                Ok(len) => {
                    stats.forwarded += 1;
                    stats.bytes_forwarded += len as u64;
                }
                Err(_) => stats.send_errors += 1,
            }
        }
    }

    /// Forgets the clients idle for [`Relay::idle_timeout`] with nothing queued for them.
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none_or(|at| at > now) {
            return;
        }
        let idle = self.idle_timeout;
        let mut next: Option<Instant> = None;
        let mut expired = Vec::new();
        for (&addr, entry) in &self.clients {
            let expiry =
                if entry.pending > 0 { now.checked_add(idle) } else { entry.last_active.checked_add(idle) };
            match expiry {
                Some(at) if at <= now => expired.push(addr),
                Some(at) => next = Some(next.map_or(at, |next| next.min(at))),
                None => {}
            }
        }
        for addr in expired {
            if let Some(mut entry) = self.clients.remove(&addr) {
                let _ = self.poll.registry().deregister(&mut entry.socket);
                self.tokens.remove(&entry.token);
                self.readable.retain(|&token| token != entry.token);
                self.stats.clients_expired += 1;
            }
        }
        self.next_sweep = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn plans(config: &RelayConfig, seed: u64, count: usize, len: usize) -> Vec<Plan> {
        let mut rng = SplitMix64::new(seed);
        (0..count).map(|_| plan(config, &mut rng, len)).collect()
    }

    #[test]
    fn defaults_are_zero_and_valid() {
        let config = RelayConfig::new();
        assert_eq!(config, RelayConfig::default());
        assert_eq!(
            (config.loss_value(), config.duplicate_value(), config.reorder_value(), config.corrupt_value()),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(
            (config.delay_value(), config.jitter_value(), config.seed_value()),
            (Duration::ZERO, Duration::ZERO, 0)
        );
        assert_eq!(config.validate(), Ok(()));
        let edges = RelayConfig::new()
            .loss(1.0)
            .duplicate(0.0)
            .reorder(1.0)
            .corrupt(1.0)
            .delay(RelayConfig::MAX_DELAY)
            .jitter(RelayConfig::MAX_DELAY);
        assert_eq!(edges.validate(), Ok(()));
    }

    #[test]
    fn each_bad_setting_is_named() {
        let probability = |name, value| Err(RelayConfigError::Probability { name, value });
        assert_eq!(RelayConfig::new().loss(1.5).validate(), probability("loss", 1.5));
        assert_eq!(RelayConfig::new().duplicate(-0.1).validate(), probability("dup", -0.1));
        assert_eq!(
            RelayConfig::new().reorder(f64::INFINITY).validate(),
            probability("reorder", f64::INFINITY)
        );
        assert_eq!(RelayConfig::new().corrupt(1.0001).validate(), probability("corrupt", 1.0001));
        assert!(matches!(
            RelayConfig::new().loss(f64::NAN).validate(),
            Err(RelayConfigError::Probability { name: "loss", value }) if value.is_nan()
        ));
        let long = RelayConfig::MAX_DELAY + Duration::from_nanos(1);
        assert_eq!(
            RelayConfig::new().delay(long).validate(),
            Err(RelayConfigError::TooLong { name: "delay", value: long })
        );
        assert_eq!(
            RelayConfig::new().jitter(Duration::MAX).validate(),
            Err(RelayConfigError::TooLong { name: "jitter", value: Duration::MAX })
        );
        assert_eq!(
            RelayConfig::new().loss(2.0).validate().unwrap_err().to_string(),
            "--loss must be a probability from 0 to 1, not 2"
        );
    }

    #[test]
    fn bind_refuses_bad_settings_before_binding() {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let error = Relay::bind(listen, target, RelayConfig::new().duplicate(7.0)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let inner = error.get_ref().and_then(|inner| inner.downcast_ref::<RelayConfigError>());
        assert_eq!(inner, Some(&RelayConfigError::Probability { name: "dup", value: 7.0 }));
        let split = Relay::bind_split(listen, target, RelayConfig::new(), RelayConfig::new().loss(-1.0));
        assert_eq!(split.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        for bad in ["127.0.0.1:0", "0.0.0.0:9"] {
            let error = Relay::bind(listen, bad.parse().unwrap(), RelayConfig::new()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        let relay = Relay::bind(listen, target, RelayConfig::new()).unwrap();
        assert_ne!(relay.local_addr().port(), 0);
        assert_eq!(relay.target(), target);
    }

    #[test]
    fn splitmix_matches_the_reference() {
        let mut rng = SplitMix64::new(1234567);
        let first: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423,
                4593380528125082431,
                16408922859458223821
            ]
        );
    }

    #[test]
    fn chance_at_the_extremes_and_in_between() {
        let mut rng = SplitMix64::new(99);
        assert!((0..10_000).all(|_| !rng.chance(0.0)));
        assert!((0..10_000).all(|_| rng.chance(1.0)));
        let hits = (0..100_000).filter(|_| rng.chance(0.3)).count();
        assert!((29_000..=31_000).contains(&hits), "{hits}");
    }

    #[test]
    fn same_seed_same_decisions() {
        let config = RelayConfig::new()
            .loss(0.2)
            .duplicate(0.2)
            .reorder(0.2)
            .corrupt(0.2)
            .delay(5 * MS)
            .jitter(2 * MS);
        assert_eq!(plans(&config, 7, 500, 100), plans(&config, 7, 500, 100));
        assert_ne!(plans(&config, 7, 500, 100), plans(&config, 8, 500, 100));
    }

    #[test]
    fn every_datagram_takes_the_same_draws() {
        let quiet = RelayConfig::new();
        let busy = RelayConfig::new().loss(0.5).duplicate(1.0).reorder(0.5).corrupt(1.0).jitter(MS);
        for len in [0, 1, 1000] {
            let (mut a, mut b) = (SplitMix64::new(3), SplitMix64::new(3));
            plan(&quiet, &mut a, len);
            plan(&busy, &mut b, len);
            assert_eq!(a, b);
            let mut c = SplitMix64::new(3);
            for _ in 0..DRAWS_PER_DATAGRAM {
                let _ = c.next_u64();
            }
            assert_eq!(a, c);
        }
        // So one setting does not shift the decisions of another: the same datagrams are lost.
        let lost =
            |config: &RelayConfig| plans(config, 11, 200, 10).iter().map(|p| p.lost).collect::<Vec<_>>();
        assert_eq!(
            lost(&RelayConfig::new().loss(0.3)),
            lost(&RelayConfig::new().loss(0.3).reorder(0.9).jitter(MS))
        );
    }

    #[test]
    fn copies_follow_loss_and_duplicate() {
        let none = RelayConfig::new();
        assert!(plans(&none, 1, 100, 8).iter().all(|p| p.copies().len() == 1));
        let all_lost = RelayConfig::new().loss(1.0).duplicate(1.0);
        assert!(plans(&all_lost, 1, 100, 8).iter().all(|p| p.copies().is_empty()));
        let doubled = RelayConfig::new().duplicate(1.0);
        assert!(plans(&doubled, 1, 100, 8).iter().all(|p| p.copies().len() == 2));
    }

    #[test]
    fn delay_and_jitter_stay_in_range() {
        let config = RelayConfig::new().delay(10 * MS).jitter(3 * MS);
        let delays: Vec<Duration> =
            plans(&config, 5, 2000, 8).iter().flat_map(|p| p.copies).map(|c| c.delay).collect();
        assert!(delays.iter().all(|d| (7 * MS..=13 * MS).contains(d)));
        assert!(delays.iter().any(|d| *d < 8 * MS) && delays.iter().any(|d| *d > 12 * MS));

        // Jitter beyond the delay: never negative, sometimes zero.
        let config = RelayConfig::new().delay(MS).jitter(10 * MS);
        let delays: Vec<Duration> =
            plans(&config, 5, 2000, 8).iter().flat_map(|p| p.copies).map(|c| c.delay).collect();
        assert!(delays.iter().all(|d| *d <= 11 * MS));
        assert!(delays.iter().any(|d| d.is_zero()));

        let fixed = RelayConfig::new().delay(4 * MS);
        assert!(plans(&fixed, 5, 100, 8).iter().flat_map(|p| p.copies).all(|c| c.delay == 4 * MS));
    }

    #[test]
    fn reorder_holds_back_by_one_to_four_delays() {
        let config = RelayConfig::new().delay(10 * MS).reorder(1.0);
        let copies: Vec<CopyPlan> = plans(&config, 9, 2000, 8).iter().flat_map(|p| p.copies).collect();
        assert!(copies.iter().all(|c| c.reordered && (20 * MS..=50 * MS).contains(&c.delay)));
        assert!(copies.iter().any(|c| c.delay < 22 * MS) && copies.iter().any(|c| c.delay > 48 * MS));

        // No delay: the hold-back is 1 to 4 times the minimum.
        let config = RelayConfig::new().reorder(1.0);
        let copies: Vec<CopyPlan> = plans(&config, 9, 2000, 8).iter().flat_map(|p| p.copies).collect();
        assert!(copies.iter().all(|c| (MS..=4 * MS).contains(&c.delay)));

        let half = RelayConfig::new().reorder(0.5);
        let held = plans(&half, 9, 2000, 8).iter().flat_map(|p| p.copies).filter(|c| c.reordered).count();
        assert!((1800..=2200).contains(&held), "{held}");
    }

    #[test]
    fn corruption_flips_one_bit_inside_the_datagram() {
        let config = RelayConfig::new().corrupt(1.0);
        for len in [1, 2, 1500] {
            let bits: Vec<u64> =
                plans(&config, 4, 500, len).iter().flat_map(|p| p.copies).map(|c| c.flip.unwrap()).collect();
            assert!(bits.iter().all(|&bit| bit < len as u64 * 8), "{len}");
        }
        assert!(plans(&config, 4, 100, 0).iter().flat_map(|p| p.copies).all(|c| c.flip.is_none()));
        assert!(
            plans(&RelayConfig::new(), 4, 100, 9).iter().flat_map(|p| p.copies).all(|c| c.flip.is_none())
        );
    }

    #[test]
    fn the_schedule_pops_earliest_then_first_queued() {
        let now = Instant::now();
        let client: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let pending = |ms: u64, seq: u64| Pending {
            due: now + Duration::from_millis(ms),
            seq,
            direction: Direction::Up,
            client,
            data: Vec::new(),
        };
        let mut heap: BinaryHeap<Pending> =
            [pending(5, 0), pending(1, 1), pending(5, 2), pending(0, 3), pending(1, 4)].into_iter().collect();
        let order: Vec<u64> = std::iter::from_fn(|| heap.pop()).map(|p| p.seq).collect();
        assert_eq!(order, [3, 1, 4, 0, 2]);
    }
}
