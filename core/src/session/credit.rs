//! Flow-control credit (PROTOCOL.md 10.4): what we grant the peer, and what the peer grants us.
//!
//! Credit is counted in wrapping 32-bit positions, as TCP counts bytes: each side keeps where
//! its spending has reached and where the limit lies, and only the distance from one to the
//! other is ever used. That distance stays below 2^32 (a grant is a `u32`), so the positions
//! may wrap as often as they like.

/// Credit we grant the peer: the DATA it may send us.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Granted {
    /// Where the DATA we accepted in order has brought the peer's spending.
    spent: u32,
    /// The limit we granted (`spent` may reach it).
    limit: u32,
    /// Credit taken by DATA held ahead of a gap (an amount, not a position); it is spent when
    /// the gap fills and the DATA joins in order.
    held: u32,
}

impl Granted {
    /// A fresh grant of `credit` (the handshake's).
    pub(super) fn new(credit: u32) -> Self {
        Self { spent: 0, limit: credit, held: 0 }
    }

    /// Credit we granted that the peer's in-order DATA has not spent (held DATA not deducted).
    pub(super) fn left(&self) -> u32 {
        self.limit.wrapping_sub(self.spent)
    }

    /// Credit left for in-order DATA once what is held ahead of a gap is set aside.
    pub(super) fn left_unheld(&self) -> u32 {
        self.left().saturating_sub(self.held)
    }

    /// The peer's in-order DATA spent `cost`.
    pub(super) fn spend(&mut self, cost: u32) {
        self.spent = self.spent.wrapping_add(cost);
    }

    /// Whether DATA costing `cost` may be held ahead of a gap: what is held stays within what
    /// is left.
    pub(super) fn may_hold(&self, cost: u32) -> bool {
        self.held.saturating_add(cost) <= self.left()
    }

    /// DATA costing `cost` is held ahead of a gap (after [`may_hold`](Self::may_hold)).
    pub(super) fn hold(&mut self, cost: u32) {
        self.held += cost;
    }

    /// Held DATA costing `cost` leaves the hold (to be [`spent`](Self::spend) if it joins
    /// in order).
    pub(super) fn release_held(&mut self, cost: u32) {
        self.held -= cost;
    }

    /// We announced `credit` beyond what was spent (an ACK): the limit moves there, never back.
    pub(super) fn announce(&mut self, credit: u32) {
        self.limit = raise_limit(self.limit, self.spent, credit);
    }
}

/// Credit the peer grants us: the DATA we may send.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Allowed {
    /// Where the DATA we sent has brought our spending.
    sent: u32,
    /// Where the DATA the peer acknowledged has brought it (the base of its grants).
    acked: u32,
    /// The limit the peer granted.
    limit: u32,
}

impl Allowed {
    /// A fresh allowance of `credit` (the peer's handshake).
    pub(super) fn new(credit: u32) -> Self {
        Self { sent: 0, acked: 0, limit: credit }
    }

    /// Credit the peer granted that our DATA has not spent yet.
    pub(super) fn left(&self) -> u32 {
        self.limit.wrapping_sub(self.sent)
    }

    /// Our DATA spent `cost`; returns the position it reached (its acknowledgement's).
    pub(super) fn spend(&mut self, cost: u32) -> u32 {
        self.sent = self.sent.wrapping_add(cost);
        self.sent
    }

    /// The peer acknowledged the DATA that brought spending to `position`.
    pub(super) fn acknowledge(&mut self, position: u32) {
        self.acked = position;
    }

    /// The peer granted `credit` beyond what it acknowledged (an ACK).
    pub(super) fn grant(&mut self, credit: u32) {
        self.limit = raise_limit(self.limit, self.acked, credit);
    }

    /// Where our spending has reached.
    #[cfg(test)]
    pub(super) fn sent(&self) -> u32 {
        self.sent
    }

    /// Moves every position by `by`, as if that much had been sent and acknowledged.
    #[cfg(test)]
    pub(super) fn shift(&mut self, by: u32) {
        for position in [&mut self.sent, &mut self.acked, &mut self.limit] {
            *position = position.wrapping_add(by);
        }
    }
}

