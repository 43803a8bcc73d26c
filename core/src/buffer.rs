//! Storage for the session's and the decoders' buffers: fixed in firmware, growable on desktops.
//!
//! Everything in the core that holds bytes takes its storage as a type parameter bounded by
//! [`Buffer`]. A fixed array or a borrowed slice has all the room it will ever have, which is
//! what firmware wants: RAM decided at build time. With the `alloc` feature a `Vec<u8>` is a
//! [`Buffer`] too: it can start empty and grow only when a message or a frame needs the room,
//! so a desktop server holding thousands of idle sessions keeps each one small.
//!
//! The core asks for room with [`Buffer::grow_to`] only up to limits the caller configured, so
//! growable storage never grows past what the caller agreed to.
//!
//! The same choice holds for the records a session keeps of the packets in flight and held
//! ([`Buffer::Records`], [`Buffer::RecordList`]): inline arrays of all `W` of them beside fixed
//! storage, a `Vec` beside growable storage that grows as packets go in flight or are held and
//! is given back when the session idles.
//!
//! ```
//! use framelink_core::buffer::Buffer;
//!
//! let mut fixed = [0u8; 8];
//! assert!(fixed.grow_to(8));
//! assert!(!fixed.grow_to(9)); // a fixed buffer has what it has
//! ```

/// Byte storage that may be able to grow.
pub trait Buffer: AsRef<[u8]> + AsMut<[u8]> {
    /// Whether [`grow_to`](Self::grow_to) can make the storage longer than it is. Code that
    /// only grows storage of a type that can is left out of builds with fixed storage.
    const GROWS: bool = false;

    /// Storage for `N` records of type `T` kept beside this buffer, all in place: `[T; N]`
    /// for fixed storage, a `Vec<T>` grown as records are needed for growable storage.
    type Records<T: Record, const N: usize>: RecordStorage<T>;

    /// A list of up to `N` records of type `T` kept beside this buffer: a `heapless::Vec<T, N>`
    /// for fixed storage, a `Vec<T>` grown as records come for growable storage.
    type RecordList<T: Record, const N: usize>: RecordList<T>;

    /// Makes the storage at least `len` bytes long if it can, keeping its contents (new bytes
    /// are zero); returns whether it now holds `len` bytes. Fixed storage only answers whether
    /// it is already that long.
    fn grow_to(&mut self, len: usize) -> bool {
        self.as_ref().len() >= len
    }

    /// Gives back the room beyond `len` bytes if the storage can (growable storage returns it
    /// to the allocator); the first `len` bytes stay. Fixed storage keeps its length.
    fn shrink(&mut self, len: usize) {
        let _ = len;
    }
}

impl<const N: usize> Buffer for [u8; N] {
    type Records<T: Record, const M: usize> = [T; M];
    type RecordList<T: Record, const M: usize> = heapless::Vec<T, M>;
}

impl Buffer for &mut [u8] {
    type Records<T: Record, const M: usize> = [T; M];
    type RecordList<T: Record, const M: usize> = heapless::Vec<T, M>;
}

/// A boxed slice is fixed storage: it has the length it was made with.
#[cfg(any(feature = "alloc", test))]
impl Buffer for alloc::boxed::Box<[u8]> {
    type Records<T: Record, const M: usize> = [T; M];
    type RecordList<T: Record, const M: usize> = heapless::Vec<T, M>;
}

#[cfg(any(feature = "alloc", test))]
impl Buffer for alloc::vec::Vec<u8> {
    const GROWS: bool = true;

    type Records<T: Record, const M: usize> = alloc::vec::Vec<T>;
    type RecordList<T: Record, const M: usize> = alloc::vec::Vec<T>;

    fn grow_to(&mut self, len: usize) -> bool {
        if self.len() < len {
            self.resize(len, 0);
        }
        true
    }

    fn shrink(&mut self, len: usize) {
        if self.len() > len {
            self.truncate(len);
            self.shrink_to_fit();
        }
    }
}

/// A record kept in [`RecordStorage`] or a [`RecordList`]: plain data, with a value for places
/// not in use.
pub trait Record: Copy + core::fmt::Debug {
    /// The value of a place not in use.
    const EMPTY: Self;
}

impl Record for u32 {
    const EMPTY: Self = 0;
}

/// Storage for fixed-size records (a session's packets in flight), in places: all of them at
/// once in an array, or a `Vec` grown only as places are needed.
///
/// The core calls [`grow_to`](Self::grow_to) only up to the `N` of [`Buffer::Records`].
///
/// ```
/// use framelink_core::buffer::{Record, RecordStorage};
///
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Sent(u16);
///
/// impl Record for Sent {
///     const EMPTY: Self = Self(0);
/// }
///
/// let fixed = <[Sent; 4] as RecordStorage<Sent>>::new();
/// assert_eq!(fixed.as_ref().len(), 4); // every record there from the start
/// let mut grown = <Vec<Sent> as RecordStorage<Sent>>::new();
/// assert!(grown.is_empty() && grown.grow_to(2));
/// assert_eq!(grown, [Sent::EMPTY; 2]);
/// ```
pub trait RecordStorage<T>: AsRef<[T]> + AsMut<[T]> + core::fmt::Debug {
    /// The storage before any record is used: fixed storage has all its places (each
    /// [`Record::EMPTY`]), growable storage none.
    fn new() -> Self;

