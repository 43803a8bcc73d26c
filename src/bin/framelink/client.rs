//! What the client commands share: addresses, connecting, and one request answered by one reply.

use std::time::{Duration, Instant};

use framelink::core::service::ServiceMessage;
use framelink::std::{Addr, Link, LinkConfig, LinkError, LinkEventRef};

use crate::interrupt;
use crate::output::Failure;

/// How long a request (INFO, STATS) waits for its reply.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a loop waits without checking for Ctrl-C.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Parses an address given on the command line.
pub(crate) fn parse_addr(text: &str) -> Result<Addr, Failure> {
    text.parse().map_err(|e| Failure(format!("bad address `{text}`: {e}")))
}

/// Connects to `addr` (handshake included) with `config`.
pub(crate) fn connect_with(addr: &Addr, config: &LinkConfig) -> Result<Link, Failure> {
    Link::connect_with(addr, config).map_err(|e| Failure::at(addr, e))
}

/// Connects to `addr` with the default settings.
pub(crate) fn connect(addr: &Addr) -> Result<Link, Failure> {
    connect_with(addr, &LinkConfig::new())
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