#[cfg(test)]
impl Granted {
    /// Moves every position by `by`, as if that much had been received.
    pub(super) fn shift(&mut self, by: u32) {
        for position in [&mut self.spent, &mut self.limit] {
            *position = position.wrapping_add(by);
        }
    }
}

/// `max(limit, base + credit)` on wrapping credit positions, `base` (what was spent or
/// acknowledged) being at or before `limit`: a limit never moves back.
fn raise_limit(limit: u32, base: u32, credit: u32) -> u32 {
    base.wrapping_add(credit.max(limit.wrapping_sub(base)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every test runs at these starting positions: zero, and just before the wrap.
    const STARTS: [u32; 3] = [0, u32::MAX - 100, u32::MAX];

    fn granted_at(start: u32, credit: u32) -> Granted {
        Granted { spent: start, limit: start.wrapping_add(credit), held: 0 }
    }

    fn allowed_at(start: u32, credit: u32) -> Allowed {
        Allowed { sent: start, acked: start, limit: start.wrapping_add(credit) }
    }

    #[test]
    fn a_limit_rises_but_never_moves_back() {
        for base in STARTS {
            let limit = base.wrapping_add(1000);
            assert_eq!(raise_limit(limit, base, 1500), base.wrapping_add(1500));
            assert_eq!(raise_limit(limit, base, 500), limit, "a smaller grant keeps the limit");
            assert_eq!(raise_limit(limit, base, 0), limit);
            assert_eq!(raise_limit(base, base, u32::MAX), base.wrapping_add(u32::MAX));
        }
    }

    #[test]
    fn spending_uses_up_the_grant_across_the_wrap() {
        for start in STARTS {
            let mut granted = granted_at(start, 1000);
            assert_eq!(granted.left(), 1000);
            granted.spend(300);
            assert_eq!(granted.left(), 700);
            granted.spend(700);
            assert_eq!(granted.left(), 0);
            // A fresh ACK announcing 1000 moves the limit 1000 past what was spent.
            granted.announce(1000);
            assert_eq!(granted.left(), 1000);
            // Announcing less than is left leaves the limit (it was promised).
            granted.spend(100);
            granted.announce(200);
            assert_eq!(granted.left(), 900);
        }
    }

    #[test]
    fn held_data_sets_credit_aside_and_is_spent_when_it_joins() {
        for start in STARTS {
            let mut granted = granted_at(start, 1000);
            assert!(granted.may_hold(600));
            granted.hold(600);
            assert!(!granted.may_hold(401), "held data may not exceed the grant");
            assert_eq!((granted.left(), granted.left_unheld()), (1000, 400));
            // The gap fills (100), then the held 600 joins.
            granted.spend(100);
            granted.release_held(600);
            assert_eq!((granted.left(), granted.left_unheld()), (900, 900));
            granted.spend(600);
            assert_eq!((granted.left(), granted.left_unheld()), (300, 300));
        }
    }

    #[test]
    fn a_grant_counts_from_what_the_peer_acknowledged_not_from_what_we_sent() {
        for start in STARTS {
            let mut allowed = allowed_at(start, 1000);
            let first = allowed.spend(400);
            allowed.spend(400);
            assert_eq!(allowed.left(), 200);
            // The peer acknowledges the first 400 and grants 1000 from there: 1400 in all.
            allowed.acknowledge(first);
            allowed.grant(1000);
            assert_eq!(allowed.left(), 600);
            // A stale, smaller grant (reordered ACK) does not take credit back.
            allowed.grant(100);
            assert_eq!(allowed.left(), 600);
        }
    }

    #[test]
    fn the_handshake_grant_starts_from_zero() {
        assert_eq!(Granted::new(4096).left(), 4096);
        assert_eq!(Allowed::new(4096).left(), 4096);
        assert_eq!(Allowed::new(0).left(), 0);
    }
}
