//! Where an [`Endpoint`](super::Endpoint) keeps its peers: the [`Table`] trait, a fixed
//! `heapless::LinearMap` for firmware and (feature `alloc`) a growing `BTreeMap` for desktops.

use core::net::SocketAddr;

use crate::Instant;

/// What the endpoint keeps for one peer address: its session, or, for a while after the peer's
/// CLOSE was answered, only its session id. Opaque: a [`Table`] stores it and nothing more.
#[derive(Debug)]
pub struct Entry<V> {
    pub(super) session_id: u32,
    pub(super) state: Slot<V>,
}

/// A session, or the memory of one.
#[derive(Debug)]
pub(super) enum Slot<V> {
    /// The session serving the address.
    Live(V),
    /// The session ended with the peer's CLOSE; a repeated CLOSE is answered until then.
    Lingering(Instant),
}

impl<V> Entry<V> {
    pub(super) fn session(&mut self) -> Option<&mut V> {
        match &mut self.state {
            Slot::Live(session) => Some(session),
            Slot::Lingering(_) => None,
        }
    }

    pub(super) fn is_live(&self) -> bool {
        matches!(self.state, Slot::Live(_))
    }
}

/// A map from peer address to [`Entry`]: the storage of an [`Endpoint`](super::Endpoint).
///
/// Implemented for `heapless::LinearMap<SocketAddr, Entry<V>, N>` (fixed capacity `N`, a linear
/// search: for the few peers of firmware) and, with the `alloc` feature, for
/// `alloc::collections::BTreeMap<SocketAddr, Entry<V>>` (grows; for thousands of peers). The
/// endpoint keeps the number of entries within [`capacity`](Self::capacity) itself.
pub trait Table {
    /// The caller's per-peer value: a session, or a handle on one.
    type Session;

    /// The most entries the table holds (`usize::MAX` if it grows).
    fn capacity(&self) -> usize;
    /// Entries held.
    fn len(&self) -> usize;
    /// Whether the table holds no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The entry of `addr`.
    fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Entry<Self::Session>>;
    /// Inserts (or replaces) the entry of `addr`; gives it back if the table is full.
    fn insert(&mut self, addr: SocketAddr, entry: Entry<Self::Session>) -> Result<(), Entry<Self::Session>>;
    /// Removes the entry of `addr`.
    fn remove(&mut self, addr: &SocketAddr) -> Option<Entry<Self::Session>>;
    /// Keeps only the entries for which `keep` answers `true`.
    fn retain(&mut self, keep: impl FnMut(&SocketAddr, &mut Entry<Self::Session>) -> bool);
    /// Calls `each` on every entry.
    fn for_each(&mut self, each: impl FnMut(&SocketAddr, &mut Entry<Self::Session>));
}

impl<V, const N: usize> Table for heapless::LinearMap<SocketAddr, Entry<V>, N> {
    type Session = V;

    fn capacity(&self) -> usize {
        N
    }

    fn len(&self) -> usize {
        Self::len(self)
    }

    fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Entry<V>> {
        Self::get_mut(self, addr)
    }

    fn insert(&mut self, addr: SocketAddr, entry: Entry<V>) -> Result<(), Entry<V>> {
        Self::insert(self, addr, entry).map(drop).map_err(|(_, entry)| entry)
    }

    fn remove(&mut self, addr: &SocketAddr) -> Option<Entry<V>> {
        Self::remove(self, addr)
    }

    fn retain(&mut self, mut keep: impl FnMut(&SocketAddr, &mut Entry<V>) -> bool) {
        Self::retain(self, |addr, entry| keep(addr, entry));
    }

    fn for_each(&mut self, mut each: impl FnMut(&SocketAddr, &mut Entry<V>)) {
        self.iter_mut().for_each(|(addr, entry)| each(addr, entry));
    }
}

#[cfg(any(feature = "alloc", test))]
impl<V> Table for alloc::collections::BTreeMap<SocketAddr, Entry<V>> {
    type Session = V;

    fn capacity(&self) -> usize {
        usize::MAX
    }

    fn len(&self) -> usize {
        Self::len(self)
    }

    fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Entry<V>> {
        Self::get_mut(self, addr)
    }

    fn insert(&mut self, addr: SocketAddr, entry: Entry<V>) -> Result<(), Entry<V>> {
        Self::insert(self, addr, entry);
        Ok(())
    }

    fn remove(&mut self, addr: &SocketAddr) -> Option<Entry<V>> {
        Self::remove(self, addr)
    }

    fn retain(&mut self, mut keep: impl FnMut(&SocketAddr, &mut Entry<V>) -> bool) {
        Self::retain(self, |addr, entry| keep(addr, entry));
    }

    fn for_each(&mut self, mut each: impl FnMut(&SocketAddr, &mut Entry<V>)) {
        self.iter_mut().for_each(|(addr, entry)| each(addr, entry));
    }
}
