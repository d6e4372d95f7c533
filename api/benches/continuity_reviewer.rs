//! `cargo bench -p znovel --bench continuity_reviewer`
//!
//! The continuity fixture (`domain/benches/fixtures/continuity_cases.json`) checked by the
//! rules and then the language-model reviewer running on the embedded model
//! (SmolLM2-135M-Instruct, llama.cpp, the reviewer's JSON schema as a grammar): what a real
//! small model catches beyond the rules, what it gets wrong, and how long a review takes.
//! Needs the model file (`scripts/fetch-models.sh`) and the `local-llm` feature.
//!
//! Knobs: `BENCH_REVIEW_TOKENS` (most answer tokens, default 384).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../domain/benches/continuity/common.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use znovel_domain::services::Reviewer;
use znovel_infra::llm::local::{LocalModel, LocalModelOptions};

#[tokio::main]
async fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = LocalModel::load(&path, LocalModelOptions::default())
        .unwrap_or_else(|e| panic!("the embedded model ({}): {e:#}", path.display()));
    let mut reviewer = Reviewer::new(Arc::new(model));
    reviewer.timeout = Duration::from_secs(300);
    reviewer.max_tokens = std::env::var("BENCH_REVIEW_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(384);
    let fixture = common::load();
    println!("## rules + the reviewer on the embedded model (SmolLM2-135M-Instruct)\n");
    common::quality(&fixture, |_| Some(reviewer.clone())).await;
}
