//! QUIC (quinn) bulk transfer: the reference `framelink bench` over UDP is compared with through
//! the same lossy relay (`framelink relay`).
//!
//! `quic-server` makes a self-signed certificate for `localhost` at start, writes it (DER) to
//! `--cert` once its socket is bound, says `listening on ADDR` on stderr, and serves until
//! killed. `quic-send` trusts that one
//! certificate and nothing else (a root store holding only it; the server's name and signature
//! are checked as usual), opens one bidirectional stream and writes `--size`-byte chunks on it
//! for `--seconds` (then resets the stream: nothing still buffered is sent) or until `--bytes`
//! are written (then finishes it). The server reads the stream in order, as an application
//! would, and answers on the same stream with the bytes it read and the time from the first of
//! them to the stream's end (its last byte, or the reset): the goodput, bytes delivered to the
//! receiving application per second.
//!
//! Both sides use quinn's default transport settings (CUBIC congestion control, a 1.25 MB
//! stream receive window, path MTU discovery) unless `--mtu` fixes the packet size.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use quinn::rustls::RootCertStore;
use quinn::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use quinn::{
    ClientConfig, Connection, Endpoint, ReadError, RecvStream, ServerConfig, TransportConfig, VarInt,
};
use serde::Serialize;
use tokio::time::{timeout, timeout_at};

/// The name in the certificate, and the one the client checks.
const SERVER_NAME: &str = "localhost";
/// The server's answer: bytes read (u64), then microseconds from the first to the end (u64).
const ANSWER_LEN: usize = 16;
/// How long the handshake, and then the server's answer, may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server keeps a connection after answering, for the client to close it.
const LINGER: Duration = Duration::from_secs(10);
/// The most bytes `quic-send` writes in one run (`--bytes` above it is refused).
const MAX_BYTES: u64 = 1 << 40;

/// Arguments of `quic-server`.
#[derive(Args, Debug)]
pub(crate) struct ServerArgs {
    /// Address to listen on (loopback)
    #[arg(long, default_value = "127.0.0.1:7960")]
    listen: SocketAddr,
    /// Where to write the server's self-signed certificate (DER) for quic-send's --cert
    #[arg(long)]
    cert: PathBuf,
    /// UDP payload bytes of every QUIC packet, with path MTU discovery off [default: quinn's, 1200
    /// growing by discovery up to 1452]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1200..=65_527))]
    mtu: Option<u16>,
}

/// Arguments of `quic-send`.
#[derive(Args, Debug)]
pub(crate) struct SendArgs {
    /// The quic-server, or a relay in front of it (loopback)
    server: SocketAddr,
    /// The server's certificate (DER), as quic-server wrote it: the one certificate trusted
    #[arg(long)]
    cert: PathBuf,
    /// Seconds to send
    #[arg(short = 't', long, default_value_t = 5.0, conflicts_with = "bytes")]
    seconds: f64,
    /// Bytes to send instead
    #[arg(short = 'n', long)]
    bytes: Option<u64>,
    /// Bytes of each write (framelink bench sends 1200-byte messages over UDP)
    #[arg(long, default_value_t = 1200, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    size: u32,
    /// UDP payload bytes of every QUIC packet, with path MTU discovery off [default: quinn's]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1200..=65_527))]
    mtu: Option<u16>,
}

/// What `quic-send` prints.
#[derive(Debug, Serialize)]
struct SendReport {
    /// The address sent to.
    addr: String,
    /// Bytes of each write.
    message_size: u32,
    /// Bytes the server's application read, in order.
    bytes: u64,
    /// From the first byte read to the stream's end (last byte or reset), at the server (three
    /// decimals).
    seconds: f64,
    /// `bytes` over `seconds`, in whole bits per second.
    bits_per_second: u64,
    /// Bytes this side handed to the stream before the end.
    bytes_written: u64,
    /// quinn's connection counters at the end, this side.
    quic: PathReport,
}

/// quinn's path counters of the sending side.
#[derive(Debug, Serialize)]
struct PathReport {
    /// UDP datagrams sent.
    datagrams_sent: u64,
    /// Their bytes.
    udp_bytes_sent: u64,
    /// Packets declared lost.
    lost_packets: u64,
    /// Congestion events (window reductions).
    congestion_events: u64,
    /// Smoothed RTT at the end, in milliseconds.
    rtt_ms: f64,
    /// Congestion window at the end, in bytes.
    cwnd: u64,
    /// UDP payload size in use at the end.
    mtu: u16,
}

fn other(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

/// A single-threaded tokio runtime: one core for quinn, the other for the relay and the peer.
fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// quinn's default transport settings, or packets of `mtu` bytes with MTU discovery off.
fn transport(mtu: Option<u16>) -> Arc<TransportConfig> {
    let mut config = TransportConfig::default();
    if let Some(mtu) = mtu {
        config.initial_mtu(mtu).min_mtu(mtu).mtu_discovery_config(None);
    }
    Arc::new(config)
}

/// Serves bulk streams until killed.
pub(crate) fn serve(args: &ServerArgs) -> io::Result<()> {
    let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()]).map_err(other)?;
    let cert = certified.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let mut config = ServerConfig::with_single_cert(vec![cert.clone()], key.into()).map_err(other)?;
    config.transport_config(transport(args.mtu));
    runtime()?.block_on(async {
        let endpoint = Endpoint::server(config, args.listen)?;
        write_atomically(&args.cert, &cert)?;
        eprintln!("listening on {}", endpoint.local_addr()?);
        // Bounded by the process's life: the script kills the server after its runs.
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                if let Err(error) = serve_connection(incoming).await {
                    eprintln!("bench-e2e quic-server: {error}");
                }
            });
        }
        Ok(())
    })
}

