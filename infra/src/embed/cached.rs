//! A bounded in-memory cache in front of any embedder.
//!
//! [`CachedEmbedder`] keeps the most recently used vectors, keyed by the SHA-256 of the
//! text, the inner model's name and the kind (query or passage): a chapter indexed again
//! after an edit embeds only its changed chunks, and a repeated recall query costs no
//! model call. Of one `embed` call only the misses go to the inner embedder, all in one
//! call (a text repeated within the call is embedded once); its errors pass through and
//! nothing is cached from a failed call.

use async_trait::async_trait;
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use znovel_domain::ports::{EmbedError, EmbedKind, Embedder};

/// What a cached vector is found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    text: [u8; 32],
    model: Arc<str>,
    kind: EmbedKind,
}

/// An embedder with a bounded cache of its vectors.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    model: Arc<str>,
    cache: Mutex<LruCache<Key, Arc<[f32]>>>,
}

impl std::fmt::Debug for CachedEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("model", &self.model)
            .field("cached", &self.len())
            .finish()
    }
}

impl CachedEmbedder {
    /// Default capacity: 20 000 vectors (about 30 MB of 384-dimension vectors).
    pub const DEFAULT_CAPACITY: usize = 20_000;

    /// `inner` behind a cache of at most `capacity` vectors (at least one).
    pub fn new(inner: Arc<dyn Embedder>, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            model: Arc::from(inner.model()),
            inner,
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// How many vectors are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<Key, Arc<[f32]>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, text: &str, kind: EmbedKind) -> Key {
        Key {
            text: Sha256::digest(text.as_bytes()).into(),
            model: Arc::clone(&self.model),
            kind,
        }
    }
}

#[async_trait]
impl Embedder for CachedEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let keys: Vec<Key> = texts.iter().map(|t| self.key(t, kind)).collect();
        let mut found: Vec<Option<Arc<[f32]>>> = {
            let mut cache = self.lock();
            keys.iter().map(|k| cache.get(k).cloned()).collect()
        };
        // The distinct missing texts, in first-seen order.
        let mut missing: Vec<String> = Vec::new();
        let mut missing_keys: Vec<&Key> = Vec::new();
        let mut slot_of: HashMap<&Key, usize> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            if found[i].is_none() && !slot_of.contains_key(key) {
                slot_of.insert(key, missing.len());
                missing.push(texts[i].clone());
                missing_keys.push(key);
            }
        }
        if !missing.is_empty() {
            let vectors = self.inner.embed(&missing, kind).await?;
            if vectors.len() != missing.len() {
                return Err(EmbedError::Protocol(format!(
                    "{} vectors for {} texts",
                    vectors.len(),
                    missing.len()
                )));
            }
            let vectors: Vec<Arc<[f32]>> = vectors.into_iter().map(Arc::from).collect();
            let mut cache = self.lock();
            // In input order: of a call larger than the cache, its last texts stay.
            for (key, vector) in missing_keys.iter().zip(&vectors) {
                cache.put((*key).clone(), Arc::clone(vector));
            }
            for (i, key) in keys.iter().enumerate() {
                if found[i].is_none() {
                    found[i] = slot_of.get(key).map(|&slot| Arc::clone(&vectors[slot]));
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|v| v.map(|v| v.to_vec()).unwrap_or_default())
            .collect())
    }
}
