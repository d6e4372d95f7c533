//! The in-process cache of each novel's vectors, for exact dense search in the SQL
//! memory index: the vectors live in the database (the record); a novel's are loaded
//! into one contiguous array on first search and reloaded when the novel's memory version
//! moved (any process wrote to it). Search is exact — every vector passing the filter is
//! scored — which a graph index with a filter does not guarantee, and fast at novel scale.
//! The cache holds at most a configured number of floats; the least recently used
//! novels are dropped first.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;
use znovel_domain::ids::{NovelId, TenantId};
use znovel_domain::model::MemoryKind;

/// One novel's vectors of one model.
#[derive(Debug)]
pub struct NovelVectors {
    /// The novel's memory version they were loaded at.
    pub version: i64,
    dims: usize,
    ids: Vec<Uuid>,
    kinds: Vec<MemoryKind>,
    seqs: Vec<Option<i32>>,
    data: Vec<f32>,
    last_used: AtomicU64,
}

impl NovelVectors {
    /// Builds the array from (id, kind, seq, vector) rows; rows whose vector has another
    /// length than the first are skipped.
    pub fn new(version: i64, rows: Vec<(Uuid, MemoryKind, Option<i32>, Vec<f32>)>) -> Self {
        let dims = rows.first().map_or(0, |r| r.3.len());
        let mut out = Self {
            version,
            dims,
            ids: Vec::with_capacity(rows.len()),
            kinds: Vec::with_capacity(rows.len()),
            seqs: Vec::with_capacity(rows.len()),
            data: Vec::with_capacity(rows.len() * dims),
            last_used: AtomicU64::new(0),
        };
        for (id, kind, seq, v) in rows {
            if v.len() != dims {
                continue;
            }
            out.ids.push(id);
            out.kinds.push(kind);
            out.seqs.push(seq);
            out.data.extend_from_slice(&v);
        }
        out
    }

    /// How many floats it holds.
    pub fn floats(&self) -> usize {
        self.data.len()
    }