/// Writes `bytes` to `path` through a temporary file, so that a reader never sees half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    fs::write(&partial, bytes)?;
    fs::rename(&partial, path)
}

/// One connection: each bidirectional stream read to its end or reset, then answered.
async fn serve_connection(incoming: quinn::Incoming) -> io::Result<()> {
    let connection = incoming.await.map_err(other)?;
    while let Ok((mut send, recv)) = connection.accept_bi().await {
        let (bytes, elapsed) = drain(recv).await?;
        let mut answer = [0u8; ANSWER_LEN];
        answer[..8].copy_from_slice(&bytes.to_be_bytes());
        answer[8..].copy_from_slice(&(elapsed.as_micros() as u64).to_be_bytes());
        send.write_all(&answer).await.map_err(other)?;
        send.finish().map_err(other)?;
    }
    // The client closes the connection once it has the answer; dropping it sooner could lose
    // the answer.
    let _ = timeout(LINGER, connection.closed()).await;
    Ok(())
}

/// Reads a stream in order until it ends or is reset: the bytes, and the time from the first
/// byte to the end (the last byte, or the reset: a transfer that stalls before the sender's
/// deadline is charged the time it stalled).
async fn drain(mut recv: RecvStream) -> io::Result<(u64, Duration)> {
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    loop {
        match recv.read_chunk(usize::MAX, true).await {
            Ok(Some(chunk)) => {
                bytes += chunk.bytes.len() as u64;
                first.get_or_insert_with(Instant::now);
            }
            Ok(None) | Err(ReadError::Reset(_)) => break,
            Err(error) => return Err(other(error)),
        }
    }
    Ok((bytes, first.map_or(Duration::ZERO, |first| first.elapsed())))
}

/// Sends one stream to a quic-server and prints the goodput it measured as JSON.
pub(crate) fn send(args: &SendArgs) -> io::Result<()> {
    if args.bytes.is_some_and(|b| b > MAX_BYTES) || !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(other(format!("--bytes at most {MAX_BYTES}, --seconds above 0 and at most 3600")));
    }
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(fs::read(&args.cert)?)).map_err(other)?;
    let mut config = ClientConfig::with_root_certificates(Arc::new(roots)).map_err(other)?;
    config.transport_config(transport(args.mtu));
    let report = runtime()?.block_on(async {
        let mut endpoint = Endpoint::client((Ipv4Addr::LOCALHOST, 0).into())?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint.connect(args.server, SERVER_NAME).map_err(other)?;
        let connection = timeout(ANSWER_TIMEOUT, connecting)
            .await
            .map_err(|_| other("no handshake within 15 s"))?
            .map_err(other)?;
        let report = transfer(&connection, args).await;
        connection.close(VarInt::from_u32(0), b"done");
        endpoint.wait_idle().await;
        report
    })?;
    println!("{}", serde_json::to_string(&report).map_err(other)?);
    Ok(())
}

/// Writes the stream, then waits for the server's answer.
async fn transfer(connection: &Connection, args: &SendArgs) -> io::Result<SendReport> {
    let (mut send, mut recv) = connection.open_bi().await.map_err(other)?;
    let chunk = vec![0x5au8; args.size as usize];
    let mut written = 0u64;
    if let Some(bytes) = args.bytes {
        while written < bytes {
            let len = (bytes - written).min(chunk.len() as u64) as usize;
            send.write_all(&chunk[..len]).await.map_err(other)?;
            written += len as u64;
        }
        send.finish().map_err(other)?;
    } else {
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.seconds);
        // Each write waits at most until the deadline (for the flow-control window to open).
        while let Ok(result) = timeout_at(deadline, send.write(&chunk)).await {
            written += result.map_err(other)? as u64;
        }
        // What is still buffered would only lengthen the run: the measurement ends here.
        send.reset(VarInt::from_u32(0)).map_err(other)?;
    }
    let mut answer = [0u8; ANSWER_LEN];
    timeout(ANSWER_TIMEOUT, recv.read_exact(&mut answer))
        .await
        .map_err(|_| other("no answer from the server within 15 s"))?
        .map_err(other)?;
    let bytes = u64::from_be_bytes(answer[..8].try_into().map_err(other)?);
    let micros = u64::from_be_bytes(answer[8..].try_into().map_err(other)?);
    let seconds = micros as f64 / 1e6;
    let stats = connection.stats();
    Ok(SendReport {
        addr: args.server.to_string(),
        message_size: args.size,
        bytes,
        seconds: (seconds * 1e3).round() / 1e3,
        bits_per_second: if seconds > 0.0 { (bytes as f64 * 8.0 / seconds).round() as u64 } else { 0 },
        bytes_written: written,
        quic: PathReport {
            datagrams_sent: stats.udp_tx.datagrams,
            udp_bytes_sent: stats.udp_tx.bytes,
            lost_packets: stats.path.lost_packets,
            congestion_events: stats.path.congestion_events,
            rtt_ms: (stats.path.rtt.as_secs_f64() * 1e6).round() / 1e3,
            cwnd: stats.path.cwnd,
            mtu: stats.path.current_mtu,
        },
    })
}
