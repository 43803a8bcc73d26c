//! A raw std TCP ping-pong: what a round trip costs with no framing, CRC or session.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::rtt::RttPercentiles;

/// Arguments of `raw-server`.
#[derive(Args, Debug)]
pub(crate) struct ServerArgs {
    /// Address to listen on (loopback)
    #[arg(long, default_value = "127.0.0.1:7900")]
    listen: SocketAddr,
    /// Bytes of each message
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// Arguments of `raw-ping`.
#[derive(Args, Debug)]
pub(crate) struct PingArgs {
    /// The raw-server
    #[arg(long, default_value = "127.0.0.1:7900")]
    connect: SocketAddr,
    /// Bytes of each message (the server's --size)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Round trips timed, after 100 untimed ones
    #[arg(long, default_value_t = 10_000)]
    count: usize,
}

/// Accepts connections and echoes each `size`-byte message back in one write, until killed.
pub(crate) fn serve(args: &ServerArgs) -> io::Result<()> {
    let listener = TcpListener::bind(args.listen)?;
    for stream in listener.incoming() {
        let stream = stream?;
        let size = args.size;
        thread::spawn(move || {
            let _ = echo(stream, size);
        });
    }
    Ok(())
}

fn echo(mut stream: TcpStream, size: usize) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; size];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

/// Times `count` round trips of one message each and prints their percentiles as JSON.
pub(crate) fn ping(args: &PingArgs) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&args.connect, Duration::from_secs(5))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let message: Vec<u8> = (0..args.size).map(|i| i as u8).collect();
    let mut reply = vec![0u8; args.size];
    let mut samples = Vec::with_capacity(args.count);
    for round in 0..args.count + 100 {
        let sent = Instant::now();
        stream.write_all(&message)?;
        stream.read_exact(&mut reply)?;
        if round >= 100 {
            samples.push(sent.elapsed());
        }
    }
    if reply != message {
        return Err(io::Error::other("the echo differs from the message"));
    }
    let summary = RttPercentiles::of(&mut samples).ok_or_else(|| io::Error::other("no samples"))?;
    println!("{}", serde_json::to_string(&summary).map_err(io::Error::other)?);
    Ok(())
}
