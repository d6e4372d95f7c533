//! `cargo bench -p znovel --bench recall_scale`
//!
//! Recall latency at scale: one novel of `BENCH_PASSAGES` (default 100 000) synthetic
//! passages — generated text over a 5 000-word vocabulary and random unit 384-d vectors,
//! 100 passages per chapter — written to the embedded index (SQLite: FTS5 keywords, exact
//! dense search over the novel's cached vectors) and to Qdrant (a real server started
//! here, like the tests do; skipped loudly without the binary). Then the same
//! `BENCH_QUERIES` (default 300) questions — three vocabulary words, a random vector,
//! "as of" a random chapter, 8 hits — are asked of both in HYBRID, DENSE and KEYWORD,
//! one at a time, after a warm-up round (`BENCH_INDEX=sqlite`: the embedded index only). Prints p50/p95/p99 per index and mode, then the
//! dense scan alone: 8-bit codes with rescoring against every vector in f32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use znovel_domain::ids::{NovelId, TenantId};
use znovel_domain::model::{MemoryKind, MemoryRecord, Novel, NovelStatus, RecallMode, Tenant};
use znovel_domain::ports::{IndexQuery, MemoryIndex, NovelRepository, TenantRepository};
use znovel_domain::services::now;
use znovel_infra::DbBackend;
use znovel_infra::memory::{QdrantConfig, QdrantMemoryIndex, SqlMemoryIndex};
use znovel_infra::testing::TestDatabase;
use znovel_infra::testing::qdrant::TestQdrant;

const DIMS: usize = 384;
const PER_CHAPTER: usize = 100;
const VOCABULARY: usize = 5_000;
const MODEL: &str = "bench-model";
const MODES: [RecallMode; 3] = [RecallMode::Hybrid, RecallMode::Dense, RecallMode::Keyword];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pronounceable made-up words, so keyword search has realistic posting lists.
fn vocabulary(rng: &mut StdRng) -> Vec<String> {
    const SYLLABLES: [&str; 24] = [
        "ka", "ro", "mi", "tel", "an", "vor", "shi", "lu", "den", "ma", "ri", "ost", "el", "qua",
        "bir", "ne", "sol", "tha", "gu", "pen", "ix", "do", "ral", "fe",
    ];
    let mut words = std::collections::BTreeSet::new();
    while words.len() < VOCABULARY {
        let n = rng.random_range(2..=4);
        let w: String = (0..n)
            .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
            .collect();
        words.insert(w);
    }
    words.into_iter().collect()
}

/// Zipf-like: low ranks are much more frequent, as in prose.
fn word<'a>(rng: &mut StdRng, vocab: &'a [String]) -> &'a str {
    let u: f64 = rng.random();
    let i = ((vocab.len() as f64).powf(u) - 1.0) as usize;
    &vocab[i.min(vocab.len() - 1)]
}

fn unit_vector(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIMS).map(|_| rng.random::<f32>() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

async fn seed(store: &znovel_infra::SqlStore) -> (TenantId, NovelId) {
    let t = now();
    let tenant = Tenant {
        id: TenantId::new(),
        name: "Bench".into(),
        slug: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        status: znovel_domain::model::TenantStatus::Active,
        quota: Default::default(),
        settings: serde_json::json!({}),
        created_at: t,
        updated_at: t,
    };
    store.insert_tenant(&tenant).await.unwrap();
    let novel = Novel {
        id: NovelId::new(),
        tenant_id: tenant.id,
        title: "Scale".into(),
        description: String::new(),
        genre: String::new(),
        language: "en".into(),
        target_word_count: None,
        style_guide: String::new(),
        world_settings: serde_json::json!({}),
        time_system: String::new(),
        status: NovelStatus::Draft,
        word_count: 0,
        created_at: t,
        updated_at: t,
    };
    store.insert_novel(&novel).await.unwrap();
    (tenant.id, novel.id)
}

/// The chapters' records, chapter by chapter (source = the chapter).
fn chapters(
    tenant: TenantId,
    novel: NovelId,
    passages: usize,
    vocab: &[String],
) -> Vec<(uuid::Uuid, Vec<MemoryRecord>)> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..passages.div_ceil(PER_CHAPTER))
        .map(|c| {
            let source = uuid::Uuid::now_v7();
            let records = (0..PER_CHAPTER.min(passages - c * PER_CHAPTER))
                .map(|i| {
                    let len = rng.random_range(30..70);
                    let text: Vec<&str> = (0..len).map(|_| word(&mut rng, vocab)).collect();
                    MemoryRecord {
                        id: MemoryRecord::stable_id(source, MemoryKind::Passage, i as i32),
                        tenant_id: tenant,
                        novel_id: novel,
                        kind: MemoryKind::Passage,
                        source_id: source,
                        ordinal: i as i32,
                        chapter_id: Some(znovel_domain::ids::ChapterId::from_uuid(source)),
                        chapter_seq: Some(c as i32 + 1),
                        chapter_version: Some(1),
                        text: text.join(" "),
                        start_offset: None,
                        end_offset: None,
                        vector: Some(unit_vector(&mut rng)),
                        model: Some(MODEL.into()),
                    }
                })
                .collect();
            (source, records)
        })
        .collect()
}

async fn load(
    index: &dyn MemoryIndex,
    tenant: TenantId,
    novel: NovelId,
    chapters: &[(uuid::Uuid, Vec<MemoryRecord>)],
) -> Duration {
    let started = Instant::now();
    for (source, records) in chapters {
        index
            .replace(
                tenant,
                novel,
                *source,
                &[MemoryKind::Passage],
                records.clone(),
            )
            .await
            .unwrap();
    }
    started.elapsed()
}

