//! RETRY cookies (PROTOCOL.md 10.1): how a server learns that a HELLO comes from the address it
//! names, without keeping any state for it.

use core::hash::Hasher;
use core::net::SocketAddr;
use core::time::Duration;

use siphasher::sip::SipHasher24;

use crate::Instant;
use crate::wire::RetryPayload;

/// A cookie: 8 bytes, opaque to the client.
pub type Cookie = [u8; RetryPayload::LEN];

/// The secret key cookies are made under: 16 bytes the server draws once and keeps to itself.
///
/// Whoever knows the key can forge cookies, and so make a HELLO spoofed from any address look
/// proven; a key that repeats (the same one every boot) lets a cookie recorded before a restart
/// be replayed within its period. So draw it anew at every start:
///
/// - a desktop draws it from the OS's random source (`framelink-std` does);
/// - a board with a TRNG (the RNG peripheral of an STM32F4/L4/H7, an nRF52's RNG, an RP2040's
///   ROSC bits) reads 16 bytes from it at boot;
/// - a board without one derives it from what is unique to the chip and to the boot: hash its
///   factory unique id (96 bits on an STM32) with a boot counter kept in flash or backup
///   registers and incremented at every boot. Such a key is unique but not secret from someone
///   who can read the id; it still keeps state-less spoofing off, at the strength of the
///   session tag.
#[derive(Clone)]
pub struct CookieKey([u8; 16]);

impl CookieKey {
    /// A key of 16 bytes; see the type docs for where they come from.
    pub const fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    fn hasher(&self) -> SipHasher24 {
        SipHasher24::new_with_key(&self.0)
    }
}

impl core::fmt::Debug for CookieKey {
    /// Never shows the key.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

/// Makes and checks cookies: SipHash-2-4 under the [`CookieKey`] of the client's address, its
/// session id and the time period; a cookie holds for its period and the next.
#[derive(Clone, Debug)]
pub(super) struct Cookies {
    key: CookieKey,
    period_micros: u64,
}

impl Cookies {
    pub(super) fn new(key: CookieKey, period: Duration) -> Self {
        let period_micros = u64::try_from(period.as_micros()).unwrap_or(u64::MAX).max(1);
        Self { key, period_micros }
    }

    fn period(&self, now: Instant) -> u64 {
        now.as_micros() / self.period_micros
    }

    fn make(&self, addr: SocketAddr, session_id: u32, period: u64) -> Cookie {
        let mut hasher = self.key.hasher();
        match addr {
            SocketAddr::V4(v4) => {
                hasher.write_u8(4);
                hasher.write(&v4.ip().octets());
            }
            SocketAddr::V6(v6) => {
                hasher.write_u8(6);
                hasher.write(&v6.ip().octets());
                hasher.write(&v6.scope_id().to_le_bytes());
            }
        }
        hasher.write(&addr.port().to_le_bytes());
        hasher.write(&session_id.to_le_bytes());
        hasher.write(&period.to_le_bytes());
        hasher.finish().to_le_bytes()
    }

    /// The cookie a RETRY to `addr` for `session_id` carries at `now`.
    pub(super) fn issue(&self, addr: SocketAddr, session_id: u32, now: Instant) -> Cookie {
        self.make(addr, session_id, self.period(now))
    }

    /// Whether `cookie` is one issued to `addr` for `session_id` in this period or the last.
    pub(super) fn check(&self, addr: SocketAddr, session_id: u32, cookie: &Cookie, now: Instant) -> bool {
        let period = self.period(now);
        *cookie == self.make(addr, session_id, period)
            || period.checked_sub(1).is_some_and(|last| *cookie == self.make(addr, session_id, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(30);

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_cookie_holds_for_its_address_id_and_two_periods() {
        let jar = Cookies::new(CookieKey::new([1; 16]), PERIOD);
        let (a, b) = (addr("127.0.0.1:1000"), addr("127.0.0.1:1001"));
        let now = Instant::from_millis(1_000);
        let cookie = jar.issue(a, 7, now);
        assert!(jar.check(a, 7, &cookie, now));
        assert!(!jar.check(b, 7, &cookie, now), "another port");
        assert!(!jar.check(addr("127.0.0.2:1000"), 7, &cookie, now), "another host");
        assert!(!jar.check(a, 8, &cookie, now), "another session id");
        assert!(jar.check(a, 7, &cookie, now + PERIOD), "the next period");
        assert!(!jar.check(a, 7, &cookie, now + 2 * PERIOD), "expired");
        let other = Cookies::new(CookieKey::new([2; 16]), PERIOD);
        assert_ne!(other.issue(a, 7, now), cookie, "another key, another cookie");
        assert!(!other.check(a, 7, &cookie, now));
    }

    #[test]
    fn v4_and_v6_addresses_and_scopes_make_different_cookies() {
        let jar = Cookies::new(CookieKey::new([3; 16]), PERIOD);
        let now = Instant::ZERO;
        let v4 = jar.issue(addr("127.0.0.1:9"), 1, now);
        let v6 = jar.issue(addr("[::ffff:127.0.0.1]:9"), 1, now);
        let scoped = jar.issue(addr("[fe80::1%2]:9"), 1, now);
        let unscoped = jar.issue(addr("[fe80::1]:9"), 1, now);
        assert_ne!(v4, v6);
        assert_ne!(scoped, unscoped);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let key = CookieKey::new([0xAB; 16]);
        let shown = std::format!("{key:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab,"), "{shown}");
    }
}
