//! Many framelink clients pinging one server at once, at a fixed total rate.
//!
//! A few threads drive every client (`--threads`, default 1), each thread a [`Fleet`]:
//! non-blocking sockets over mio and the core's sans-I/O connection, the way load generators
//! such as wrk drive many connections from a few threads. With a thread per client, 1,000
//! runnable threads would compete with the server for this machine's CPUs, and the figure would
//! measure the scheduler's handling of the load tool as much as the server. `--threads N` with
//! N clients still gives each client a thread of its own, for comparison.
//!
//! Each client sends an ECHO request every `clients / rate` seconds on a fixed schedule, the
//! clients' schedules spread evenly over one interval. The schedule is open: a request goes out
//! when due, whether or not earlier replies came. A round trip is measured from the request's
//! *scheduled* send time to the reading of its reply, so a send made late (the load thread or
//! the server busy) counts in the figure instead of being left out (coordinated omission);
//! `send_lag` reports how late the sends went out, and `rtt_from_send` the round trips from
//! the actual sends. A request without a reply within 2 s of its scheduled time is lost.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use framelink_core::service::{Client, ECHO_HEADER, Reply};
use framelink_core::session::Config;
use framelink_std::{Addr, Transport};
use serde::Serialize;

use crate::fleet::Fleet;
use crate::rtt::RttPercentiles;

/// How long a client waits for a reply before counting the ping lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest `--size`.
const MAX_SIZE: usize = 16 * 1024;
/// Handshakes in progress at once, per thread, while connecting.
const CONNECTING: usize = 128;
/// How long the clients may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `clients`.
#[derive(Args, Debug)]
pub(crate) struct ClientsArgs {
    /// The server: tcp://127.0.0.1:PORT (a `framelink serve`)
    #[arg(long)]
    connect: Addr,
    /// Clients, each on its own link
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Threads driving the clients between them (at most one per client)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// ECHO requests per second over all clients (each client sends clients/rate apart)
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds of pinging, once every client is connected
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Bytes of each ECHO message, its 6-byte header included (as `framelink ping --size`)
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// What `clients` prints.
#[derive(Debug, Serialize)]
struct ClientsReport {
    clients: usize,
    threads: usize,
    rate: f64,
    seconds: f64,
    size: usize,
    /// Seconds until every client had connected.
    connect_seconds: f64,
    sent: u64,
    /// Requests without a reply within 2 s of their scheduled send time.
    lost: u64,
    /// Round trips, from each request's scheduled send time to the reading of its reply.
    rtt: Option<RttPercentiles>,
    /// Round trips from each request's actual send (the write) to the reading of its reply.
    rtt_from_send: Option<RttPercentiles>,
    /// How late each request went out after its scheduled time.
    send_lag: Option<RttPercentiles>,
}

/// Pings of one or more clients: RTT samples, send lags and requests lost.
#[derive(Default)]
pub(crate) struct ClientResult {
    /// Round trips from the scheduled send times.
    pub(crate) samples: Vec<Duration>,
    /// Round trips from the actual sends.
    pub(crate) from_send: Vec<Duration>,
    /// How late each request went out.
    pub(crate) lags: Vec<Duration>,
    pub(crate) sent: u64,
    pub(crate) lost: u64,
}

impl ClientResult {
    fn add(&mut self, other: Self) {
        self.samples.extend(other.samples);
        self.from_send.extend(other.from_send);
        self.lags.extend(other.lags);
        self.sent += other.sent;
        self.lost += other.lost;
    }
}

/// Connects every client, pings for the given time, prints the report as JSON.
pub(crate) fn run(args: &ClientsArgs) -> io::Result<()> {
    if args.clients == 0 || args.rate <= 0.0 || !(ECHO_HEADER..=MAX_SIZE).contains(&args.size) {
        return Err(io::Error::other("need at least one client, a positive rate and 6 <= --size <= 16384"));
    }
    if args.connect.transport != Transport::Tcp {
        return Err(io::Error::other("clients speak framelink over TCP: give tcp://HOST:PORT"));
    }
    let target = *args.connect.resolve()?.first().ok_or_else(|| io::Error::other("no address"))?;
    let threads = args.threads.clamp(1, args.clients);
    let interval = Duration::from_secs_f64(args.clients as f64 / args.rate);
    let seconds = Duration::from_secs_f64(args.seconds);
    let size = args.size;
    let started = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut workers = Vec::with_capacity(threads);
    for thread_index in 0..threads {
        // Thread t drives clients t, t + threads, ...: each thread's sends spread over the
        // whole interval. Client i starts i / clients of an interval after the start.
        let phases: Vec<Duration> = (thread_index..args.clients)
            .step_by(threads)
            .map(|i| interval.mul_f64(i as f64 / args.clients as f64))
            .collect();
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        let ready_tx = ready_tx.clone();
        let worker = thread::Builder::new()
            .name(format!("clients-{thread_index}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let pinger = Pinger::connect(target, phases, interval, size);
                let ready = pinger.as_ref().map(|_| ()).map_err(|e| e.to_string());
                let _ = ready_tx.send(ready);
                let pinger = pinger?;
                let start = start_rx.recv().map_err(|_| io::Error::other("not started"))?;
                pinger.run(start, seconds)
            })?;
        workers.push((worker, start_tx));
    }
    drop(ready_tx);
    let mut failed = None;
    for _ in 0..threads {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failed = Some(error),
            Err(_) => failed = Some("a client thread ended".into()),
        }
    }
    if let Some(error) = failed {
        // Dropping the start senders ends the threads waiting to start.
        for (worker, _) in workers {
            let _ = worker.join();
        }
        return Err(io::Error::other(error));
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let start = Instant::now();
    for (_, start_tx) in &workers {
        let _ = start_tx.send(start);
    }
    let mut total = ClientResult::default();
    for (worker, _) in workers {
        total.add(worker.join().map_err(|_| io::Error::other("a client thread panicked"))??);
    }
    let report = ClientsReport {
        clients: args.clients,
        threads,
        rate: args.rate,
        seconds: args.seconds,
        size: args.size,
        connect_seconds,
        sent: total.sent,
        lost: total.lost,
        rtt: RttPercentiles::of(&mut total.samples),
        rtt_from_send: RttPercentiles::of(&mut total.from_send),
        send_lag: RttPercentiles::of(&mut total.lags),
    };
    println!("{}", serde_json::to_string(&report).map_err(io::Error::other)?);
    Ok(())
}

/// One client connecting to `target` and pinging `rate` times a second for `seconds`, as each
/// client of `clients` does, on this thread.
pub(crate) fn ping_series(
    target: SocketAddr,
    size: usize,
    rate: f64,
    seconds: Duration,
) -> io::Result<ClientResult> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    Pinger::connect(target, vec![Duration::ZERO], interval, size)?.run(Instant::now(), seconds)
}

