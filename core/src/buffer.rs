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

impl<const N: usize> Buffer for [u8; N] {}

impl Buffer for &mut [u8] {}

/// A boxed slice is fixed storage: it has the length it was made with.
#[cfg(any(feature = "alloc", test))]
impl Buffer for alloc::boxed::Box<[u8]> {}

#[cfg(any(feature = "alloc", test))]
impl Buffer for alloc::vec::Vec<u8> {
    const GROWS: bool = true;

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
