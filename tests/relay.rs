//! The UDP impairment relay (`framelink_std::Relay`) over real loopback sockets: a UDP echo
//! server on an ephemeral port behind the relay, client sockets in front of it. No impairment,
//! total loss, duplication one and both ways, reordering with delay, 30% loss over 1,000
//! datagrams, delay, corruption, several clients with a limit and an idle timeout, and shutdown
//! with copies still queued.
//!
//! Loopback UDP drops when a receive buffer fills, so the tests never have more than a few dozen
//! datagrams in flight: they send in small windows and wait (bounded) for the relay's counters
//! before the next. Every wait is bounded in count and time, only lower bounds are asserted on
//! time, and every relay and echo thread is stopped on every path.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use framelink_std::{Relay, RelayConfig, RelayHandle, RelayStats};

/// The longest any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);
const MS: Duration = Duration::from_millis(1);

/// A UDP echo server on 127.0.0.1, on its own thread until dropped.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(20 * MS)).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let (thread_stop, thread_echoed) = (Arc::clone(&stop), Arc::clone(&echoed));
        let thread = thread::spawn(move || {
            let mut buf = [0; 2048];
            while !thread_stop.load(Ordering::Acquire) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..len], from);
                    thread_echoed.fetch_add(1, Ordering::AcqRel);
                }
            }
        });
        Self { addr, stop, echoed, thread: Some(thread) }
    }

    fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Acquire)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn(relay: Relay) -> RelayHandle {
    relay.spawn().unwrap()
}

fn relay(echo: &Echo, config: RelayConfig) -> RelayHandle {
    spawn(Relay::bind("127.0.0.1:0".parse().unwrap(), echo.addr, config).unwrap())
}

fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(10 * MS)).unwrap();
    socket
}

/// Datagram `id`: its number, then padding to `len` bytes.
fn datagram(id: u32, len: usize) -> Vec<u8> {
    let mut data = id.to_le_bytes().to_vec();
    data.resize(len.max(4), 0xA5);
    data
}

fn id_of(data: &[u8]) -> u32 {
    u32::from_le_bytes(data[..4].try_into().unwrap())
}

/// Waits until `done` holds, polling; fails the test after [`PATIENCE`].
fn wait_for(what: &str, relay: &RelayHandle, mut done: impl FnMut(&RelayStats) -> bool) -> RelayStats {
    let start = Instant::now();
    loop {
        let stats = relay.stats();
        if done(&stats) {
            return stats;
        }
        assert!(start.elapsed() < PATIENCE, "waited {PATIENCE:?} for {what}; stats: {stats:#?}");
        thread::sleep(MS);
    }
}

/// Receives exactly `count` datagrams; fails the test if they do not come within [`PATIENCE`].
fn receive(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut got = Vec::with_capacity(count);
    let mut buf = [0; 2048];
    while got.len() < count {
        assert!(start.elapsed() < PATIENCE, "received {} of {count} datagrams", got.len());
        if let Ok(len) = socket.recv(&mut buf) {
            got.push(buf[..len].to_vec());
        }
    }
    got
}

/// Whatever arrives until `quiet` passes with nothing (at most 10,000 datagrams).
fn receive_until_quiet(socket: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0; 2048];
    let mut last = Instant::now();
    while last.elapsed() < quiet && got.len() < 10_000 {
        if let Ok(len) = socket.recv(&mut buf) {
            got.push(buf[..len].to_vec());
            last = Instant::now();
        }
    }
    got
}

#[test]
fn without_impairment_everything_comes_back_in_order() {
    let echo = Echo::start();
    let relay = relay(&echo, RelayConfig::new());
    let client = client();
    const N: u32 = 300;
    const WINDOW: u32 = 10;
    let mut order = Vec::new();
    for window in (0..N).step_by(WINDOW as usize) {
        for id in window..window + WINDOW {
            client.send_to(&datagram(id, 32), relay.local_addr()).unwrap();
        }
        order.extend(receive(&client, WINDOW as usize).iter().map(|data| id_of(data)));
    }
    assert_eq!(order, (0..N).collect::<Vec<_>>());
    assert!(receive_until_quiet(&client, 50 * MS).is_empty());

    let stats = relay.shutdown().unwrap();
    let n = u64::from(N);
    for direction in [stats.upstream, stats.downstream] {
        assert_eq!((direction.received, direction.forwarded, direction.bytes_forwarded), (n, n, 32 * n));
        assert_eq!(direction.bytes_received, 32 * n);
        assert_eq!(
            (direction.dropped, direction.duplicated, direction.reordered, direction.corrupted),
            (0, 0, 0, 0)
        );
        assert_eq!((direction.overflowed, direction.send_errors), (0, 0));
    }
    assert_eq!((stats.clients, stats.refused, stats.queued), (1, 0, 0));
    assert_eq!(echo.echoed(), n);
}

