//! Each novel's vectors held in process, for exact dense search in the SQL memory index:
//! the vectors live in the database (the record); a novel's are loaded into one
//! contiguous array on first search and reloaded when the novel's memory version moved
//! (any process wrote to it), through the [`ResidentCache`] the keyword postings share.
//!
//! Search is exact — every vector passing the filter is considered and the `k` best by
//! cosine are returned, which a graph index with a filter does not guarantee — and it
//! reads a quarter of the bytes: every vector is also kept as 8-bit codes with its scale,
//! the scan scores the codes, and only the rows whose score *could* still reach the best
//! `k` (the codes' error is bounded per row, see [`NovelVectors::search`]) are scored again
//! with their `f32` vector. At 100,000 passages of 384 dimensions that is 38 MB read per
//! question instead of 154 MB.

use super::resident::{Resident, visible};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use uuid::Uuid;
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
    /// The vectors, row after row.
    data: Vec<f32>,
    /// Each vector as signed 8-bit codes: `x ≈ scale · code`.
    codes: Vec<i8>,
    /// Each row's code scale (its largest magnitude / 127).
    scales: Vec<f32>,
    /// Each row's `scale · Σ|code|` (the L1 norm of its decoded codes), for the error bound.
    l1: Vec<f32>,
}

/// A vector's 8-bit codes and their scale.
fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
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
            codes: Vec::with_capacity(rows.len() * dims),
            scales: Vec::with_capacity(rows.len()),
            l1: Vec::with_capacity(rows.len()),
        };
        for (id, kind, seq, v) in rows {
            if v.len() != dims {
                continue;
            }
            out.ids.push(id);
            out.kinds.push(kind);
            out.seqs.push(seq);
            out.data.extend_from_slice(&v);
            let from = out.codes.len();
            let scale = quantize(&v, &mut out.codes);
            let l1: i32 = out.codes[from..].iter().map(|c| i32::from(*c).abs()).sum();
            out.scales.push(scale);
            out.l1.push(scale * l1 as f32);
        }
        out
    }

    /// Whether row `i` passes the story-time and kind filter.
    fn passes(&self, i: usize, before: Option<i32>, kinds: &[MemoryKind]) -> bool {
        visible(self.seqs[i], self.kinds[i], before, kinds)
    }

    /// The `k` records most similar to `query` (cosine = dot product of unit vectors)
    /// among those with `seq < before` (or no seq) and of `kinds` (empty: all), best
    /// first; ties by id.
    ///
    /// Exact, in two passes. With the query quantized the same way (`q ≈ s_q · c_q`), a
    /// row's code score `s · s_q · (c · c_q)` differs from its true score `x · q` by at
    /// most `(s / 2)·‖q‖₁ + (s_q / 2)·‖x̂‖₁` (each code is off by at most half its step).
    /// The first pass keeps, for every row passing the filter, its code score and that
    /// bound; the `k`-th best lower bound is a score `k` rows are sure to reach, so only
    /// rows whose upper bound reaches it can be among the best, and only those are scored
    /// again in `f32`.
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
        let mut q_codes = Vec::with_capacity(self.dims);
        let q_scale = quantize(query, &mut q_codes);
        let q_l1: f32 = query.iter().map(|x| x.abs()).sum();
        // Rounding in the bound's own arithmetic: widen it a little.
        let slack = 1e-5;
        let mut rows: Vec<(f32, u32)> = Vec::new();
        let mut lows = TopK::new(k);
        for (i, codes) in self.codes.chunks_exact(self.dims).enumerate() {
            if !self.passes(i, before, kinds) {
                continue;
            }
            let approx = self.scales[i] * q_scale * dot_i8(codes, &q_codes) as f32;
            let bound = 0.5 * (self.scales[i] * q_l1 + q_scale * self.l1[i]) + slack;
            lows.offer(approx - bound, i);
            rows.push((approx + bound, i as u32));
        }
        let floor = lows.floor();
        let mut best = TopK::new(k);
        for &(high, i) in &rows {
            if high < floor {
                continue;
            }
            let i = i as usize;
            best.offer(
                dot(&self.data[i * self.dims..(i + 1) * self.dims], query),
                i,
            );
        }
        best.into_ranked(&self.ids)
    }

    /// The same answer as [`Self::search`] by scoring every row in `f32` (the reference
    /// the tests and the benchmark compare with).
    pub fn search_f32(
        &self,
        query: &[f32],
        before: Option<i32>,
        kinds: &[MemoryKind],
        k: usize,
    ) -> Vec<(Uuid, f32)> {
        if query.len() != self.dims || self.dims == 0 || k == 0 {
            return Vec::new();
        }
        let mut best = TopK::new(k);
        for (i, row) in self.data.chunks_exact(self.dims).enumerate() {
            if self.passes(i, before, kinds) {
                best.offer(dot(row, query), i);
            }
        }
        best.into_ranked(&self.ids)
    }
}

