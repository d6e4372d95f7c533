//! Sparse BM25 vectors for Qdrant from the words [`super::segment`] makes (the same words
//! the SQL index searches): each word is hashed to a `u32` dimension; a record's value is
//! its BM25 term-frequency part (saturated by `k1`, normalised by length with `b`), a
//! query's is 1 per distinct word. The inverse document frequency is computed by Qdrant
//! (the collection's sparse vector has the IDF modifier), so it follows the collection.

use super::segment;
use std::collections::BTreeMap;

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;
/// The average record length in words assumed by the length normalisation (passages are
/// cut to a few hundred characters).
const AVG_WORDS: f32 = 48.0;
/// Most distinct words of a question searched (as the SQL index).
const MAX_QUERY_WORDS: usize = 64;

/// A sparse vector: sorted distinct indices and their values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sparse {
    /// Dimensions (word hashes), ascending.
    pub indices: Vec<u32>,
    /// Values, one per index.
    pub values: Vec<f32>,
}

impl Sparse {
    /// No word at all.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The dimension of a word: its 32-bit FNV-1a hash (stable across processes and
/// versions, unlike the standard library's hasher).
pub fn dimension(word: &str) -> u32 {
    word.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A record's sparse vector: BM25 term weights of its words.
pub fn document(text: &str) -> Sparse {
    let words = segment::words(text);
    let len = words.len() as f32;
    let mut tf: BTreeMap<u32, f32> = BTreeMap::new();
    for w in &words {
        *tf.entry(dimension(w)).or_default() += 1.0;
    }
    let norm = K1 * (1.0 - B + B * len / AVG_WORDS);
    let (indices, values) = tf
        .into_iter()
        .map(|(i, f)| (i, f * (K1 + 1.0) / (f + norm)))
        .unzip();
    Sparse { indices, values }
}

/// A question's sparse vector: 1 for each of its distinct words.
pub fn query(text: &str) -> Sparse {
    let mut words = segment::distinct_words(text);
    words.truncate(MAX_QUERY_WORDS);
    let dims: BTreeMap<u32, f32> = words.iter().map(|w| (dimension(w), 1.0)).collect();
    let (indices, values) = dims.into_iter().unzip();
    Sparse { indices, values }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_words_weigh_more_but_saturate() {
        let once = document("lamp storm");
        let thrice = document("lamp lamp lamp storm");
        let lamp = dimension("lamp");
        let weight = |s: &Sparse| s.values[s.indices.iter().position(|i| *i == lamp).unwrap()];
        assert!(weight(&thrice) > weight(&once));
        assert!(weight(&thrice) < 3.0 * weight(&once));
        assert!(thrice.indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn queries_share_dimensions_with_documents() {
        let d = document("林黛玉进了贾府");
        let q = query("黛玉在哪里");
        assert!(q.indices.iter().any(|i| d.indices.contains(i)));
        assert!(query("the of and").is_empty());
        assert_eq!(query("Lamp lamp LAMP").indices, vec![dimension("lamp")]);
    }
}
