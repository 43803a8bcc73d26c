//! What the client commands share: addresses, connecting, and a service request that Ctrl-C
//! ends.

use std::time::Duration;

use clap::Args;
use framelink::std::{Addr, Link, LinkConfig, LinkError, RequestError, ServiceClient};

use crate::output::Failure;
use crate::psk::PskArgs;
use crate::{interrupt, seconds};

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
    #[command(flatten)]
    pub(crate) key: PskArgs,
}

impl ConnectArgs {
    /// The link settings these flags ask for; Ctrl-C cancels the link's waits.
    pub(crate) fn config(&self) -> LinkConfig {
        let mut config = LinkConfig::new().cancel_token(interrupt::token());
        if let Some(psk) = &self.key.psk {
            config = config.psk(psk.clone());
        }
        match self.timeout {
            Some(timeout) => config.handshake_timeout(timeout),
            None => config,
        }
    }
}

/// A number of seconds, fractions allowed, from 0.01 to a day.
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    seconds::within(0.01, 86_400.0)(text)
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

/// Runs `request` on `client` with Ctrl-C ending its wait at once; the link leaves Ctrl-C to
/// the command again afterwards (its graceful close included).
pub(crate) fn cancellable<T>(
    client: &mut ServiceClient,
    request: impl FnOnce(&mut ServiceClient) -> Result<T, RequestError>,
) -> Result<T, RequestError> {
    client.link_mut().set_cancel_token(Some(interrupt::token()));
    let result = request(client);
    client.link_mut().set_cancel_token(None);
    result
}