impl Resident for NovelVectors {
    fn version(&self) -> i64 {
        self.version
    }

    fn bytes(&self) -> usize {
        self.data.len() * 4 + self.codes.len() + self.ids.len() * (16 + 4 + 4 + 8 + 8)
    }
}

/// The `k` best (score, row) offered: a min-heap with the worst kept score on top.
struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, score: f32, row: usize) {
        if self.heap.len() < self.k {
            self.heap.push(Scored(score, row));
        } else if self.heap.peek().is_some_and(|w| score > w.0) {
            self.heap.pop();
            self.heap.push(Scored(score, row));
        }
    }

    /// The `k`-th best score offered (minus infinity while fewer than `k` were).
    fn floor(&self) -> f32 {
        if self.heap.len() < self.k {
            return f32::NEG_INFINITY;
        }
        self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0)
    }

    /// The kept rows as (id, score), best first, ties by id.
    fn into_ranked(self, ids: &[Uuid]) -> Vec<(Uuid, f32)> {
        let mut out: Vec<(Uuid, f32)> = self.heap.into_iter().map(|s| (ids[s.1], s.0)).collect();
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

/// Dot product with independent accumulators over fixed-size blocks, so the compiler
/// vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Dot product of 8-bit codes, exact in `i32` (384 dimensions reach at most 6.2 million).
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..32 {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += i32::from(*x) * i32::from(*y);
    }
    sum
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

    /// A small deterministic generator (xorshift), so the test needs no seed crate.
    fn numbers(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    #[test]
    fn the_code_scan_finds_exactly_what_scoring_every_vector_finds() {
        let mut r = numbers(7);
        // Clustered vectors with close scores (as a real embedder's are), one in five
        // without a chapter, three kinds.
        let centre: Vec<f32> = (0..64).map(|_| r()).collect();
        let rows: Vec<(Uuid, MemoryKind, Option<i32>, Vec<f32>)> = (0..3_000u128)
            .map(|i| {
                let v: Vec<f32> = centre.iter().map(|c| c + 0.3 * r()).collect();
                let kind = [MemoryKind::Passage, MemoryKind::Summary, MemoryKind::Entity]
                    [(i % 3) as usize];
                let seq = (i % 5 != 0).then_some((i / 10) as i32 + 1);
                (Uuid::from_u128(i + 1), kind, seq, unit(&v))
            })
            .collect();
        let v = NovelVectors::new(1, rows);
        for round in 0..200 {
            let q: Vec<f32> = centre.iter().map(|c| c + 0.3 * r()).collect();
            let q = unit(&q);
            let before = (round % 4 != 0).then_some(round * 2 + 1);
            let kinds: &[MemoryKind] = match round % 3 {
                0 => &[],
                1 => &[MemoryKind::Passage],
                _ => &[MemoryKind::Summary, MemoryKind::Entity],
            };
            let k = [1, 8, 50][round as usize % 3];
            let fast = v.search(&q, before, kinds, k);
            let every = v.search_f32(&q, before, kinds, k);
            assert_eq!(
                fast.iter().map(|h| h.0).collect::<Vec<_>>(),
                every.iter().map(|h| h.0).collect::<Vec<_>>(),
                "round {round}"
            );
            assert!(!fast.is_empty());
        }
    }

    #[test]
    fn vectors_round_trip_as_bytes() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(from_bytes(&to_bytes(&v)), Some(v));
        assert_eq!(from_bytes(&[1, 2, 3]), None);
    }
}
