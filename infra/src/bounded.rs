//! A map bounded in entries and in bytes, behind every in-memory cache of the process: the
//! chapters kept for display reads (`sql::chapter_cache`) and, in the API, the
//! persisted-query cache and the parsed documents and validation results.

use lru::LruCache;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// A map of at most `max_entries` entries holding at most `max_bytes` bytes (each entry's
/// size is given when it is inserted). Entries go least recently used first; one only
/// ever read with [`Bounded::peek`] goes in insertion order (oldest first).
pub struct Bounded<K: Hash + Eq, V> {
    entries: LruCache<K, (V, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<K: Hash + Eq, V> Bounded<K, V> {
    /// An empty cache with these bounds.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: LruCache::unbounded(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// The value under `key`, now the most recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// The value under `key`, its place in the eviction order unchanged.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.peek(key).map(|(v, _)| v)
    }

    /// Whether `key` is there.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains(key)
    }

    /// Keeps `value` (holding `bytes`) under `key`, evicting entries until both bounds
    /// hold. Nothing changes when `key` is there already or `value` alone is over the
    /// byte bound.
    pub fn insert(&mut self, key: K, value: V, bytes: usize) {
        if bytes > self.max_bytes || self.entries.contains(&key) {
            return;
        }
        while self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            match self.entries.pop_lru() {
                Some((_, (_, size))) => self.bytes -= size,
                None => break,
            }
        }
        self.bytes += bytes;
        self.entries.put(key, (value, bytes));
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops the entry under `key`, if any.
    pub fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((_, size)) = self.entries.pop(key) {
            self.bytes -= size;
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// How many bytes the entries hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Locks `mutex`, also after a panic while it was held: every change to a [`Bounded`] is
/// complete between two calls, so what a panicking holder left is consistent.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn entries_and_bytes_stay_within_their_bounds() {
        let mut c = Bounded::new(3, 10);
        for (k, size) in [("a", 2), ("b", 2), ("c", 2), ("d", 2)] {
            c.insert(k, (), size);
        }
        assert_eq!((c.len(), c.bytes()), (3, 6));
        assert!(!c.contains("a"), "the oldest went first");
        // A read makes an entry the most recently used: "c" goes next, not "b".
        assert!(c.get("b").is_some());
        c.insert("e", (), 7);
        assert!(c.contains("b") && c.contains("e") && !c.contains("c") && !c.contains("d"));
        assert_eq!((c.len(), c.bytes()), (2, 9));
        // A peek does not: "b" stays oldest.
        assert!(c.peek("b").is_some());
        c.insert("f", (), 3);
        assert!(!c.contains("b") && c.contains("e") && c.contains("f"));
        // Too large alone: refused, nothing evicted.
        c.insert("g", (), 11);
        assert_eq!((c.len(), c.bytes()), (2, 10));
        // Already there: unchanged.
        c.insert("e", (), 1);
        assert_eq!(c.bytes(), 10);
        // Removed: its bytes are free again; cleared: nothing held.
        c.remove("e");
        assert_eq!((c.len(), c.bytes()), (1, 3));
        c.remove("e");
        assert_eq!((c.len(), c.bytes()), (1, 3));
        c.clear();
        assert!(c.is_empty() && c.bytes() == 0);
    }
}