#[test]
fn total_loss_delivers_nothing_and_counts_every_drop() {
    let echo = Echo::start();
    let relay = relay(&echo, RelayConfig::new().loss(1.0).seed(1));
    let client = client();
    let mut sent = 0;
    for id in 0..50 {
        client.send_to(&datagram(id, 16), relay.local_addr()).unwrap();
        sent += 1;
        if sent % 10 == 0 {
            wait_for("the relay to read the burst", &relay, |s| s.upstream.received == sent);
        }
    }
    assert!(receive_until_quiet(&client, 100 * MS).is_empty());
    let stats = relay.shutdown().unwrap();
    assert_eq!((stats.upstream.received, stats.upstream.dropped, stats.upstream.forwarded), (50, 50, 0));
    assert_eq!(stats.downstream.received, 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(echo.echoed(), 0);
}

/// Sends `n` datagrams in windows of `window` and expects `copies` of each back.
fn expect_copies(relay: &RelayHandle, n: u32, window: u32, copies: usize) {
    let client = client();
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for start in (0..n).step_by(window as usize) {
        for id in start..start + window {
            client.send_to(&datagram(id, 20), relay.local_addr()).unwrap();
        }
        for data in receive(&client, window as usize * copies) {
            *count.entry(id_of(&data)).or_default() += 1;
        }
    }
    assert!(receive_until_quiet(&client, 100 * MS).is_empty(), "more copies than expected");
    assert_eq!(count.len(), n as usize);
    assert!(count.values().all(|&c| c == copies), "{count:?}");
}

#[test]
fn duplicating_both_ways_returns_four_copies() {
    // Upstream doubles each datagram: the echo sees 2 and answers 2. Downstream doubles each
    // answer: 2 × 2 = 4 reach the client, never more (a copy is not duplicated again).
    let echo = Echo::start();
    let relay = relay(&echo, RelayConfig::new().duplicate(1.0).seed(2));
    const N: u32 = 40;
    expect_copies(&relay, N, 5, 4);
    let stats = relay.shutdown().unwrap();
    let n = u64::from(N);
    assert_eq!((stats.upstream.received, stats.upstream.duplicated, stats.upstream.forwarded), (n, n, 2 * n));
    assert_eq!(
        (stats.downstream.received, stats.downstream.duplicated, stats.downstream.forwarded),
        (2 * n, 2 * n, 4 * n)
    );
    assert_eq!(echo.echoed(), 2 * n);
}

#[test]
fn duplicating_one_way_returns_two_copies() {
    let echo = Echo::start();
    let bound = Relay::bind_split(
        "127.0.0.1:0".parse().unwrap(),
        echo.addr,
        RelayConfig::new().duplicate(1.0),
        RelayConfig::new(),
    );
    let relay = spawn(bound.unwrap());
    expect_copies(&relay, 40, 5, 2);
    let stats = relay.shutdown().unwrap();
    assert_eq!((stats.upstream.duplicated, stats.upstream.forwarded), (40, 80));
    assert_eq!(
        (stats.downstream.received, stats.downstream.duplicated, stats.downstream.forwarded),
        (80, 0, 80)
    );
}

/// One burst of `n` through a relay with reordering; the arrival order and the final stats.
fn reordered_burst(seed: u64, n: u32) -> (Vec<u32>, RelayStats) {
    let echo = Echo::start();
    let config = RelayConfig::new().reorder(0.3).delay(20 * MS).seed(seed);
    let relay = relay(&echo, config);
    let client = client();
    for id in 0..n {
        client.send_to(&datagram(id, 24), relay.local_addr()).unwrap();
    }
    let order: Vec<u32> = receive(&client, n as usize).iter().map(|data| id_of(data)).collect();
    assert!(receive_until_quiet(&client, 50 * MS).is_empty());
    (order, relay.shutdown().unwrap())
}

#[test]
fn reordering_changes_the_order_and_delivers_everything() {
    // A held-back datagram waits 20 ms plus 20 to 80 ms; the next ones, sent microseconds
    // later, wait 20 ms: they overtake it unless the sender stalls for 20 ms at every one.
    const N: u32 = 50;
    let (order, stats) = reordered_burst(42, N);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..N).collect::<Vec<_>>(), "every datagram, once");
    assert_ne!(order, sorted, "the order changed");
    assert!(stats.upstream.reordered > 0 && stats.downstream.reordered > 0, "{stats:#?}");
    assert_eq!((stats.upstream.forwarded, stats.downstream.forwarded), (u64::from(N), u64::from(N)));

    // The decisions depend on the seed and the datagrams' order only: the same counts again.
    let (_, again) = reordered_burst(42, N);
    assert_eq!(
        (again.upstream.reordered, again.downstream.reordered),
        (stats.upstream.reordered, stats.downstream.reordered)
    );
}

