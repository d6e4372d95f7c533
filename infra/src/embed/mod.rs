//! Embedder adapters (the domain's `Embedder` port).
//!
//! - [`local`]: [`LocalEmbedder`], the embedded multilingual model (multilingual-e5-small,
//!   4-bit, run by its C engine): English and Chinese, no configuration, no network.
//! - [`openai`]: [`OpenAiEmbedder`], any OpenAI-compatible `/v1/embeddings` endpoint,
//!   in batches.
//! - [`cached`]: [`CachedEmbedder`], a bounded in-memory cache in front of either.

pub mod cached;
pub mod local;
pub mod openai;

pub use cached::CachedEmbedder;
pub use local::LocalEmbedder;
pub use openai::{OpenAiEmbedder, OpenAiEmbedderConfig};

/// Scales `vector` to unit length; `false` (and unchanged) when its norm is zero or not
/// finite, which no embedding may have.
pub(crate) fn normalize(vector: &mut [f32]) -> bool {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    for x in vector.iter_mut() {
        *x /= norm;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_to_unit_length_and_refuses_zero_or_nan() {
        let mut v = vec![3.0, 4.0];
        assert!(normalize(&mut v));
        assert_eq!(v, vec![0.6, 0.8]);
        assert!(!normalize(&mut [0.0, 0.0]));
        assert!(!normalize(&mut [f32::NAN, 1.0]));
    }
}
