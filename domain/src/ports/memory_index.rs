//! The memory index port: where remembered records are stored for search — in the
//! relational database itself (SQLite, PostgreSQL: keyword search over text segmented for
//! Chinese, exact vector search after the filter) or in Qdrant (dense + sparse vectors,
//! fused server-side). One contract suite runs on every adapter.

use crate::ids::{ChapterId, NovelId, TenantId};
use crate::model::{MemoryKind, MemoryRecord, RecallMode};
use async_trait::async_trait;
use uuid::Uuid;

/// Why an index operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The index cannot be reached now (connection refused, timeout): retry later.
    #[error("memory index unavailable: {0}")]
    Unavailable(String),
    /// The request cannot be served (e.g. a DENSE search without a query vector).
    #[error("invalid memory index request: {0}")]
    Invalid(String),
    /// Anything else; the message is for logs.
    #[error("memory index error: {0}")]
    Internal(String),
}

/// A search of one novel's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexQuery {
    /// The caller's tenant: every search is filtered by it.
    pub tenant: TenantId,
    /// The novel searched.
    pub novel: NovelId,
    /// Story-time filter: only records whose `chapter_seq` is below this (plus timeless
    /// records, whose `chapter_seq` is `None`). `None`: the whole story.
    pub before_seq: Option<i32>,
    /// Only these kinds; empty: every kind.
    pub kinds: Vec<MemoryKind>,
    /// The text searched by keywords (adapters segment it like the records' text).
    pub text: String,
    /// The query's dense vector (DENSE and HYBRID).
    pub vector: Option<Vec<f32>>,
    /// The model of `vector`: records embedded by another model are not compared.
    pub model: Option<String>,
    /// How to search. HYBRID without a vector searches keywords only.
    pub mode: RecallMode,
    /// Most hits to return.
    pub limit: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexHit {
    /// The record (its `vector` is not returned).
    pub record: MemoryRecord,
    /// Relevance, higher is better (see [`crate::model::RecallHit::score`]).
    pub score: f64,
}

/// Stores records and searches them.
///
/// Contract, for every adapter:
/// - every method is scoped to its tenant: a search never returns another tenant's
///   record, whatever the other filters;
/// - `replace` swaps every record of `source` whose kind is in `kinds` for `records` (all
///   of them of that source and those kinds): afterwards a search finds exactly the new
///   ones; writing the same records twice leaves one copy (ids are stable);
/// - `forget` removes every record of `source`, of every kind; `forget_chapter` every
///   record whose `chapter_id` is the chapter;
/// - `search` returns at most `limit` hits, best first, only of `query.novel`, only of
///   `query.kinds` (when not empty), only with `chapter_seq < before_seq` or no
///   `chapter_seq` (when `before_seq` is set) — never a record outside these filters;
///   KEYWORD finds records sharing a word with the query text (a two-character Chinese
///   name inside an unsegmented sentence included); DENSE ranks records with a vector of
///   `query.model` by cosine similarity; HYBRID fuses both by reciprocal rank.
#[async_trait]
pub trait MemoryIndex: Send + Sync + 'static {
    /// Replaces the records of `source` of the given kinds (see the contract).
    async fn replace(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
        kinds: &[MemoryKind],
        records: Vec<MemoryRecord>,
    ) -> Result<(), IndexError>;

    /// Removes every record of `source`.
    async fn forget(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
    ) -> Result<(), IndexError>;

    /// Removes every record established in `chapter` (its passages, its summary, and
    /// the bible records tied to it): the chapter was deleted.
    async fn forget_chapter(
        &self,
        tenant: TenantId,
        novel: NovelId,
        chapter: ChapterId,
    ) -> Result<(), IndexError>;

    /// Searches one novel (see the contract).
    async fn search(&self, query: &IndexQuery) -> Result<Vec<IndexHit>, IndexError>;
}