/// A request waiting for its reply.
#[derive(Clone, Copy)]
struct Request {
    id: u32,
    /// When it was to be sent.
    due: Instant,
    /// When it was.
    sent: Instant,
}

/// The clients one thread drives, and their pings.
struct Pinger {
    fleet: Fleet,
    /// Each client's first send, after the start.
    phases: Vec<Duration>,
    /// Between one client's sends.
    interval: Duration,
    /// Each client's requests not yet answered, oldest first.
    waiting: Vec<VecDeque<Request>>,
    /// Each client's requests (their ids).
    requests: Vec<Client>,
    payload: Vec<u8>,
    request: Vec<u8>,
    result: ClientResult,
}

impl Pinger {
    /// Connects a client for each of `phases` (in increasing order) and completes their
    /// handshakes.
    fn connect(
        target: SocketAddr,
        phases: Vec<Duration>,
        interval: Duration,
        size: usize,
    ) -> io::Result<Self> {
        let limit = size.max(1024);
        let config =
            Config::new().max_message(limit as u32).max_payload(limit.min(usize::from(u16::MAX)) as u16);
        let mut fleet = Fleet::new(target, config, 2 * limit + 64)?;
        let count = phases.len();
        fleet.open(count, CONNECTING, Instant::now() + CONNECT_TIMEOUT)?;
        if fleet.held < count {
            return Err(io::Error::other(format!(
                "{} of {count} clients failed to connect",
                count - fleet.held
            )));
        }
        Ok(Self {
            fleet,
            phases,
            interval,
            waiting: vec![VecDeque::new(); count],
            requests: vec![Client::new(); count],
            payload: vec![0x5A; size - ECHO_HEADER],
            request: vec![0; size],
            result: ClientResult::default(),
        })
    }

