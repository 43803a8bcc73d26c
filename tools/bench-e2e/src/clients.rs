//! Many framelink clients pinging one server at once, at a fixed total rate.

use std::io;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use framelink_core::service::ServiceMessage;
use framelink_std::{Addr, Link, LinkConfig, LinkEventRef};
use serde::Serialize;

use crate::rtt::RttPercentiles;

/// How long a client waits for a reply before counting the ping lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Arguments of `clients`.
#[derive(Args, Debug)]
pub(crate) struct ClientsArgs {
    /// The server: tcp://127.0.0.1:PORT (a `framelink serve`)
    #[arg(long)]
    connect: Addr,
    /// Clients, each on its own link and thread
    #[arg(long, default_value_t = 1)]
    clients: usize,
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
    rate: f64,
    seconds: f64,
    size: usize,
    /// Seconds until every client had connected.
    connect_seconds: f64,
    sent: u64,
    /// Requests without a reply within 2 s.
    lost: u64,
    rtt: Option<RttPercentiles>,
}

/// One client's pings: RTT samples and requests lost.
pub(crate) struct ClientResult {
    pub(crate) samples: Vec<Duration>,
    pub(crate) sent: u64,
    pub(crate) lost: u64,
}

/// Connects every client, pings for the given time, prints the report as JSON.
pub(crate) fn run(args: &ClientsArgs) -> io::Result<()> {
    if args.clients == 0 || args.rate <= 0.0 || args.size < 6 {
        return Err(io::Error::other("need at least one client, a positive rate and --size >= 6"));
    }
    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.clients as f64 / args.rate);
    let seconds = Duration::from_secs_f64(args.seconds);
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let mut threads = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let addr = args.connect.clone();
        let barrier = Arc::clone(&barrier);
        let size = args.size;
        // Clients start at even offsets within one interval, so requests arrive evenly spread.
        let phase = interval.mul_f64(index as f64 / args.clients as f64);
        let spawned = thread::Builder::new().stack_size(256 * 1024).spawn(move || {
            let link = Link::connect(&addr, &LinkConfig::new().max_message(16 * 1024));
            barrier.wait();
            let mut link = link.map_err(|e| io::Error::other(format!("client {index}: {e}")))?;
            let result = pings(&mut link, size, phase, interval, seconds);
            let _ = link.close();
            result
        })?;
        threads.push(spawned);
    }
    barrier.wait();
    let connect_seconds = started.elapsed().as_secs_f64();
    let (mut samples, mut sent, mut lost) = (Vec::new(), 0, 0);
    for thread in threads {
        let result = thread.join().map_err(|_| io::Error::other("a client panicked"))??;
        samples.extend(result.samples);
        sent += result.sent;
        lost += result.lost;
    }
    let report = ClientsReport {
        clients: args.clients,
        rate: args.rate,
        seconds: args.seconds,
        size: args.size,
        connect_seconds,
        sent,
        lost,
        rtt: RttPercentiles::of(&mut samples),
    };
    println!("{}", serde_json::to_string(&report).map_err(io::Error::other)?);
    Ok(())
}

/// One client connecting to `addr` and pinging as [`pings`] does, then closing.
pub(crate) fn ping_series(
    addr: &Addr,
    size: usize,
    phase: Duration,
    interval: Duration,
    seconds: Duration,
) -> io::Result<ClientResult> {
    let mut link =
        Link::connect(addr, &LinkConfig::new().max_message(16 * 1024)).map_err(io::Error::other)?;
    let result = pings(&mut link, size, phase, interval, seconds);
    let _ = link.close();
    result
}

/// ECHO requests every `interval` from `phase` on, for `seconds`, each waiting for its reply.
fn pings(
    link: &mut Link,
    size: usize,
    phase: Duration,
    interval: Duration,
    seconds: Duration,
) -> io::Result<ClientResult> {
    let payload = vec![0x5Au8; size - 6];
    let mut request = vec![0u8; size];
    let start = Instant::now();
    let end = start + seconds;
    let mut next = start + phase;
    let mut result = ClientResult { samples: Vec::new(), sent: 0, lost: 0 };
    while next < end {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let id = result.sent as u32;
        let len =
            ServiceMessage::Echo { id, payload: &payload }.emit(&mut request).map_err(io::Error::other)?;
        let sent = Instant::now();
        link.send(&request[..len]).map_err(io::Error::other)?;
        result.sent += 1;
        match wait_reply(link, id, sent + REPLY_TIMEOUT)? {
            Some(rtt) => result.samples.push(rtt.duration_since(sent)),
            None => result.lost += 1,
        }
        next = (next + interval).max(Instant::now());
    }
    Ok(result)
}

/// Waits until `until` for the ECHO reply `id`; when it came.
fn wait_reply(link: &mut Link, id: u32, until: Instant) -> io::Result<Option<Instant>> {
    loop {
        let Some(left) = until.checked_duration_since(Instant::now()) else { return Ok(None) };
        let event = link.next_event_ref(Some(left)).map_err(io::Error::other)?;
        let arrived = Instant::now();
        if let Some(LinkEventRef::Message(message)) = event
            && let Ok(Some(ServiceMessage::EchoReply { id: got, .. })) = ServiceMessage::parse(message)
            && got == id
        {
            return Ok(Some(arrived));
        }
    }
}
