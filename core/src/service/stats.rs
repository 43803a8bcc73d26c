//! The STATS reply: the session's counters, and the server's when there is one.

/// The counters in a STATS reply, in wire order. `u64::MAX` on the wire means "none"
/// (an RTT before the first sample).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StatsReply {
    /// Messages the responder received.
    pub messages_received: u64,
    /// DATA payload bytes the responder received.
    pub bytes_received: u64,
    /// Messages the responder queued to send.
    pub messages_sent: u64,
    /// DATA payload bytes the responder sent (first transmissions).
    pub bytes_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Frames rejected for a bad CRC.
    pub crc_errors: u64,
    /// Frames rejected for any reason (CRC included).
    pub decode_errors: u64,
    /// Times the decoder resynchronised (COBS).
    pub resyncs: u64,
    /// Bytes the decoder threw away.
    pub dropped_bytes: u64,
    /// DATA packets sent again.
    pub retransmits: u64,
    /// DATA packets received twice.
    pub duplicates: u64,
    /// Smoothed RTT in microseconds, if measured.
    pub srtt_us: Option<u64>,
    /// Smallest RTT in microseconds, if measured.
    pub min_rtt_us: Option<u64>,
    /// Messages consumed by SINK.
    pub sink_messages: u64,
    /// Bytes consumed by SINK.
    pub sink_bytes: u64,
    /// Bytes sent by SOURCE.
    pub source_bytes: u64,
    /// ECHO requests answered.
    pub echoes: u64,
    /// The counters of the server the session belongs to, when the responder runs in one
    /// (`framelink serve`); `None` from a responder with one session (firmware).
    pub server: Option<ServerCounters>,
}

/// The most counters a STATS reply carries: the session's, then the server's.
pub(super) const MAX_COUNTERS: usize = StatsReply::FIELDS + ServerCounters::FIELDS;

/// A counter as it goes on the wire: 8 bytes, little-endian.
pub(super) type Counter = [u8; 8];

impl StatsReply {
    /// The session's counters on the wire; the server's, when present, follow.
    pub const FIELDS: usize = 18;

    /// Its counters as they go on the wire (`u64::MAX` for an RTT not measured): the
    /// session's, and the server's when present.
    pub(super) fn counters(&self) -> ([Counter; Self::FIELDS], Option<[Counter; ServerCounters::FIELDS]>) {
        let opt = |v: Option<u64>| v.unwrap_or(u64::MAX);
        let session = [
            self.messages_received,
            self.bytes_received,
            self.messages_sent,
            self.bytes_sent,
            self.packets_received,
            self.packets_sent,
            self.crc_errors,
            self.decode_errors,
            self.resyncs,
            self.dropped_bytes,
            self.retransmits,
            self.duplicates,
            opt(self.srtt_us),
            opt(self.min_rtt_us),
            self.sink_messages,
            self.sink_bytes,
            self.source_bytes,
            self.echoes,
        ];
        (session.map(u64::to_le_bytes), self.server.map(ServerCounters::to_wire))
    }

    /// Reads the counters from `b`: the session's, and the server's if all of them are there.
    /// Bytes after them are ignored (room for more).
    pub(super) fn read(b: &[u8]) -> Option<Self> {
        let mut counters = [0u64; MAX_COUNTERS];
        let mut n = 0;
        for (field, c) in counters.iter_mut().zip(b.chunks_exact(8)) {
            *field = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            n += 1;
        }
        let (a, server) = counters[..n].split_first_chunk::<{ Self::FIELDS }>()?;
        let opt = |v: u64| (v != u64::MAX).then_some(v);
        Some(Self {
            messages_received: a[0],
            bytes_received: a[1],
            messages_sent: a[2],
            bytes_sent: a[3],
            packets_received: a[4],
            packets_sent: a[5],
            crc_errors: a[6],
            decode_errors: a[7],
            resyncs: a[8],
            dropped_bytes: a[9],
            retransmits: a[10],
            duplicates: a[11],
            srtt_us: opt(a[12]),
            min_rtt_us: opt(a[13]),
            sink_messages: a[14],
            sink_bytes: a[15],
            source_bytes: a[16],
            echoes: a[17],
            server: ServerCounters::read(server),
        })
    }
}

/// A server's counters of clients and limits, carried after the session's counters in a STATS
/// reply (PROTOCOL.md 14): how many clients it serves and took, and how many it let go for
/// each limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ServerCounters {
    /// Sessions being served now, handshakes included.
    pub clients: u64,
    /// Clients taken in since the start.
    pub accepted: u64,
    /// Clients refused at the client limit (ERROR Busy).
    pub refused_busy: u64,
    /// Clients dropped for not completing the handshake in time.
    pub handshake_timeouts: u64,
    /// Sessions ended after the idle timeout (ERROR IdleTimeout).
    pub idle_timeouts: u64,
    /// Sessions ended for a message or payload over the limits (ERROR MessageTooLarge or
    /// PayloadTooLarge).
    pub too_large: u64,
    /// Sessions ended for another error of the peer's (flow control, version, capability).
    pub protocol_errors: u64,
    /// Datagrams dropped without a session to go to (junk, or not a HELLO from a new peer).
    pub stray_datagrams: u64,
    /// Keyed sessions: packets dropped for failing authentication (forged, altered, replayed,
    /// or a handshake with another key), in every session since the start. The ninth counter:
    /// 0 when a server sends only eight.
    pub auth_failures: u64,
}

