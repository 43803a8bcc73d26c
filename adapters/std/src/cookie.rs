//! RETRY cookies: how the UDP server learns that a HELLO comes from the address it names
//! (PROTOCOL.md 10.1) without keeping any state for it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use framelink_core::wire::RetryPayload;

/// How long one key period lasts; a cookie is good for its period and the next.
const PERIOD: Duration = Duration::from_secs(30);

/// A cookie: 8 bytes, opaque to the client.
pub(crate) type Cookie = [u8; RetryPayload::LEN];

/// Makes and checks cookies: a keyed hash (std's SipHash under a key drawn at random when the
/// jar is made) of the client's address, its session id and the time period.
#[derive(Debug)]
pub(crate) struct CookieJar {
    key: RandomState,
    start: Instant,
}

impl CookieJar {
    pub(crate) fn new() -> Self {
        Self { key: RandomState::new(), start: Instant::now() }
    }

    fn period(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / PERIOD.as_secs()
    }

    fn make(&self, addr: SocketAddr, session_id: u32, period: u64) -> Cookie {
        self.key.hash_one((addr, session_id, period)).to_le_bytes()
    }

    /// The cookie a RETRY to `addr` for `session_id` carries now.
    pub(crate) fn issue(&self, addr: SocketAddr, session_id: u32, now: Instant) -> Cookie {
        self.make(addr, session_id, self.period(now))
    }

    /// Whether `cookie` is one this jar issued to `addr` for `session_id`, in this period or
    /// the last.
    pub(crate) fn check(&self, addr: SocketAddr, session_id: u32, cookie: &Cookie, now: Instant) -> bool {
        let period = self.period(now);
        *cookie == self.make(addr, session_id, period)
            || period.checked_sub(1).is_some_and(|last| *cookie == self.make(addr, session_id, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_holds_for_its_address_id_and_two_periods() {
        let jar = CookieJar::new();
        let (a, b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:1001".parse().unwrap());
        let now = jar.start;
        let cookie = jar.issue(a, 7, now);
        assert!(jar.check(a, 7, &cookie, now));
        assert!(!jar.check(b, 7, &cookie, now), "another address");
        assert!(!jar.check(a, 8, &cookie, now), "another session id");
        assert!(jar.check(a, 7, &cookie, now + PERIOD), "the next period");
        assert!(!jar.check(a, 7, &cookie, now + 2 * PERIOD), "expired");
        assert_ne!(CookieJar::new().issue(a, 7, now), cookie, "another jar, another key");
    }
}