    /// Makes at least `len` places if it can, keeping the records there (new places are
    /// [`Record::EMPTY`]); returns whether it now has `len`.
    fn grow_to(&mut self, len: usize) -> bool {
        self.as_ref().len() >= len
    }

    /// Gives back the places beyond the first `len` if the storage can.
    fn shrink(&mut self, len: usize) {
        let _ = len;
    }
}

impl<T: Record, const N: usize> RecordStorage<T> for [T; N] {
    fn new() -> Self {
        Filled::<T, N>::ALL
    }
}

/// A constant array of empty records: built at compile time, it is copied (or cleared) in one
/// go, where `[T::EMPTY; N]` at run time is a loop.
struct Filled<T, const N: usize>(core::marker::PhantomData<T>);

impl<T: Record, const N: usize> Filled<T, N> {
    const ALL: [T; N] = [T::EMPTY; N];
}

#[cfg(any(feature = "alloc", test))]
impl<T: Record> RecordStorage<T> for alloc::vec::Vec<T> {
    fn new() -> Self {
        Self::new()
    }

    fn grow_to(&mut self, len: usize) -> bool {
        if self.len() < len {
            self.resize(len, T::EMPTY);
        }
        true
    }

    fn shrink(&mut self, len: usize) {
        if self.len() > len {
            self.truncate(len);
            self.shrink_to_fit();
        }
    }
}

/// A list of records (a session's packets held ahead of a gap), up to a limit: in place in a
/// `heapless::Vec`, or in a `Vec` that grows, at least doubling, as records come.
///
/// ```
/// use framelink_core::buffer::{Record, RecordList};
///
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Held(u16);
///
/// impl Record for Held {
///     const EMPTY: Self = Self(0);
/// }
///
/// let mut list = <Vec<Held> as RecordList<Held>>::new();
/// for seq in 7..10 {
///     RecordList::push(&mut list, Held(seq), 2); // the third is beyond the limit
/// }
/// assert!(RecordList::is_full(&list, 2));
/// assert_eq!((&list[..], list.capacity()), (&[Held(7), Held(8)][..], 2));
/// ```
pub trait RecordList<T>: AsRef<[T]> + AsMut<[T]> + core::fmt::Debug {
    /// An empty list.
    fn new() -> Self;

    /// Whether it holds `limit` records, or as many as it can.
    fn is_full(&self, limit: usize) -> bool;

    /// Appends `record` unless the list [is full](Self::is_full).
    fn push(&mut self, record: T, limit: usize);

    /// Removes the last record.
    fn pop(&mut self) -> Option<T>;

    /// Removes every record.
    fn clear(&mut self);

    /// Gives back the room beyond the records held, if the list can.
    fn shrink(&mut self) {}
}

impl<T: Record, const N: usize> RecordList<T> for heapless::Vec<T, N> {
    fn new() -> Self {
        Self::new()
    }

    fn is_full(&self, _: usize) -> bool {
        Self::is_full(self)
    }

    fn push(&mut self, record: T, _: usize) {
        let _ = Self::push(self, record);
    }

    fn pop(&mut self) -> Option<T> {
        Self::pop(self)
    }

    fn clear(&mut self) {
        Self::clear(self);
    }
}

#[cfg(any(feature = "alloc", test))]
impl<T: Record> RecordList<T> for alloc::vec::Vec<T> {
    fn new() -> Self {
        Self::new()
    }

    fn is_full(&self, limit: usize) -> bool {
        self.len() >= limit
    }

    fn push(&mut self, record: T, limit: usize) {
        if self.len() >= limit {
            return;
        }
        if self.len() == self.capacity() {
            let room = self.len().saturating_mul(2).max(4).min(limit);
            self.reserve_exact(room - self.len());
        }
        Self::push(self, record);
    }

    fn pop(&mut self) -> Option<T> {
        Self::pop(self)
    }

    fn clear(&mut self) {
        Self::clear(self);
    }

    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::Buffer;
    use std::vec::Vec;

    #[test]
    fn a_vec_grows_keeping_its_contents_and_shrinks_back() {
        let mut buf: Vec<u8> = Vec::new();
        assert!(buf.grow_to(4));
        buf.copy_from_slice(&[1, 2, 3, 4]);
        assert!(buf.grow_to(6));
        assert_eq!(buf, [1, 2, 3, 4, 0, 0]);
        buf.shrink(2);
        assert_eq!(buf, [1, 2]);
        assert!(buf.capacity() < 6);
    }

    #[test]
    fn borrowed_storage_cannot_grow() {
        let mut backing = [0u8; 4];
        let mut slice: &mut [u8] = &mut backing;
        assert!(slice.grow_to(3));
        assert!(!slice.grow_to(5));
        slice.shrink(0);
        assert_eq!(slice.len(), 4);
    }
}