#[test]
fn thirty_percent_loss_stays_within_bounds_and_the_rest_arrives() {
    let echo = Echo::start();
    let relay = relay(&echo, RelayConfig::new().loss(0.3).seed(5));
    let client = client();
    const N: u64 = 1000;
    const BURST: u64 = 20;
    let mut arrived: Vec<u32> = Vec::new();
    for start in (0..N).step_by(BURST as usize) {
        for id in start..start + BURST {
            client.send_to(&datagram(id as u32, 64), relay.local_addr()).unwrap();
        }
        // Settled: the relay read the burst, the echo answered all it was sent, and the relay
        // read and sent on every answer.
        let settled = |s: &RelayStats| {
            s.upstream.received == start + BURST
                && s.queued == 0
                && echo.echoed() == s.upstream.forwarded
                && s.downstream.received == s.upstream.forwarded
        };
        let stats = wait_for("the burst to settle", &relay, settled);
        let expected = stats.downstream.forwarded as usize - arrived.len();
        arrived.extend(receive(&client, expected).iter().map(|data| id_of(data)));
    }
    assert!(receive_until_quiet(&client, 50 * MS).is_empty());
    let stats = relay.shutdown().unwrap();

    // Binomial: mean p·n, standard deviation √(n·p·(1-p)); allow 5 deviations.
    let within = |dropped: u64, n: u64| {
        let (mean, sd) = (0.3 * n as f64, (n as f64 * 0.3 * 0.7).sqrt());
        (dropped as f64 - mean).abs() <= 5.0 * sd
    };
    assert_eq!(stats.upstream.received, N);
    assert!(within(stats.upstream.dropped, N), "{stats:#?}");
    assert!(within(stats.downstream.dropped, stats.downstream.received), "{stats:#?}");
    assert!(stats.upstream.dropped > 0 && stats.downstream.dropped > 0);
    // Every forwarded datagram arrived, each once.
    assert_eq!(stats.upstream.forwarded, N - stats.upstream.dropped);
    assert_eq!(echo.echoed(), stats.upstream.forwarded);
    assert_eq!(arrived.len() as u64, stats.downstream.forwarded);
    let mut unique = arrived.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), arrived.len());
}

#[test]
fn delay_applies_each_way() {
    let echo = Echo::start();
    let delay = 25 * MS;
    let relay = relay(&echo, RelayConfig::new().delay(delay));
    let client = client();
    for id in 0..5 {
        let start = Instant::now();
        client.send_to(&datagram(id, 8), relay.local_addr()).unwrap();
        let back = receive(&client, 1);
        let elapsed = start.elapsed();
        assert_eq!(id_of(&back[0]), id);
        assert!(elapsed >= 2 * delay, "round trip {elapsed:?} under 2 × {delay:?}");
    }
    drop(relay);
}

#[test]
fn corruption_flips_exactly_one_bit() {
    let echo = Echo::start();
    let bound = Relay::bind_split(
        "127.0.0.1:0".parse().unwrap(),
        echo.addr,
        RelayConfig::new().corrupt(1.0),
        RelayConfig::new(),
    );
    let relay = spawn(bound.unwrap());
    let client = client();
    for id in 0..20 {
        let sent = datagram(id, 32);
        client.send_to(&sent, relay.local_addr()).unwrap();
        let back = receive(&client, 1).remove(0);
        assert_eq!(back.len(), sent.len());
        let flipped: u32 = sent.iter().zip(&back).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert_eq!(flipped, 1, "{sent:?} came back as {back:?}");
    }
    let stats = relay.shutdown().unwrap();
    assert_eq!((stats.upstream.corrupted, stats.downstream.corrupted), (20, 0));
}

#[test]
fn clients_are_kept_apart_limited_and_forgotten_when_idle() {
    let echo = Echo::start();
    let bound = Relay::bind("127.0.0.1:0".parse().unwrap(), echo.addr, RelayConfig::new()).unwrap();
    let relay = spawn(bound.max_clients(2).idle_timeout(100 * MS));
    let (a, b, c) = (client(), client(), client());
    for round in 0..3 {
        a.send_to(b"from a", relay.local_addr()).unwrap();
        b.send_to(b"from b", relay.local_addr()).unwrap();
        assert_eq!(receive(&a, 1), [b"from a".to_vec()], "round {round}");
        assert_eq!(receive(&b, 1), [b"from b".to_vec()], "round {round}");
    }
    wait_for("two clients", &relay, |s| s.clients == 2);

    // A third client is refused while two are mapped...
    c.send_to(b"from c", relay.local_addr()).unwrap();
    wait_for("the refusal", &relay, |s| s.refused == 1);
    assert!(receive_until_quiet(&c, 50 * MS).is_empty());

    // ...and served once the idle ones are forgotten.
    wait_for("the idle clients to expire", &relay, |s| s.clients == 0 && s.clients_expired == 2);
    c.send_to(b"from c", relay.local_addr()).unwrap();
    assert_eq!(receive(&c, 1), [b"from c".to_vec()]);
    let stats = relay.shutdown().unwrap();
    assert_eq!((stats.clients, stats.refused, stats.upstream.received), (1, 1, 7));
}

#[test]
fn shutdown_stops_with_copies_still_queued() {
    let echo = Echo::start();
    let relay = relay(&echo, RelayConfig::new().delay(Duration::from_secs(600)));
    let client = client();
    for id in 0..5 {
        client.send_to(&datagram(id, 8), relay.local_addr()).unwrap();
    }
    wait_for("five queued copies", &relay, |s| s.queued == 5);
    let stats = relay.shutdown().unwrap();
    assert_eq!((stats.queued, stats.upstream.received, stats.upstream.forwarded), (5, 5, 0));
    assert_eq!(echo.echoed(), 0);
}
