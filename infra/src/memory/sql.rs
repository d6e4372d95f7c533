//! The memory index in the relational database itself (the embedded default, and
//! PostgreSQL without Qdrant): records in `memory_records` under the tenant's row-level
//! security; searched in process over what each novel's records hold, loaded from the
//! database and reloaded when the novel's memory version moves ([`super::resident`]):
//! BM25 over the segmented words ([`super::keywords`]) and exact dense search over the
//! vectors ([`super::vectors`]), both fused by reciprocal rank for HYBRID.

use super::keywords::NovelKeywords;
use super::resident::ResidentCache;
use super::segment;
use super::vectors::{NovelVectors, from_bytes, to_bytes};
use super::{RRF_K, candidates, fuse};
use crate::sql::SqlStore;
use crate::sql::repos::records::{RecordMeta, RecordRow};
use crate::sql::types::{DbTime, DbUuid, ToDb};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;
use znovel_domain::StoreError;
use znovel_domain::ids::{ChapterId, NovelId, TenantId};
use znovel_domain::model::{MemoryKind, MemoryRecord, RecallMode};
use znovel_domain::ports::{IndexError, IndexHit, IndexQuery, MemoryIndex};
use znovel_domain::services::now;

/// Most distinct words of a question searched.
const MAX_QUERY_WORDS: usize = 64;
/// Searches run again at most this many times while writes keep moving the novel's
/// memory version (then the last one is answered as it is).
const MAX_SEARCH_ATTEMPTS: usize = 3;

/// The SQL memory index.
#[derive(Clone)]
pub struct SqlMemoryIndex {
    store: SqlStore,
    vectors: Arc<ResidentCache<NovelVectors>>,
    keywords: Arc<ResidentCache<NovelKeywords>>,
}

impl std::fmt::Debug for SqlMemoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlMemoryIndex")
            .field("store", &self.store)
            .finish()
    }
}

fn index_err(e: StoreError) -> IndexError {
    match e {
        StoreError::Unavailable(m) => IndexError::Unavailable(m),
        other => IndexError::Internal(other.to_string()),
    }
}

/// A record read back, as the domain's record (without its vector).
pub(crate) fn to_record(m: RecordMeta) -> Result<MemoryRecord, IndexError> {
    Ok(MemoryRecord {
        id: m.id.0,
        tenant_id: TenantId::from_uuid(m.tenant_id.0),
        novel_id: NovelId::from_uuid(m.novel_id.0),
        kind: MemoryKind::parse(&m.kind)
            .ok_or_else(|| IndexError::Internal(format!("unknown memory kind {:?}", m.kind)))?,
        source_id: m.source_id.0,
        ordinal: m.ordinal,
        chapter_id: m.chapter_id.map(|c| ChapterId::from_uuid(c.0)),
        chapter_seq: m.chapter_seq,
        chapter_version: m.chapter_version,
        text: m.text,
        start_offset: m.start_offset,
        end_offset: m.end_offset,
        vector: None,
        model: m.model,
    })
}

impl SqlMemoryIndex {
    /// The index over `store`'s database, holding at most `cache_bytes` of vectors and
    /// as much again of keyword postings in process (the least recently searched novels
    /// are dropped first; one novel is always held).
    pub fn new(store: SqlStore, cache_bytes: usize) -> Self {
        segment::warm_up();
        Self {
            store,
            vectors: Arc::new(ResidentCache::new(cache_bytes)),
            keywords: Arc::new(ResidentCache::new(cache_bytes)),
        }
    }