    /// Pings on schedule from `start` for `seconds`, then waits for the last replies.
    fn run(mut self, start: Instant, seconds: Duration) -> io::Result<ClientResult> {
        let end = start + seconds;
        // The next send: client `next` in round `round`. Within a round the phases increase,
        // so the sends come in this order.
        let (mut next, mut round) = (0, 0u32);
        loop {
            let due = start + self.phases[next] + self.interval * round;
            if due >= end {
                break;
            }
            if due <= Instant::now() {
                self.ping(next, due)?;
                next += 1;
                if next == self.phases.len() {
                    (next, round) = (0, round + 1);
                }
                continue;
            }
            self.turn(due)?;
        }
        let give_up = end + REPLY_TIMEOUT;
        while self.waiting.iter().any(|queue| !queue.is_empty()) && Instant::now() < give_up {
            self.turn(give_up)?;
        }
        self.result.lost += self.waiting.iter().map(|queue| queue.len() as u64).sum::<u64>();
        let _ = self.fleet.close_all();
        Ok(self.result)
    }

    /// Sends client `client`'s next request, due at `due`.
    fn ping(&mut self, client: usize, due: Instant) -> io::Result<()> {
        let (len, pending) =
            self.requests[client].echo(&self.payload, &mut self.request).map_err(io::Error::other)?;
        let id = pending.id();
        let sent = Instant::now();
        self.result.lags.push(sent.saturating_duration_since(due));
        self.result.sent += 1;
        if self.fleet.send(client, &self.request[..len]) {
            self.waiting[client].push_back(Request { id, due, sent });
        } else {
            self.result.lost += 1;
        }
        Ok(())
    }

    /// Handles socket events until `wake` at most, taking the replies.
    fn turn(&mut self, wake: Instant) -> io::Result<()> {
        let (waiting, result) = (&mut self.waiting, &mut self.result);
        self.fleet.turn(wake, &mut |client, message, read_at| {
            if let Ok(Some(Reply::Echo { id, .. })) = Reply::parse(message) {
                take_reply(&mut waiting[client], id, read_at, result);
            }
        })
    }
}

/// Takes the reply `id` read at `read_at` off a client's `waiting` requests; requests sent
/// before it and still waiting are lost (replies come in order).
fn take_reply(waiting: &mut VecDeque<Request>, id: u32, read_at: Instant, result: &mut ClientResult) {
    while let Some(&first) = waiting.front() {
        // `id` is not waiting (a duplicate): leave the queue alone.
        if (id.wrapping_sub(first.id) as i32) < 0 {
            return;
        }
        waiting.pop_front();
        if first.id != id {
            result.lost += 1;
            continue;
        }
        let rtt = read_at.saturating_duration_since(first.due);
        if rtt <= REPLY_TIMEOUT {
            result.samples.push(rtt);
            result.from_send.push(read_at.saturating_duration_since(first.sent));
        } else {
            result.lost += 1;
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_taken_in_order_and_skipped_ones_lost() {
        let t0 = Instant::now();
        let mut waiting: VecDeque<_> = (0..4)
            .map(|id| {
                let due = t0 + Duration::from_millis(u64::from(id));
                Request { id, due, sent: due + Duration::from_micros(100) }
            })
            .collect();
        let mut result = ClientResult::default();
        take_reply(&mut waiting, 0, t0 + Duration::from_millis(1), &mut result);
        take_reply(&mut waiting, 2, t0 + Duration::from_millis(5), &mut result);
        take_reply(&mut waiting, 2, t0 + Duration::from_millis(6), &mut result);
        take_reply(&mut waiting, 3, t0 + Duration::from_secs(3), &mut result);
        assert_eq!(result.samples, [Duration::from_millis(1), Duration::from_millis(3)]);
        assert_eq!(result.from_send, [Duration::from_micros(900), Duration::from_micros(2900)]);
        assert_eq!(result.lost, 2, "1 never answered, 3 answered after the timeout");
        assert!(waiting.is_empty());
    }
}
