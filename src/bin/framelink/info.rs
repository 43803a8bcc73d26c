//! `framelink info ADDR`: the responder's INFO and its STATS of this session, asked through the
//! library's `ServiceClient`.
//!
//! In JSON, `stats` and `server` are the library's `StatsReply` and `ServerCounters` as serde
//! writes them (`stats` also holds `server`); the INFO reply's fields keep the keys the tool has
//! always used (`version` is the software's, `protocol_version` the protocol's, `capabilities`
//! their names), where the library's `ServiceInfo` would name them otherwise.

use clap::Args;
use framelink::core::service::{ServerCounters, StatsReply};
use framelink::core::wire::Capabilities;
use framelink::std::{ServiceClient, ServiceInfo};
use serde::Serialize;

use crate::client::{ConnectArgs, REPLY_TIMEOUT, cancellable, connect, parse_addr};
use crate::output::{self, Failure, Mode, Outcome, Report, Run};

/// Arguments of `framelink info`.
#[derive(Args, Clone, Debug)]
pub(crate) struct InfoArgs {
    /// Where: tcp://HOST:PORT, udp://HOST:PORT, tcp+cobs://HOST:PORT, serial://PORT[?baud=N] or
    /// HOST:PORT (TCP)
    pub(crate) addr: String,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// What `info` learned.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct InfoReport {
    /// The peer.
    pub(crate) addr: String,
    /// The responder's name.
    pub(crate) name: String,
    /// Its software version.
    pub(crate) version: String,
    /// The protocol version it speaks.
    pub(crate) protocol_version: u8,
    /// The capabilities it supports, by name (unknown bits in hex).
    pub(crate) capabilities: Vec<String>,
    /// The largest DATA payload it accepts.
    pub(crate) max_payload: u16,
    /// DATA packets it accepts in flight.
    pub(crate) window: u16,
    /// The largest message it accepts.
    pub(crate) max_message: u32,
    /// Its receive buffer, in bytes.
    pub(crate) rx_buffer: u32,
    /// Its send buffer, in bytes.
    pub(crate) tx_buffer: u32,
    /// Its counters for this session (and its server's, as `server` below).
    pub(crate) stats: StatsReply,
    /// Its server's counters, when it runs in one (null from firmware).
    pub(crate) server: Option<ServerCounters>,
}

impl InfoReport {
    /// The report of `info` and `stats` from the responder at `addr`.
    fn new(addr: String, info: ServiceInfo, stats: StatsReply) -> Self {
        Self {
            addr,
            capabilities: capability_names(info.capabilities),
            name: info.name,
            version: info.software,
            protocol_version: info.version,
            max_payload: info.max_payload,
            window: info.window,
            max_message: info.max_message,
            rx_buffer: info.rx_buffer,
            tx_buffer: info.tx_buffer,
            server: stats.server,
            stats,
        }
    }
}

impl Report for InfoReport {
    fn print_text(&self) {
        let say = |line: String| output::say(format_args!("{line}"));
        let caps =
            if self.capabilities.is_empty() { "none".to_owned() } else { self.capabilities.join(", ") };
        say(format!("{} {} at {}", self.name, self.version, self.addr));
        say(format!("  protocol version {}, capabilities: {caps}", self.protocol_version));
        say(format!(
            "  max payload {} B, max message {} B, window {} packets",
            self.max_payload, self.max_message, self.window
        ));
        say(format!("  buffers: receive {} B, send {} B", self.rx_buffer, self.tx_buffer));
        let s = &self.stats;
        say("this session, as the responder counts it:".to_owned());
        say(format!(
            "  received {} ({} bytes) in {}; sent {} ({} bytes) in {}",
            output::count(s.messages_received, "message"),
            s.bytes_received,
            output::count(s.packets_received, "packet"),
            output::count(s.messages_sent, "message"),
            s.bytes_sent,
            output::count(s.packets_sent, "packet"),
        ));
        say(format!(
            "  errors: {} CRC, {} decode, {} resyncs, {} bytes dropped; {} retransmits, {} duplicates",
            s.crc_errors, s.decode_errors, s.resyncs, s.dropped_bytes, s.retransmits, s.duplicates
        ));
        let rtt = |us: Option<u64>| us.map_or("-".to_owned(), |us| format!("{:.3} ms", us as f64 / 1e3));
        say(format!("  rtt: smoothed {}, min {}", rtt(s.srtt_us), rtt(s.min_rtt_us)));
        say(format!(
            "  service: SINK {} ({} bytes), SOURCE {} bytes, ECHO {} answered",
            output::count(s.sink_messages, "message"),
            s.sink_bytes,
            s.source_bytes,
            s.echoes
        ));
        if let Some(c) = &self.server {
            say("the server:".to_owned());
            say(format!(
                "  {} now, {} accepted, {} refused (client limit)",
                output::count(c.clients, "client"),
                c.accepted,
                c.refused_busy
            ));
            say(format!(
                "  ended: {} handshake timeouts, {} idle timeouts, {} too large, {} protocol errors; {} stray datagrams",
                c.handshake_timeouts, c.idle_timeouts, c.too_large, c.protocol_errors, c.stray_datagrams
            ));
            say(format!(
                "  authentication: {} dropped (forged, altered or replayed)",
                output::count(c.auth_failures, "packet")
            ));
        }
    }
}

/// The names of the bits of `bits`.
pub(crate) fn capability_names(bits: u16) -> Vec<String> {
    let mut names = Vec::new();
    if Capabilities(bits).contains(Capabilities::RETRANSMIT) {
        names.push("retransmit".to_owned());
    }
    if Capabilities(bits).contains(Capabilities::KEYED) {
        names.push("keyed".to_owned());
    }
    if Capabilities(bits).contains(Capabilities::AES_256_GCM) {
        names.push("aes-256-gcm".to_owned());
    }
    let unknown = Capabilities(bits).difference(Capabilities::KNOWN);
    if !unknown.is_empty() {
        names.push(format!("{:#06x}", unknown.0));
    }
    names
}

/// Runs `framelink info`.
pub(crate) fn run(args: &InfoArgs, _mode: Mode) -> Run<InfoReport> {
    let addr = parse_addr(&args.addr)?;
    let link = connect(&addr, &args.connect)?;
    let mut client = ServiceClient::new(link).with_timeout(REPLY_TIMEOUT);
    let info = cancellable(&mut client, ServiceClient::info).map_err(|e| Failure::at(&addr, e))?;
    let stats = cancellable(&mut client, ServiceClient::stats).map_err(|e| Failure::at(&addr, e))?;
    let report = InfoReport::new(addr.to_string(), info, stats);
    let error = client.close().err().map(|e| Failure::at(&addr, e));
    Ok(Outcome::new(report, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_named() {
        assert_eq!(capability_names(0), Vec::<String>::new());
        assert_eq!(capability_names(1), ["retransmit"]);
        assert_eq!(capability_names(0x8001), ["retransmit", "0x8000"]);
    }
}
