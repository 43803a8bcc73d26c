//! `framelink demo`: a server on ephemeral loopback ports in this process, then send, ping,
//! bench both ways and info against it, in a few seconds. The first thing a new user runs.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use framelink::std::{Addr, PeerInfo, Reply, Server, ServerConfig};
use serde::Serialize;

use crate::bench::{self, BenchArgs, BenchReport};
use crate::client::ConnectArgs;
use crate::info::{self, InfoArgs, InfoReport};
use crate::output::{self, Failure, Mode, Outcome, Report, Run};
use crate::ping::{self, PingArgs, PingReport};
use crate::send::{self, SendArgs, SendReport};

/// Pings per transport.
const PINGS: u64 = 20;
/// Seconds of each bench.
const BENCH_SECONDS: f64 = 0.5;
/// Steps in all: send, two pings, four benches, info.
const STEPS: u32 = 8;
/// The message the demo sends.
const HELLO: &str = "Hello, Server!";

/// What the demo ran, step by step.
#[derive(Debug, Default, Serialize)]
pub(crate) struct DemoReport {
    /// Where the in-process server listened.
    pub(crate) server: Vec<String>,
    /// `send`.
    pub(crate) send: Option<SendReport>,
    /// `ping`, over TCP then UDP.
    pub(crate) ping: Vec<PingReport>,
    /// `bench` forward and reverse, over TCP then UDP.
    pub(crate) bench: Vec<BenchReport>,
    /// `info`.
    pub(crate) info: Option<InfoReport>,
    /// Steps that passed.
    pub(crate) steps: u32,
    /// The whole demo, in seconds.
    pub(crate) seconds: f64,
}

impl Report for DemoReport {
    fn print_text(&self) {
        output::say(format_args!(""));
        if self.steps < STEPS {
            output::say(format_args!("stopped after {} of {STEPS} steps, {:.1} s", self.steps, self.seconds));
            return;
        }
        output::say(format_args!("all {STEPS} steps passed in {:.1} s", self.seconds));
        output::say(format_args!(
            "next: `framelink serve` in one terminal and `framelink ping tcp://127.0.0.1:7878` in another;"
        ));
        output::say(format_args!("      `framelink help` lists every command"));
    }
}

/// Runs the demo.
pub(crate) fn run(mode: Mode) -> Run<DemoReport> {
    let start = Instant::now();
    let listen: Vec<Addr> = ["tcp://127.0.0.1:0", "udp://127.0.0.1:0"]
        .iter()
        .map(|a| a.parse().map_err(|e| Failure(format!("{a}: {e}"))))
        .collect::<Result<_, _>>()?;
    let config = ServerConfig::new().responder("framelink demo", env!("CARGO_PKG_VERSION"));
    let server = Server::bind(&listen, config).map_err(|e| Failure(e.to_string()))?;
    let bound = server.local_addrs();
    let text = mode.is_text();
    let handle = server
        .spawn(move |_: &PeerInfo, message: &[u8], _: &mut Reply<'_>| {
            if text {
                output::say(format_args!("  server: Received: {}", String::from_utf8_lossy(message)));
            }
        })
        .map_err(|e| Failure(format!("cannot start the server: {e}")))?;
    let (tcp, udp) = (bound[0].to_string(), bound[1].to_string());
    let mut report = DemoReport { server: vec![tcp.clone(), udp.clone()], ..DemoReport::default() };
    if text {
        output::say(format_args!("framelink demo: a server in this process on {tcp} and {udp}"));
        output::say(format_args!(""));
    }
    let error = steps(&mut report, &tcp, &udp, text).err();
    handle.shutdown();
    report.seconds = output::round(start.elapsed().as_secs_f64(), 3);
    Ok(Outcome::new(report, error))
}

/// Runs each step, printing the command it stands for and a line of result.
fn steps(report: &mut DemoReport, tcp: &str, udp: &str, text: bool) -> Result<(), Failure> {
    let show = |command: String| {
        if text {
            output::say(format_args!("$ framelink {command}"));
        }
    };
    let result = |line: String| {
        if text {
            output::say(format_args!("  {line}"));
        }
    };

    show(format!("send {tcp} \"{HELLO}\""));
    let args = SendArgs {
        addr: tcp.to_owned(),
        messages: vec![OsString::from(HELLO)],
        file: Vec::new(),
        connect: ConnectArgs::default(),
    };
    let sent = passed(send::run(&args, Mode::Quiet))?;
    result(format!(
        "sent {} ({} bytes), {} acknowledged",
        output::count(sent.sent, "message"),
        sent.bytes,
        sent.acknowledged
    ));
    report.send = Some(sent);
    report.steps += 1;

    for addr in [tcp, udp] {
        show(format!("ping {addr} -c {PINGS} -i 0"));
        let args = PingArgs {
            addr: addr.to_owned(),
            count: Some(PINGS),
            interval: Duration::ZERO,
            size: 64,
            timeout: None,
            deadline: None,
            quiet: true,
            connect: ConnectArgs::default(),
        };
        let pinged = passed(ping::run(&args, Mode::Quiet))?;
        if let Some(rtt) = &pinged.rtt_us {
            result(format!(
                "{} transmitted, {} received, {}% loss; rtt p50 {:.3} ms, min/avg/max {:.3}/{:.3}/{:.3} ms",
                pinged.transmitted,
                pinged.received,
                pinged.loss_percent,
                rtt.p50 / 1e3,
                rtt.min / 1e3,
                rtt.avg / 1e3,
                rtt.max / 1e3
            ));
        }
        report.ping.push(pinged);
        report.steps += 1;
    }

    for addr in [tcp, udp] {
        for reverse in [false, true] {
            show(format!("bench {addr} -t {BENCH_SECONDS}{}", if reverse { " --reverse" } else { "" }));
            let args = BenchArgs {
                addr: addr.to_owned(),
                connect: ConnectArgs::default(),
                time: Some(Duration::from_secs_f64(BENCH_SECONDS)),
                bytes: None,
                size: None,
                reverse,
                parallel: 1,
                bitrate: None,
                interval: Duration::ZERO,
                stall_timeout: bench::DEFAULT_STALL_TIMEOUT,
            };
            let benched = passed(bench::run(&args, Mode::Quiet))?;
            let counted = if reverse { "received and checked" } else { "acknowledged" };
            result(format!(
                "{} {}: {} {counted} in {:.2} s, {}",
                output::bitrate(benched.bits_per_second as f64),
                benched.direction,
                output::bytes(benched.bytes),
                benched.seconds,
                output::count(benched.retransmits, "retransmit")
            ));
            report.bench.push(benched);
            report.steps += 1;
        }
    }

    show(format!("info {tcp}"));
    let described =
        passed(info::run(&InfoArgs { addr: tcp.to_owned(), connect: ConnectArgs::default() }, Mode::Quiet))?;
    result(format!(
        "{} {}: protocol {}, capabilities: {}, max payload {} B, max message {} B, window {}",
        described.name,
        described.version,
        described.protocol_version,
        described.capabilities.join(", "),
        described.max_payload,
        described.max_message,
        described.window
    ));
    report.info = Some(described);
    report.steps += 1;
    Ok(())
}

/// The report of a step that passed; the failure of one that did not.
fn passed<R>(run: Run<R>) -> Result<R, Failure> {
    match run? {
        Outcome { report, error: None } => Ok(report),
        Outcome { error: Some(error), .. } => Err(error),
    }
}
