//! `cargo bench -p znovel --bench memory_recall`
//!
//! Retrieval quality on a bilingual fixture (`benches/fixtures/memory_story_{en,zh}.json`:
//! 30 English and 10 Chinese chapters, each a planted fact among filler paragraphs drawn
//! from `memory_fillers_{en,zh}.txt`, a story bible with nicknames, and paraphrased
//! questions — several asked "as of" different chapters, whose answer changes later).
//! Each novel is written through the domain services and remembered by the real
//! indexer (chapter passages and bible records, with the configured embedder); then every
//! question is asked with `recall(beforeChapter)` in HYBRID, DENSE and KEYWORD.
//!
//! Reports, per language and mode: recall@1/4/8 (a hit among the first k quotes the
//! planted answer), MRR, the share of hits that violate the story-time filter (a chapter
//! at or after `beforeChapter`: must be 0), and recall latency p50/p95.
//!
//! Both indexes are scored in one run, each on a fresh database: the embedded one (SQLite)
//! and Qdrant (a real server started here, like the tests do; skipped loudly without the
//! binary). `BENCH_INDEX=sqlite` or `=qdrant` runs one. The embedder is the one the
//! server would use with the same environment (`EMBEDDING_*` variables, else the embedded
//! model in `ZNOVEL_DATA_DIR/models`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel::config::{ProcessEnv, Settings};
use znovel_domain::auth::{Actor, Role};
use znovel_domain::model::{EntityKind, RecallMode};
use znovel_domain::ports::{Embedder, MemoryIndex};
use znovel_domain::services::{
    CreateChapter, CreateEntity, CreateNovel, CreateTenant, Indexer, RecallRequest, RecallService,
    Services,
};
use znovel_infra::memory::{QdrantConfig, QdrantMemoryIndex, SqlMemoryIndex};
use znovel_infra::testing::TestDatabase;
use znovel_infra::testing::qdrant::TestQdrant;

