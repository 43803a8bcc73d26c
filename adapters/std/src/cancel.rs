//! [`CancelToken`]: a flag that ends a [`Link`](crate::Link)'s waits early, from another thread
//! or a signal handler.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The longest a link with a [`CancelToken`] waits without looking at it.
pub(crate) const CANCEL_POLL: Duration = Duration::from_millis(100);

/// A shared flag that makes a [`Link`](crate::Link)'s blocking calls give up: once
/// [`cancel`](Self::cancel)led, `connect` (the TCP connect and the handshake included), `send`
/// while it waits for room, `next_event`, `flush`, `drive` and `close` return
/// [`LinkError::Interrupted`](crate::LinkError::Interrupted) within about 100 ms.
///
/// Give it to [`LinkConfig::cancel_token`](crate::LinkConfig::cancel_token); clones share the
/// flag, so one token can stop many links (a Ctrl-C handler's, say). The link stays usable:
/// [`reset`](Self::reset) the token (or [`Link::set_cancel_token`](crate::Link::set_cancel_token)
/// another one) to go on, and close it gracefully.
///
/// ```
/// use std::time::{Duration, Instant};
/// use framelink_std::{CancelToken, Link, LinkConfig, LinkError};
///
/// // A peer that takes the connection and never answers.
/// let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = format!("tcp://{}", silent.local_addr()?);
/// let token = CancelToken::new();
/// let canceller = token.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(200));
///     canceller.cancel();
/// });
/// let started = Instant::now();
/// let config = LinkConfig::new().cancel_token(token);
/// let error = Link::connect_with(addr.as_str(), &config).unwrap_err();
/// assert!(matches!(error, LinkError::Interrupted));
/// assert!(started.elapsed() < Duration::from_secs(10), "well before the handshake timeout");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token on an existing flag: setting `flag` cancels.
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }

    /// Cancels: every link holding this token (or a clone) gives up its waits.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called (and not [`reset`](Self::reset) since).
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Clears the flag, so that links holding the token work again.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelToken").field(&self.is_cancelled()).finish()
    }
}

/// Tokens are equal when they share one flag.
impl PartialEq for CancelToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CancelToken {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert!(!token.is_cancelled());
        clone.cancel();
        assert!(token.is_cancelled());
        token.reset();
        assert!(!clone.is_cancelled());
        assert_eq!(token, clone);
        assert_ne!(token, CancelToken::new());
        let flag = Arc::new(AtomicBool::new(true));
        assert!(CancelToken::from_flag(flag).is_cancelled());
    }
}