/// Waits until Qdrant has indexed everything (collection status green).
async fn wait_green(http_port: u16, collection: &str) -> Duration {
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{http_port}/collections/{collection}");
    loop {
        let info: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if info["result"]["status"] == "green" {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn measure(name: &str, index: &dyn MemoryIndex, queries: &[IndexQuery]) {
    for mode in MODES {
        let ask = |q: &IndexQuery| IndexQuery { mode, ..q.clone() };
        for q in queries.iter().take(queries.len().min(50)) {
            index.search(&ask(q)).await.unwrap();
        }
        let mut took = Vec::with_capacity(queries.len());
        let mut hits = 0;
        for q in queries {
            let started = Instant::now();
            hits += index.search(&ask(q)).await.unwrap().len();
            took.push(started.elapsed());
        }
        took.sort();
        println!(
            "| {name} | {mode} | {:.2} | {:.2} | {:.2} | {:.1} |",
            percentile(&took, 0.5),
            percentile(&took, 0.95),
            percentile(&took, 0.99),
            hits as f64 / queries.len() as f64
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let passages = env_usize("BENCH_PASSAGES", 100_000);
    let n_queries = env_usize("BENCH_QUERIES", 300);
    let mut rng = StdRng::seed_from_u64(42);
    let vocab = vocabulary(&mut rng);

    let db = TestDatabase::new(DbBackend::Sqlite).await.unwrap();
    let store = db.store().await.unwrap();
    let (tenant, novel) = seed(&store).await;
    let chapters = chapters(tenant, novel, passages, &vocab);
    let n_chapters = chapters.len() as i32;
    let queries: Vec<IndexQuery> = (0..n_queries)
        .map(|_| {
            let words: Vec<&str> = (0..3).map(|_| word(&mut rng, &vocab)).collect();
            IndexQuery {
                tenant,
                novel,
                before_seq: Some(rng.random_range(2..=n_chapters + 1)),
                kinds: Vec::new(),
                text: words.join(" "),
                vector: Some(unit_vector(&mut rng)),
                model: Some(MODEL.into()),
                mode: RecallMode::Hybrid,
                limit: 8,
            }
        })
        .collect();
    println!("{passages} passages in {n_chapters} chapters, {n_queries} questions, 8 hits each");

    let sql = SqlMemoryIndex::new(store.clone(), 1 << 30);
    let took = load(&sql, tenant, novel, &chapters).await;
    println!("SQLite: written in {:.1} s", took.as_secs_f64());

    // BENCH_INDEX=sqlite skips Qdrant (=qdrant is not offered: the SQL index is the baseline).
    let server = if std::env::var("BENCH_INDEX").is_ok_and(|v| v == "sqlite") {
        None
    } else {
        TestQdrant::start().unwrap()
    };
    let qdrant = match &server {
        Some(server) => {
            let config = QdrantConfig {
                collection: format!("bench_{}", uuid::Uuid::new_v4().simple()),
                ..QdrantConfig::new(server.url.clone(), DIMS)
            };
            let index = QdrantMemoryIndex::new(&config).unwrap();
            let took = load(&index, tenant, novel, &chapters).await;
            let green = wait_green(server.http_port, &config.collection).await;
            println!(
                "Qdrant: written in {:.1} s, indexed {:.1} s later",
                took.as_secs_f64(),
                green.as_secs_f64()
            );
            Some(index)
        }
        None => None,
    };

    println!();
    println!("| index | mode | p50 ms | p95 ms | p99 ms | hits/question |");
    println!("|---|---|---|---|---|---|");
    measure("SQLite (in process)", &sql, &queries).await;
    if let Some(q) = &qdrant {
        measure("Qdrant", q, &queries).await;
    }
    drop(server);
    dense_scan(&chapters, &queries);
}

/// The dense scan alone, side by side: 8-bit codes with f32 rescoring (what the SQL index
/// runs) against scoring every f32 vector, on the same vectors and questions; the answers
/// must be the same.
fn dense_scan(chapters: &[(uuid::Uuid, Vec<MemoryRecord>)], queries: &[IndexQuery]) {
    let rows = chapters
        .iter()
        .flat_map(|(_, records)| records.iter())
        .map(|r| (r.id, r.kind, r.chapter_seq, r.vector.clone().unwrap()))
        .collect();
    let vectors = znovel_infra::memory::vectors::NovelVectors::new(1, rows);
    let mut codes = Vec::with_capacity(queries.len());
    let mut every = Vec::with_capacity(queries.len());
    let mut same = 0;
    for q in queries {
        let v = q.vector.as_deref().unwrap();
        let started = Instant::now();
        let a = vectors.search(v, q.before_seq, &q.kinds, 50);
        codes.push(started.elapsed());
        let started = Instant::now();
        let b = vectors.search_f32(v, q.before_seq, &q.kinds, 50);
        every.push(started.elapsed());
        same += usize::from(a == b);
    }
    codes.sort();
    every.sort();
    println!();
    println!("| dense scan, 50 best | p50 ms | p95 ms |");
    println!("|---|---|---|");
    for (name, took) in [
        ("8-bit codes + f32 rescoring", &codes),
        ("every vector in f32", &every),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} |",
            percentile(took, 0.5),
            percentile(took, 0.95)
        );
    }
    println!(
        "identical answers: {same} of {} questions; median ratio {:.2}x",
        queries.len(),
        percentile(&every, 0.5) / percentile(&codes, 0.5)
    );
}
