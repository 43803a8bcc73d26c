//! `framelink info ADDR`: the responder's INFO and its STATS of this session.

use clap::Args;
use framelink::core::service::{ServerCounters, ServiceMessage, StatsReply};
use framelink::core::wire::Capabilities;
use serde::Serialize;

use crate::client::{ConnectArgs, connect, parse_addr, request};
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

/// The responder's counters for this session (STATS), as it counts them.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct StatsJson {
    /// Messages it received.
    pub(crate) messages_received: u64,
    /// DATA payload bytes it received.
    pub(crate) bytes_received: u64,
    /// Messages it sent.
    pub(crate) messages_sent: u64,
    /// DATA payload bytes it sent.
    pub(crate) bytes_sent: u64,
    /// Packets it received.
    pub(crate) packets_received: u64,
    /// Packets it sent.
    pub(crate) packets_sent: u64,
    /// Frames it rejected for a bad CRC.
    pub(crate) crc_errors: u64,
    /// Frames it rejected for any reason.
    pub(crate) decode_errors: u64,
    /// Times its decoder resynchronised (COBS).
    pub(crate) resyncs: u64,
    /// Bytes its decoder dropped.
    pub(crate) dropped_bytes: u64,
    /// DATA packets it sent again.
    pub(crate) retransmits: u64,
    /// DATA packets it received twice.
    pub(crate) duplicates: u64,
    /// Its smoothed RTT in microseconds, if measured.
    pub(crate) srtt_us: Option<u64>,
    /// Its smallest RTT in microseconds, if measured.
    pub(crate) min_rtt_us: Option<u64>,
    /// SINK messages it consumed.
    pub(crate) sink_messages: u64,
    /// SINK bytes it consumed.
    pub(crate) sink_bytes: u64,
    /// SOURCE pattern bytes it sent.
    pub(crate) source_bytes: u64,
    /// ECHOs it answered.
    pub(crate) echoes: u64,
}

impl From<StatsReply> for StatsJson {
    fn from(s: StatsReply) -> Self {
        Self {
            messages_received: s.messages_received,
            bytes_received: s.bytes_received,
            messages_sent: s.messages_sent,
            bytes_sent: s.bytes_sent,
            packets_received: s.packets_received,
            packets_sent: s.packets_sent,
            crc_errors: s.crc_errors,
            decode_errors: s.decode_errors,
            resyncs: s.resyncs,
            dropped_bytes: s.dropped_bytes,
            retransmits: s.retransmits,
            duplicates: s.duplicates,
            srtt_us: s.srtt_us,
            min_rtt_us: s.min_rtt_us,
            sink_messages: s.sink_messages,
            sink_bytes: s.sink_bytes,
            source_bytes: s.source_bytes,
            echoes: s.echoes,
        }
    }
}

/// The counters of the server the responder runs in (`framelink serve`), from its STATS.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct ServerJson {
    /// Sessions it serves now, handshakes included.
    pub(crate) clients: u64,
    /// Clients it took in since it started.
    pub(crate) accepted: u64,
    /// Clients it refused at its client limit.
    pub(crate) refused_busy: u64,
    /// Clients it dropped at the handshake timeout.
    pub(crate) handshake_timeouts: u64,
    /// Sessions it ended at the idle timeout.
    pub(crate) idle_timeouts: u64,
    /// Sessions it ended for a message or payload over its limits.
    pub(crate) too_large: u64,
    /// Sessions it ended for another error of the client's.
    pub(crate) protocol_errors: u64,
    /// Datagrams it dropped with no session to go to.
    pub(crate) stray_datagrams: u64,
}

impl From<ServerCounters> for ServerJson {
    fn from(c: ServerCounters) -> Self {
        Self {
            clients: c.clients,
            accepted: c.accepted,
            refused_busy: c.refused_busy,
            handshake_timeouts: c.handshake_timeouts,
            idle_timeouts: c.idle_timeouts,
            too_large: c.too_large,
            protocol_errors: c.protocol_errors,
            stray_datagrams: c.stray_datagrams,
        }
    }
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
    /// Its counters for this session.
    pub(crate) stats: StatsJson,
    /// Its server's counters, when it runs in one (null from firmware).
    pub(crate) server: Option<ServerJson>,
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
        }
    }
}

/// The names of the bits of `bits`.
pub(crate) fn capability_names(bits: u16) -> Vec<String> {
    let mut names = Vec::new();
    if Capabilities(bits).contains(Capabilities::RETRANSMIT) {
        names.push("retransmit".to_owned());
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
    let mut link = connect(&addr, &args.connect)?;
    let mut report = request(&mut link, &addr, &ServiceMessage::Info, |reply| match reply {
        ServiceMessage::InfoReply(info) => Some(InfoReport {
            addr: addr.to_string(),
            name: info.name.to_owned(),
            version: info.software.to_owned(),
            protocol_version: info.version,
            capabilities: capability_names(info.capabilities),
            max_payload: info.max_payload,
            window: info.window,
            max_message: info.max_message,
            rx_buffer: info.rx_buffer,
            tx_buffer: info.tx_buffer,
            stats: StatsJson::from(StatsReply::default()),
            server: None,
        }),
        _ => None,
    })?;
    let stats = request(&mut link, &addr, &ServiceMessage::Stats, |reply| match reply {
        ServiceMessage::StatsReply(stats) => Some(*stats),
        _ => None,
    })?;
    (report.stats, report.server) = (StatsJson::from(stats), stats.server.map(ServerJson::from));
    let error = link.close().err().map(|e| Failure::at(&addr, e));
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
