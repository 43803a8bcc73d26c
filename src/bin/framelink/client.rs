//! What the client commands share: addresses, connecting, and one request answered by one reply.

use std::time::{Duration, Instant};

use clap::Args;
use framelink::core::service::ServiceMessage;
use framelink::std::{Addr, Link, LinkConfig, LinkError, LinkEventRef};

use crate::interrupt;
use crate::output::Failure;

/// How long a request (INFO, STATS) waits for its reply.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a loop waits without checking for Ctrl-C.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// The connection flags every client command takes.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct ConnectArgs {
    /// Give up on the connect and the handshake after S seconds (fractions too, such as 0.5)
    /// [default: 10]
    #[arg(id = "connect_timeout", long = "timeout", value_name = "S", value_parser = parse_seconds)]
    pub(crate) timeout: Option<Duration>,
}

impl ConnectArgs {
    /// The link settings these flags ask for; Ctrl-C cancels the link's waits.
    pub(crate) fn config(&self) -> LinkConfig {
        let config = LinkConfig::new().cancel_token(interrupt::token());
        match self.timeout {
            Some(timeout) => config.handshake_timeout(timeout),
            None => config,
        }
    }
}

/// A number of seconds, fractions allowed, from 0.01 to a day.
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.01..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}` is not a number of seconds from 0.01 to 86400")),
    }
}

/// Parses an address given on the command line.
pub(crate) fn parse_addr(text: &str) -> Result<Addr, Failure> {
    text.parse().map_err(|e| Failure(format!("bad address `{text}`: {e}")))
}

/// Connects to `addr` (handshake included) with `config`; Ctrl-C during the connect is a
/// failure ("interrupted while connecting").
pub(crate) fn connect_with(addr: &Addr, config: &LinkConfig) -> Result<Link, Failure> {
    Link::connect_with(addr, config).map_err(|e| match e {
        LinkError::Interrupted => Failure::at(addr, "interrupted while connecting"),
        e => Failure::at(addr, e),
    })
}

/// Connects to `addr` as the connection flags ask, Ctrl-C ending the connect at once; the link
/// then leaves Ctrl-C to the command's own loop (which stops, then closes gracefully).
pub(crate) fn connect(addr: &Addr, args: &ConnectArgs) -> Result<Link, Failure> {
    let mut link = connect_with(addr, &args.config())?;
    link.set_cancel_token(None);
    Ok(link)
}

/// Sends `request` and waits (at most [`REPLY_TIMEOUT`]) for the service message that `want`
/// accepts; other messages are skipped. A service ERROR is a failure.
pub(crate) fn request<T>(
    link: &mut Link,
    addr: &Addr,
    request: &ServiceMessage<'_>,
    mut want: impl FnMut(&ServiceMessage<'_>) -> Option<T>,
) -> Result<T, Failure> {
    let mut buf = vec![0u8; request.encoded_len()];
    let len = request.emit(&mut buf).map_err(|e| Failure::at(addr, e))?;
    link.send(&buf[..len]).map_err(|e| Failure::at(addr, e))?;
    let until = Instant::now() + REPLY_TIMEOUT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::at(addr, format!("no reply within {} s", REPLY_TIMEOUT.as_secs())));
        }
        if interrupt::requested() {
            return Err(Failure::at(addr, "interrupted"));
        }
        match link.next_event_ref(Some(left.min(TICK))) {
            Ok(Some(LinkEventRef::Message(message))) => match ServiceMessage::parse(message) {
                Ok(Some(ServiceMessage::Error { error })) => {
                    return Err(Failure::at(addr, format!("the responder answered: {error}")));
                }
                Ok(Some(reply)) => {
                    if let Some(found) = want(&reply) {
                        return Ok(found);
                    }
                }
                Ok(None) | Err(_) => {}
            },
            Ok(Some(LinkEventRef::Closed(reason))) => {
                return Err(Failure::at(addr, LinkError::Closed(reason)));
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::at(addr, e)),
        }
    }
}