    /// Every record of a novel with its vector (what `znovel reindex` copies to Qdrant).
    pub async fn records(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> Result<Vec<MemoryRecord>, IndexError> {
        let rows: Vec<(RecordMeta, Option<Vec<u8>>)> = self
            .store
            .records_all(tenant, novel)
            .await
            .map_err(index_err)?;
        rows.into_iter()
            .map(|(meta, vector)| {
                let mut r = to_record(meta)?;
                r.vector = vector.as_deref().and_then(from_bytes);
                Ok(r)
            })
            .collect()
    }

    /// The novel's memory version (one read per search: what is held is valid at it).
    async fn version(&self, tenant: TenantId, novel: NovelId) -> Result<i64, IndexError> {
        self.store
            .records_version(tenant, novel)
            .await
            .map_err(index_err)
    }

    async fn vectors(
        &self,
        tenant: TenantId,
        novel: NovelId,
        model: &str,
        version: i64,
    ) -> Result<Arc<NovelVectors>, IndexError> {
        if let Some(v) = self.vectors.get(tenant, novel, model, version) {
            return Ok(v);
        }
        let (version, rows) = self
            .store
            .records_vectors(tenant, novel, model)
            .await
            .map_err(index_err)?;
        let rows = rows
            .into_iter()
            .filter_map(|(id, kind, seq, v)| {
                Some((id.0, MemoryKind::parse(&kind)?, seq, from_bytes(&v?)?))
            })
            .collect();
        Ok(self
            .vectors
            .put(tenant, novel, model, NovelVectors::new(version, rows)))
    }

    async fn keywords(
        &self,
        tenant: TenantId,
        novel: NovelId,
        version: i64,
    ) -> Result<Arc<NovelKeywords>, IndexError> {
        if let Some(k) = self.keywords.get(tenant, novel, "", version) {
            return Ok(k);
        }
        let (version, rows) = self
            .store
            .records_keywords(tenant, novel)
            .await
            .map_err(index_err)?;
        let rows = rows
            .into_iter()
            .filter_map(|(id, kind, seq, words)| {
                Some((id.0, MemoryKind::parse(&kind)?, seq, words))
            })
            .collect();
        Ok(self
            .keywords
            .put(tenant, novel, "", NovelKeywords::new(version, rows)))
    }

    async fn dense(
        &self,
        q: &IndexQuery,
        version: i64,
        n: usize,
    ) -> Result<Vec<(Uuid, f64)>, IndexError> {
        let (Some(vector), Some(model)) = (&q.vector, &q.model) else {
            return Ok(Vec::new());
        };
        let vectors = self.vectors(q.tenant, q.novel, model, version).await?;
        Ok(vectors
            .search(vector, q.before_seq, &q.kinds, n)
            .into_iter()
            .map(|(id, s)| (id, f64::from(s)))
            .collect())
    }

    async fn keyword(
        &self,
        q: &IndexQuery,
        version: i64,
        n: usize,
    ) -> Result<Vec<(Uuid, f64)>, IndexError> {
        let mut words = segment::distinct_words(&q.text);
        words.truncate(MAX_QUERY_WORDS);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let keywords = self.keywords(q.tenant, q.novel, version).await?;
        Ok(keywords.search(&words, q.before_seq, &q.kinds, n))
    }

    /// The search at memory version `version`: the ids from the index held here (loaded
    /// at that version, or newer), their records read back.
    async fn search_at(&self, q: &IndexQuery, version: i64) -> Result<Vec<IndexHit>, IndexError> {
        let ranked = match q.mode {
            RecallMode::Keyword => self.keyword(q, version, q.limit).await?,
            RecallMode::Dense => self.dense(q, version, q.limit).await?,
            RecallMode::Hybrid => {
                let n = candidates(q.limit);
                let dense = self.dense(q, version, n).await?;
                let keyword = self.keyword(q, version, n).await?;
                let dense_ids: Vec<Uuid> = dense.iter().map(|d| d.0).collect();
                let keyword_ids: Vec<Uuid> = keyword.iter().map(|k| k.0).collect();
                fuse(&[&dense_ids, &keyword_ids], RRF_K, q.limit)
            }
        };
        self.hits(q.tenant, ranked).await
    }

    /// The hits for ranked ids: their records read back, in rank order.
    async fn hits(
        &self,
        tenant: TenantId,
        ranked: Vec<(Uuid, f64)>,
    ) -> Result<Vec<IndexHit>, IndexError> {
        let ids: Vec<Uuid> = ranked.iter().map(|r| r.0).collect();
        let mut metas = self.metas(tenant, &ids).await?;
        ranked
            .into_iter()
            .filter_map(|(id, score)| metas.remove(&id).map(|m| (m, score)))
            .map(|(m, score)| {
                Ok(IndexHit {
                    record: to_record(m)?,
                    score,
                })
            })
            .collect()
    }

    async fn metas(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, RecordMeta>, IndexError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .store
            .records_by_ids(tenant, ids)
            .await
            .map_err(index_err)?;
        Ok(rows.into_iter().map(|m| (m.id.0, m)).collect())
    }
}

fn row(r: &MemoryRecord) -> RecordRow {
    RecordRow {
        id: DbUuid(r.id),
        tenant_id: r.tenant_id.db(),
        novel_id: r.novel_id.db(),
        kind: r.kind.as_str().to_owned(),
        source_id: DbUuid(r.source_id),
        ordinal: r.ordinal,
        chapter_id: r.chapter_id.map(|c| c.db()),
        chapter_seq: r.chapter_seq,
        chapter_version: r.chapter_version,
        text: r.text.clone(),
        start_offset: r.start_offset,
        end_offset: r.end_offset,
        keywords: segment::words(&r.text).join(" "),
        model: r.vector.as_ref().and(r.model.clone()),
        vector: r.vector.as_deref().map(to_bytes),
        created_at: DbTime(now()),
    }
}

#[async_trait]
impl MemoryIndex for SqlMemoryIndex {
    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel, source = %source, n = records.len()))]
    async fn replace(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
        kinds: &[MemoryKind],
        records: Vec<MemoryRecord>,
    ) -> Result<(), IndexError> {
        if let Some(r) = records.iter().find(|r| {
            r.tenant_id != tenant
                || r.novel_id != novel
                || r.source_id != source
                || !kinds.contains(&r.kind)
        }) {
            return Err(IndexError::Invalid(format!(
                "record {} is not of source {source} and kinds {kinds:?}",
                r.id
            )));
        }
        let rows: Vec<RecordRow> = records.iter().map(row).collect();
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        self.store
            .records_replace(tenant, novel, source, &kinds, &rows)
            .await
            .map_err(index_err)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel, source = %source))]
    async fn forget(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
    ) -> Result<(), IndexError> {
        self.store
            .records_forget(tenant, novel, Some(source), None)
            .await
            .map_err(index_err)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel, chapter = %chapter))]
    async fn forget_chapter(
        &self,
        tenant: TenantId,
        novel: NovelId,
        chapter: ChapterId,
    ) -> Result<(), IndexError> {
        self.store
            .records_forget(tenant, novel, None, Some(chapter))
            .await
            .map_err(index_err)
    }

    #[tracing::instrument(skip_all, fields(tenant = %q.tenant, novel = %q.novel, mode = %q.mode))]
    async fn search(&self, q: &IndexQuery) -> Result<Vec<IndexHit>, IndexError> {
        if q.mode == RecallMode::Dense && q.vector.is_none() {
            return Err(IndexError::Invalid(
                "a DENSE search needs a query vector".into(),
            ));
        }
        let mut version = self.version(q.tenant, q.novel).await?;
        // Record ids are stable (a chapter's first passage keeps its id from version to
        // version), and the hits are read back from the database after the search ran
        // on the index held here. A write committed in between would pair what the
        // index held (the old words, the old vector) with the new record: the search is
        // run again on the new version. The version moves in the transaction that
        // writes the records, so a record read back new means the version read after it
        // is new too.
        for _ in 0..MAX_SEARCH_ATTEMPTS {
            let hits = self.search_at(q, version).await?;
            let now = self.version(q.tenant, q.novel).await?;
            if now == version {
                return Ok(hits);
            }
            version = now;
        }
        self.search_at(q, version).await
    }
}
