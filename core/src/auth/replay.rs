//! The replay window of RFC 4303 section 3.4.3 (and RFC 6347 4.1.2.6): the highest packet
//! number verified and a 64-bit bitmap of those just below it.

/// Packet numbers already seen, within 64 of the highest. [`check`](Self::check) before
/// verifying a packet, [`accept`](Self::accept) only after it verified, so a forged packet
/// never moves the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// One more than the highest packet number accepted; 0 when none was.
    top: u64,
    /// Bit `i` set: packet number `top - 1 - i` was accepted (bit 0: the highest).
    seen: u64,
}

impl ReplayWindow {
    /// Packets below the highest that are still told apart.
    pub const SIZE: u64 = 64;

    /// Whether packet number `pn` may be new: above the highest, or within the window and not
    /// seen.
    pub fn check(&self, pn: u64) -> bool {
        if pn == u64::MAX {
            return false; // never sent: the window could not move past it
        }
        if pn >= self.top {
            return true;
        }
        let behind = self.top - 1 - pn;
        behind < Self::SIZE && self.seen & bit(behind) == 0
    }

    /// Records `pn` (after it verified); [`check`](Self::check) must have passed.
    pub fn accept(&mut self, pn: u64) {
        if pn >= self.top {
            // One place at a time (most packets move it by one): a 64-bit shift by a variable
            // count is a library call on a 32-bit core.
            for _ in 0..(pn + 1 - self.top).min(Self::SIZE) {
                self.seen <<= 1;
            }
            self.top = pn + 1;
        }
        self.seen |= bit(self.top - 1 - pn);
    }
}

/// The bit of the bitmap for the packet `behind` places below the highest; none from 64 on.
/// Built from a 32-bit shift and a move by a whole word.
fn bit(behind: u64) -> u64 {
    let one = u64::from(1u32 << (behind % 32));
    match behind {
        0..32 => one,
        32..64 => one << 32,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_numbers_pass_repeats_and_old_ones_do_not() {
        let mut window = ReplayWindow::default();
        assert!(window.check(0));
        window.accept(0);
        assert!(!window.check(0));
        for pn in [5, 3, 4, 1] {
            assert!(window.check(pn), "{pn}");
            window.accept(pn);
            assert!(!window.check(pn), "{pn}");
        }
        assert!(window.check(2));
        for pn in [0, 1, 3, 4, 5] {
            assert!(!window.check(pn), "{pn}");
        }
        window.accept(100);
        assert!(!window.check(36), "64 behind the highest is out of the window");
        assert!(window.check(37));
        assert!(!window.check(100));
        window.accept(37);
        assert!(!window.check(37));
        window.accept(1000);
        assert!(!window.check(100));
        assert!(window.check(999));
    }

    #[test]
    fn matches_a_set_of_seen_numbers() {
        // Every number accepted is refused after; within the window, the others pass.
        let mut window = ReplayWindow::default();
        let mut seen = std::collections::BTreeSet::<u64>::new();
        let mut x = 7u64;
        for _ in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let top = seen.iter().next_back().copied().unwrap_or(0);
            let pn = (top + 8).saturating_sub((x >> 33) % 80);
            let fresh = !seen.contains(&pn) && (seen.is_empty() || pn + 64 > top);
            assert_eq!(window.check(pn), fresh, "pn {pn}, top {top}");
            if fresh {
                window.accept(pn);
                seen.insert(pn);
            }
        }
    }
}