impl ServerCounters {
    /// Counters on the wire (a reader needs the first eight).
    pub const FIELDS: usize = 9;
    /// Counters a reader needs before it takes the server's.
    const REQUIRED: usize = 8;

    /// How many counters go on the wire: the ninth (`auth_failures`) only when it is not 0, as
    /// a reader takes a missing one for 0. So a reply has one encoding, and a server without
    /// keyed sessions sends what it sent before there was a ninth.
    pub(super) fn fields_sent(&self) -> usize {
        if self.auth_failures == 0 { Self::REQUIRED } else { Self::FIELDS }
    }

    /// The counters as they go on the wire.
    pub(super) fn to_wire(self) -> [Counter; Self::FIELDS] {
        [
            self.clients,
            self.accepted,
            self.refused_busy,
            self.handshake_timeouts,
            self.idle_timeouts,
            self.too_large,
            self.protocol_errors,
            self.stray_datagrams,
            self.auth_failures,
        ]
        .map(u64::to_le_bytes)
    }

    /// The counters from `a`, if the eight required ones are there.
    pub(super) fn read(a: &[u64]) -> Option<Self> {
        let (required, more) = a.split_first_chunk::<{ Self::REQUIRED }>()?;
        let mut counters = Self::from_array(required);
        counters.auth_failures = more.first().copied().unwrap_or(0);
        Some(counters)
    }

    fn from_array(a: &[u64; Self::REQUIRED]) -> Self {
        Self {
            clients: a[0],
            accepted: a[1],
            refused_busy: a[2],
            handshake_timeouts: a[3],
            idle_timeouts: a[4],
            too_large: a[5],
            protocol_errors: a[6],
            stray_datagrams: a[7],
            auth_failures: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(n: usize) -> [u8; 8 * 28] {
        let mut b = [0u8; 8 * 28];
        for (i, chunk) in b.chunks_exact_mut(8).enumerate().take(n) {
            chunk.copy_from_slice(&(i as u64 + 1).to_le_bytes());
        }
        b
    }

    #[test]
    fn the_server_counters_are_read_only_when_all_are_there() {
        let b = counters(28);
        assert_eq!(StatsReply::read(&b[..8 * 17]), None, "a session counter missing");
        let alone = StatsReply::read(&b[..8 * 18]).unwrap();
        assert_eq!((alone.messages_received, alone.echoes, alone.server), (1, 18, None));
        assert_eq!(StatsReply::read(&b[..8 * 25 + 7]).unwrap().server, None, "a server counter cut short");
        let full = StatsReply::read(&b[..8 * 26]).unwrap();
        let server = full.server.unwrap();
        assert_eq!((server.clients, server.stray_datagrams, server.auth_failures), (19, 26, 0));
        let nine = StatsReply::read(&b[..8 * 27]).unwrap();
        assert_eq!(nine.server.unwrap().auth_failures, 27, "the ninth, when there");
        assert_eq!(StatsReply::read(&b).unwrap(), nine, "bytes after the counters are ignored");
    }

    #[test]
    fn a_ninth_counter_of_0_is_not_sent_so_a_reply_has_one_encoding() {
        use crate::service::ServiceMessage;
        let mut out = [0u8; 2 + 8 * MAX_COUNTERS];
        for (auth_failures, counters) in [(0, 26), (1, 27)] {
            let server = ServerCounters { clients: 2, auth_failures, ..Default::default() };
            let reply = ServiceMessage::StatsReply(StatsReply { server: Some(server), ..Default::default() });
            let len = reply.emit(&mut out).unwrap();
            assert_eq!(len, 2 + 8 * counters, "auth_failures {auth_failures}");
            assert_eq!(ServiceMessage::parse(&out[..len]), Ok(Some(reply)));
        }
    }

    #[test]
    fn write_and_read_agree() {
        let server = ServerCounters {
            clients: 1,
            too_large: 5,
            stray_datagrams: u64::MAX,
            auth_failures: 3,
            ..Default::default()
        };
        for server in [None, Some(server)] {
            let reply = StatsReply { echoes: 9, srtt_us: Some(3), server, ..Default::default() };
            let (session, server) = reply.counters();
            let mut b = session.as_flattened().to_vec();
            b.extend(server.iter().flatten().flatten());
            assert_eq!(StatsReply::read(&b), Some(reply));
        }
    }
}