#[derive(Deserialize)]
struct Story {
    title: String,
    language: String,
    entities: Vec<EntityIn>,
    chapters: Vec<ChapterIn>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct EntityIn {
    name: String,
    kind: String,
    aliases: Vec<String>,
    description: String,
}

#[derive(Deserialize)]
struct ChapterIn {
    title: String,
    facts: String,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    before: i64,
    answer: String,
    seq: i32,
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/fixtures");

fn load(lang: &str) -> (Story, Vec<String>) {
    let story: Story = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/memory_story_{lang}.json")).unwrap(),
    )
    .unwrap();
    let fillers = std::fs::read_to_string(format!("{FIXTURES}/memory_fillers_{lang}.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (story, fillers)
}

/// A chapter's text: two filler paragraphs, the planted fact, two more fillers.
fn chapter_text(seq: usize, facts: &str, fillers: &[String]) -> String {
    let f = |i: usize| fillers[(seq * 3 + i * 7) % fillers.len()].as_str();
    format!("{}\n\n{}\n\n{facts}\n\n{}\n\n{}", f(0), f(1), f(2), f(3))
}

#[derive(Default)]
struct Score {
    questions: usize,
    at: [usize; 3],
    rr: f64,
    hits: usize,
    violations: usize,
    latencies: Vec<Duration>,
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn run_story(
    lang: &str,
    services: &Services,
    actor: &Actor,
    indexer: &Indexer,
    recall: &RecallService,
) -> (String, Vec<(RecallMode, Score)>) {
    let (story, fillers) = load(lang);
    let novel = services
        .story
        .create_novel(
            actor,
            CreateNovel {
                title: story.title.clone(),
                language: Some(story.language.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for e in &story.entities {
        services
            .memory
            .create_entity(
                actor,
                CreateEntity {
                    novel_id: novel.id,
                    name: e.name.clone(),
                    kind: EntityKind::parse(&e.kind).unwrap(),
                    aliases: e.aliases.clone(),
                    description: Some(e.description.clone()),
                    attributes: None,
                    importance: None,
                    current_state: None,
                },
            )
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut passages = 0;
    for (i, c) in story.chapters.iter().enumerate() {
        let seq = i as i64 + 1;
        let chapter = services
            .story
            .create_chapter(
                actor,
                CreateChapter {
                    novel_id: novel.id,
                    seq: Some(seq),
                    title: c.title.clone(),
                    content: Some(chapter_text(i + 1, &c.facts, &fillers)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        passages += znovel_domain::chunk::passages(&chapter.content).len();
        indexer.chapter_passages(&chapter).await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    let indexing = format!(
        "{lang}: {} chapters, {passages} passages indexed in {took:.1} s ({:.1} passages/s)",
        story.chapters.len(),
        passages as f64 / took
    );
    let mut out = Vec::new();
    for mode in [RecallMode::Hybrid, RecallMode::Dense, RecallMode::Keyword] {
        let mut s = Score::default();
        for q in &story.questions {
            let t = Instant::now();
            let result = recall
                .recall(
                    actor,
                    RecallRequest {
                        novel_id: novel.id,
                        query: q.q.clone(),
                        before_chapter: Some(q.before),
                        first: Some(8),
                        mode,
                    },
                )
                .await;
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{lang} {mode}: {e}");
                    break;
                }
            };
            s.latencies.push(t.elapsed());
            s.questions += 1;
            s.hits += result.hits.len();
            s.violations += result
                .hits
                .iter()
                .filter(|h| h.chapter_seq.is_some_and(|seq| i64::from(seq) >= q.before))
                .count();
            let rank = result
                .hits
                .iter()
                .position(|h| h.text.contains(&q.answer) && h.chapter_seq == Some(q.seq));
            if let Some(r) = rank {
                s.rr += 1.0 / (r as f64 + 1.0);
                for (i, k) in [1usize, 4, 8].iter().enumerate() {
                    if r < *k {
                        s.at[i] += 1;
                    }
                }
            }
        }
        out.push((mode, s));
    }
    (indexing, out)
}

/// The embedder the server would build from this environment (`EMBEDDING_*`, else the
/// embedded model in `ZNOVEL_DATA_DIR/models`, by default the workspace's `data/`),
/// without its cache: indexing throughput counts every passage.
fn embedder() -> Option<Arc<dyn Embedder>> {
    let mut settings = Settings::load(&ProcessEnv, None).unwrap();
    if std::env::var_os("ZNOVEL_DATA_DIR").is_none() {
        settings.data_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data").into();
    }
    znovel::embedding::build_uncached(&settings).unwrap()
}

#[tokio::main]
async fn main() {
    let embedder = embedder();
    println!(
        "embedder: {}\n",
        embedder
            .as_ref()
            .map_or("none (keyword only)".to_owned(), |e| e.model().to_owned())
    );
    let wanted = std::env::var("BENCH_INDEX").unwrap_or_else(|_| "sqlite,qdrant".into());
    for name in wanted.split(',').map(str::trim) {
        run_index(name, embedder.clone()).await;
    }
}

/// Writes both stories into a fresh database remembered by the index `name` (`sqlite`:
/// the embedded one; `qdrant`: a real server started here, skipped loudly without the
/// binary) and prints the scores table and the indexing throughput.
async fn run_index(name: &str, embedder: Option<Arc<dyn Embedder>>) {
    let db = TestDatabase::sqlite().unwrap();
    let store = Arc::new(db.store().await.unwrap());
    let server;
    let (index, label): (Arc<dyn MemoryIndex>, &str) = match name {
        "sqlite" => (
            Arc::new(SqlMemoryIndex::new((*store).clone(), 256 << 20)),
            "embedded (SQLite: FTS5 + exact dense search)",
        ),
        "qdrant" => {
            server = TestQdrant::start().unwrap();
            let Some(server) = &server else {
                println!("index: Qdrant — SKIPPED (no qdrant binary; set QDRANT_BIN)\n");
                return;
            };
            let dims = embedder.as_ref().map_or(384, |e| e.dimensions());
            let config = QdrantConfig {
                collection: format!("bench_{}", uuid::Uuid::new_v4().simple()),
                ..QdrantConfig::new(server.url.clone(), dims)
            };
            (
                Arc::new(QdrantMemoryIndex::new(&config).unwrap()),
                "Qdrant (dense + BM25 sparse, fused)",
            )
        }
        other => panic!("BENCH_INDEX: unknown index {other:?} (sqlite, qdrant)"),
    };
    let indexer = Indexer::new(store.clone(), index.clone(), embedder.clone());
    let recall = RecallService::new(store.clone(), index.clone(), embedder.clone());
    let services = Services::new(store.clone());
    let services = Services {
        memory: services.memory.clone().with_indexer(indexer.clone()),
        ..services
    };
    let t = services
        .admin
        .create_tenant(CreateTenant {
            name: "Bench".into(),
            slug: "bench".into(),
            admin_email: "bench@example.org".into(),
            admin_name: None,
        })
        .await
        .unwrap();
    let actor = Actor::new(t.tenant.id, t.admin.id, Role::Admin, None, None);
    println!("index: {label}\n");
    println!(
        "| story | mode | questions | recall@1 | recall@4 | recall@8 | MRR | story-time violations | p50 | p95 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut indexing = Vec::new();
    for lang in ["en", "zh"] {
        let (line, scores) = run_story(lang, &services, &actor, &indexer, &recall).await;
        indexing.push(line);
        for (mode, mut s) in scores {
            if s.questions == 0 {
                println!("| {lang} | {mode} | — | unavailable |  |  |  |  |  |  |");
                continue;
            }
            let n = s.questions as f64;
            let p50 = percentile(&mut s.latencies, 0.5);
            let p95 = percentile(&mut s.latencies, 0.95);
            println!(
                "| {lang} | {mode} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} | {:.1} ms | {:.1} ms |",
                s.questions,
                s.at[0] as f64 / n,
                s.at[1] as f64 / n,
                s.at[2] as f64 / n,
                s.rr / n,
                s.violations,
                s.hits,
                p50.as_secs_f64() * 1000.0,
                p95.as_secs_f64() * 1000.0,
            );
        }
    }
    println!();
    for line in indexing {
        println!("{line}");
    }
    println!();
}
