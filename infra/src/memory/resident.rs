//! What the SQL memory index holds in process per novel — its vectors
//! ([`super::vectors::NovelVectors`]) and its keyword postings
//! ([`super::keywords::NovelKeywords`]) — in one least-recently-used cache per kind,
//! bounded in bytes, and the story-time and kind filter both searches apply ([`visible`]).
//! An entry is valid for the novel's memory version it was loaded at; any write to the
//! novel's memory (in any process) bumps the version in the database, so the next search
//! reloads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use znovel_domain::ids::{NovelId, TenantId};
use znovel_domain::model::MemoryKind;

/// Whether a record established in chapter `seq` (none: timeless) of `kind` may answer a
/// question about the story before chapter `before`, asking for `kinds` (empty: all).
pub fn visible(
    seq: Option<i32>,
    kind: MemoryKind,
    before: Option<i32>,
    kinds: &[MemoryKind],
) -> bool {
    if let (Some(b), Some(s)) = (before, seq)
        && s >= b
    {
        return false;
    }
    kinds.is_empty() || kinds.contains(&kind)
}

/// Something loaded for one novel at one memory version.
pub trait Resident: Send + Sync {
    /// The novel's memory version it was loaded at.
    fn version(&self) -> i64;
    /// About how many bytes it holds.
    fn bytes(&self) -> usize;
}

/// (tenant, novel, part): the part names what of the novel is held (a model's vectors).
type Key = (TenantId, NovelId, String);

struct Entry<T> {
    value: Arc<T>,
    last_used: u64,
}

struct Inner<T> {
    novels: HashMap<Key, Entry<T>>,
    clock: u64,
}

/// The cache.
pub struct ResidentCache<T> {
    inner: Mutex<Inner<T>>,
    max_bytes: usize,
}

impl<T> std::fmt::Debug for ResidentCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentCache")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl<T: Resident> ResidentCache<T> {
    /// A cache holding at most `max_bytes` (always at least the newest entry).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                novels: HashMap::new(),
                clock: 0,
            }),
            max_bytes,
        }
    }

    /// What is held for the novel's `part` if it was loaded at `version`.
    pub fn get(
        &self,
        tenant: TenantId,
        novel: NovelId,
        part: &str,
        version: i64,
    ) -> Option<Arc<T>> {
        let mut inner = self.inner.lock().ok()?;
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.novels.get_mut(&(tenant, novel, part.to_owned()))?;
        if entry.value.version() != version {
            return None;
        }
        entry.last_used = now;
        Some(entry.value.clone())
    }

    /// Holds a freshly loaded value (dropping the least recently used novels when over the
    /// limit) and returns it.
    pub fn put(&self, tenant: TenantId, novel: NovelId, part: &str, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let Ok(mut inner) = self.inner.lock() else {
            return value;
        };
        inner.clock += 1;
        let now = inner.clock;
        let key = (tenant, novel, part.to_owned());
        inner.novels.insert(
            key.clone(),
            Entry {
                value: value.clone(),
                last_used: now,
            },
        );
        let mut total: usize = inner.novels.values().map(|e| e.value.bytes()).sum();
        while total > self.max_bytes {
            let Some(oldest) = inner
                .novels
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.novels.remove(&oldest) {
                total -= gone.value.bytes();
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Held(i64, usize);
    impl Resident for Held {
        fn version(&self) -> i64 {
            self.0
        }
        fn bytes(&self) -> usize {
            self.1
        }
    }

    #[test]
    fn the_cache_drops_the_least_recently_used_novel() {
        let cache = ResidentCache::new(100);
        let (t, n1, n2, n3) = (
            TenantId::new(),
            NovelId::new(),
            NovelId::new(),
            NovelId::new(),
        );
        cache.put(t, n1, "m", Held(1, 40));
        assert!(cache.get(t, n1, "m", 1).is_some());
        assert!(
            cache.get(t, n1, "m", 2).is_none(),
            "another version is a miss"
        );
        assert!(
            cache.get(t, n1, "other", 1).is_none(),
            "another part is a miss"
        );
        cache.put(t, n2, "m", Held(1, 40));
        // n1 used after n2: n2 is the least recently used when n3 comes.
        assert!(cache.get(t, n1, "m", 1).is_some());
        cache.put(t, n3, "m", Held(1, 40));
        assert!(
            cache.get(t, n2, "m", 1).is_none(),
            "over the limit: n2 went"
        );
        assert!(cache.get(t, n1, "m", 1).is_some());
        assert!(cache.get(t, n3, "m", 1).is_some());
        // One entry over the whole limit is still held (alone).
        cache.put(t, n2, "m", Held(2, 500));
        assert!(cache.get(t, n2, "m", 2).is_some());
        assert!(cache.get(t, n1, "m", 1).is_none());
    }
}
