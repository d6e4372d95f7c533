//! The memory index adapters (the `MemoryIndex` port): in the relational database
//! ([`SqlMemoryIndex`], the embedded default, searching in process over each novel's
//! [`keywords`] and [`vectors`]) or in Qdrant ([`QdrantMemoryIndex`]), with the word
//! segmentation they share ([`segment`], [`sparse`]) and reciprocal-rank fusion
//! ([`fuse`]).

pub mod keywords;
mod mirror;
mod qdrant;
mod resident;
pub mod segment;
pub mod sparse;
mod sql;
pub mod vectors;

pub use mirror::MirroredMemoryIndex;
pub use qdrant::{QdrantConfig, QdrantMemoryIndex};
pub use sql::SqlMemoryIndex;

use std::collections::HashMap;
use uuid::Uuid;

/// The `k` of reciprocal-rank fusion: score = Σ 1 / (k + rank), rank from 1.
pub const RRF_K: f64 = 60.0;

/// How many candidates each side of a HYBRID search brings for `limit` results.
pub fn candidates(limit: usize) -> usize {
    (limit * 4).max(50)
}

/// Fuses rankings (best first) by reciprocal rank; returns the best `limit` (id, score),
/// ties broken by id.
pub fn fuse(rankings: &[&[Uuid]], k: f64, limit: usize) -> Vec<(Uuid, f64)> {
    let mut scores: HashMap<Uuid, f64> = HashMap::new();
    for ranking in rankings {
        for (i, id) in ranking.iter().enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (k + (i + 1) as f64);
        }
    }
    let mut out: Vec<(Uuid, f64)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        // b is second and first, c third and second, a only first: agreement wins.
        let fused = fuse(&[&[a, b, c], &[b, c]], RRF_K, 10);
        let order: Vec<Uuid> = fused.iter().map(|f| f.0).collect();
        assert_eq!(order, vec![b, c, a]);
        assert_eq!(fuse(&[&[a, b, c]], RRF_K, 2).len(), 2);
    }
}