    /// The `k` records most similar to `query` (cosine = dot product of unit vectors)
    /// among those with `seq < before` (or no seq) and of `kinds` (empty: all), best
    /// first.
    pub fn search(
        &self,
        query: &[f32],
        before: Option<i32>,
        kinds: &[MemoryKind],
        k: usize,
    ) -> Vec<(Uuid, f32)> {
        if query.len() != self.dims || self.dims == 0 || k == 0 {
            return Vec::new();
        }
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for (i, row) in self.data.chunks_exact(self.dims).enumerate() {
            if let (Some(b), Some(s)) = (before, self.seqs[i])
                && s >= b
            {
                continue;
            }
            if !kinds.is_empty() && !kinds.contains(&self.kinds[i]) {
                continue;
            }
            let score = dot(row, query);
            if heap.len() < k {
                heap.push(Scored(score, i));
            } else if heap.peek().is_some_and(|w| score > w.0) {
                heap.pop();
                heap.push(Scored(score, i));
            }
        }
        let mut out: Vec<(Uuid, f32)> = heap.into_iter().map(|s| (self.ids[s.1], s.0)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

/// A min-heap entry: the worst kept score on top.
struct Scored(f32, usize);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// Dot product with independent accumulators, so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

type Key = (TenantId, NovelId, String);

/// The cache.
#[derive(Debug)]
pub struct VectorCache {
    novels: Mutex<HashMap<Key, Arc<NovelVectors>>>,
    max_floats: usize,
    clock: AtomicU64,
}

impl VectorCache {
    /// A cache holding at most `max_bytes` of vectors.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            novels: Mutex::new(HashMap::new()),
            max_floats: max_bytes / 4,
            clock: AtomicU64::new(0),
        }
    }

    /// The cached vectors of a novel and model if they are at `version`.
    pub fn get(
        &self,
        tenant: TenantId,
        novel: NovelId,
        model: &str,
        version: i64,
    ) -> Option<Arc<NovelVectors>> {
        let map = self.novels.lock().ok()?;
        let v = map.get(&(tenant, novel, model.to_owned()))?;
        if v.version != version {
            return None;
        }
        v.last_used.store(
            self.clock.fetch_add(1, AtomicOrdering::Relaxed),
            AtomicOrdering::Relaxed,
        );
        Some(v.clone())
    }

    /// Caches freshly loaded vectors (dropping the least recently used novels when over
    /// the limit) and returns them.
    pub fn put(
        &self,
        tenant: TenantId,
        novel: NovelId,
        model: &str,
        v: NovelVectors,
    ) -> Arc<NovelVectors> {
        v.last_used.store(
            self.clock.fetch_add(1, AtomicOrdering::Relaxed),
            AtomicOrdering::Relaxed,
        );
        let v = Arc::new(v);
        if let Ok(mut map) = self.novels.lock() {
            map.insert((tenant, novel, model.to_owned()), v.clone());
            let mut total: usize = map.values().map(|n| n.floats()).sum();
            while total > self.max_floats && map.len() > 1 {
                let Some(oldest) = map
                    .iter()
                    .filter(|(_, n)| !Arc::ptr_eq(n, &v))
                    .min_by_key(|(_, n)| n.last_used.load(AtomicOrdering::Relaxed))
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(gone) = map.remove(&oldest) {
                    total -= gone.floats();
                }
            }
        }
        v
    }
}

/// A vector as stored: little-endian f32s.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector back; `None` for a length that is not a multiple of 4.
pub fn from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn exact_search_respects_the_filters() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let c = Uuid::from_u128(3);
        let v = NovelVectors::new(
            1,
            vec![
                (
                    a,
                    MemoryKind::Passage,
                    Some(1),
                    unit(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1]),
                ),
                (
                    b,
                    MemoryKind::Passage,
                    Some(5),
                    unit(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                ),
                (
                    c,
                    MemoryKind::Entity,
                    None,
                    unit(&[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                ),
            ],
        );
        let q = unit(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let all: Vec<Uuid> = v
            .search(&q, None, &[], 3)
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(all, vec![b, a, c]);
        let before: Vec<Uuid> = v
            .search(&q, Some(5), &[], 3)
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(before, vec![a, c]);
        let kinds: Vec<Uuid> = v
            .search(&q, None, &[MemoryKind::Entity], 3)
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(kinds, vec![c]);
        assert_eq!(v.search(&q, None, &[], 1).len(), 1);
        assert!(v.search(&[1.0], None, &[], 1).is_empty());
    }

    #[test]
    fn the_cache_drops_the_least_recently_used_novel() {
        let cache = VectorCache::new(3 * 4 * 4);
        let (t, n1, n2) = (TenantId::new(), NovelId::new(), NovelId::new());
        let rows = |k: u128| {
            vec![
                (Uuid::from_u128(k), MemoryKind::Passage, None, vec![0.5; 4]),
                (
                    Uuid::from_u128(k + 1),
                    MemoryKind::Passage,
                    None,
                    vec![0.5; 4],
                ),
            ]
        };
        cache.put(t, n1, "m", NovelVectors::new(1, rows(1)));
        assert!(cache.get(t, n1, "m", 1).is_some());
        assert!(
            cache.get(t, n1, "m", 2).is_none(),
            "another version is a miss"
        );
        cache.put(t, n2, "m", NovelVectors::new(1, rows(10)));
        assert!(
            cache.get(t, n1, "m", 1).is_none(),
            "over the limit: the older novel went"
        );
        assert!(cache.get(t, n2, "m", 1).is_some());
    }

    #[test]
    fn vectors_round_trip_as_bytes() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(from_bytes(&to_bytes(&v)), Some(v));
        assert_eq!(from_bytes(&[1, 2, 3]), None);
    }
}
