//! Wrap-safe 16-bit sequence numbers (serial number arithmetic, RFC 1982).

use core::cmp::Ordering;

/// A DATA sequence number; it counts packets, wraps from 65535 to 0, and compares within half
/// the space.
///
/// `a < b` means `b` is at most 32767 steps after `a` (going round the wrap if needed). Two numbers
/// exactly half the space apart are not ordered: [`SeqNumber::partial_cmp`] returns `None`. The
/// window of packets in flight is therefore capped below 32768.
///
/// ```
/// use framelink_core::wire::SeqNumber;
///
/// let last = SeqNumber(65535);
/// let next = last + 1;
/// assert_eq!(next, SeqNumber(0));
/// assert!(last < next);
/// assert_eq!(next.distance_from(last), 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqNumber(pub u16);

impl SeqNumber {
    /// Steps from `earlier` forward to `self`, taking the wrap into account (`0..=65535`).
    pub const fn distance_from(self, earlier: Self) -> u16 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Signed difference `self - other`, in `-32768..=32767`.
    pub const fn diff(self, other: Self) -> i16 {
        self.0.wrapping_sub(other.0) as i16
    }
}

impl core::ops::Add<u16> for SeqNumber {
    type Output = Self;
    fn add(self, rhs: u16) -> Self {
        Self(self.0.wrapping_add(rhs))
    }
}

impl core::ops::AddAssign<u16> for SeqNumber {
    fn add_assign(&mut self, rhs: u16) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.diff(*other) {
            0 => Some(Ordering::Equal),
            i16::MIN => None,
            d if d > 0 => Some(Ordering::Greater),
            _ => Some(Ordering::Less),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_the_wrap() {
        assert!(SeqNumber(65535) < SeqNumber(0));
        assert!(SeqNumber(65000) < SeqNumber(100));
        assert!(SeqNumber(100) > SeqNumber(65000));
        assert!(SeqNumber(0) > SeqNumber(65535));
        assert!(SeqNumber(5) < SeqNumber(6));
    }

    #[test]
    fn half_the_space_apart_is_unordered() {
        assert_eq!(SeqNumber(0).partial_cmp(&SeqNumber(32768)), None);
        assert_eq!(SeqNumber(40000).partial_cmp(&SeqNumber(7232)), None);
        assert!(SeqNumber(0) < SeqNumber(32767));
        assert!(SeqNumber(0) > SeqNumber(32769));
    }

    #[test]
    fn add_and_distance_wrap() {
        assert_eq!(SeqNumber(65530) + 10, SeqNumber(4));
        assert_eq!(SeqNumber(4).distance_from(SeqNumber(65530)), 10);
        assert_eq!(SeqNumber(4).diff(SeqNumber(65530)), 10);
        assert_eq!(SeqNumber(65530).diff(SeqNumber(4)), -10);
        let mut s = SeqNumber(65535);
        s += 1;
        assert_eq!(s, SeqNumber(0));
    }
}
