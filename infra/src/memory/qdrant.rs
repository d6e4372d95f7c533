//! The memory index in Qdrant (`qdrant-client` over gRPC): one collection per deployment
//! holding every tenant's records as points (id = the record's stable id) with a named
//! dense vector (`dense`, cosine) and a named sparse vector (`bm25`, BM25 term weights of
//! the [`super::segment`] words, IDF computed by Qdrant), and the record in the payload.
//! The tenant is a payload filter (`is_tenant` keyword index) carried by every request;
//! HYBRID prefetches both vectors and fuses them server-side by reciprocal rank, with the
//! story-time filter in the same query.

use super::sparse::{self, Sparse};
use super::{RRF_K, candidates};
use async_trait::async_trait;
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, IntegerIndexParamsBuilder, KeywordIndexParamsBuilder, Modifier,
    NamedVectors, PointId, PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder, Range,
    Rrf, ScoredPoint, SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPointsBuilder,
    Value, Vector, VectorInput, VectorParamsBuilder, VectorsConfigBuilder, point_id, value,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;
use znovel_domain::ids::{ChapterId, NovelId, TenantId};
use znovel_domain::model::{MemoryKind, MemoryRecord, RecallMode};
use znovel_domain::ports::{IndexError, IndexHit, IndexQuery, MemoryIndex};

/// The dense vector's name in the collection.
const DENSE: &str = "dense";
/// The sparse vector's name in the collection.
const BM25: &str = "bm25";
/// Points written per upsert request.
const UPSERT_BATCH: usize = 256;

/// Where the index lives and what its dense vectors are.
#[derive(Debug, Clone)]
pub struct QdrantConfig {
    /// The gRPC URL, e.g. `http://127.0.0.1:6334`.
    pub url: String,
    /// The API key, when the server wants one.
    pub api_key: Option<String>,
    /// The collection (one per deployment).
    pub collection: String,
    /// Dimensions of the dense vectors (the embedder's).
    pub dims: usize,
    /// How long one request may take before the index counts as unavailable.
    pub timeout: Duration,
}

impl QdrantConfig {
    /// A configuration with the default collection name and a 5 s timeout.
    pub fn new(url: impl Into<String>, dims: usize) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            collection: "znovel-memory".into(),
            dims,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The Qdrant memory index. Cheap to share behind an `Arc`; the collection and its
/// payload indexes are created on first use when absent.
pub struct QdrantMemoryIndex {
    client: Qdrant,
    collection: String,
    dims: usize,
    ready: AtomicBool,
}

impl std::fmt::Debug for QdrantMemoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantMemoryIndex")
            .field("collection", &self.collection)
            .field("dims", &self.dims)
            .finish()
    }
}

/// Connection failures and time-outs are `Unavailable` (retry later); the rest is
/// `Internal`.
fn index_err(e: QdrantError) -> IndexError {
    use tonic::Code;
    match &e {
        QdrantError::ResponseError { status } => match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Unknown => IndexError::Unavailable(e.to_string()),
            Code::InvalidArgument => IndexError::Invalid(e.to_string()),
            // The client reports a refused or broken connection as INTERNAL "Failed to
            // connect …" (a tonic transport error), not UNAVAILABLE.
            Code::Internal if is_transport_failure(status) => {
                IndexError::Unavailable(e.to_string())
            }
            _ => IndexError::Internal(e.to_string()),
        },
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => {
            IndexError::Unavailable(e.to_string())
        }
        _ => IndexError::Internal(e.to_string()),
    }
}

/// Whether a status is the client's own report of a connection it could not make or keep.
fn is_transport_failure(status: &tonic::Status) -> bool {
    let m = status.message();
    m.contains("Failed to connect") || m.contains("transport error")
}

fn keyword(key: &str, value: impl ToString) -> Condition {
    Condition::matches(key, value.to_string())
}

impl QdrantMemoryIndex {
    /// A client of the index (no request is made yet: Qdrant may be down).
    pub fn new(config: &QdrantConfig) -> Result<Self, IndexError> {
        let mut builder = Qdrant::from_url(&config.url)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .skip_compatibility_check();
        if let Some(key) = &config.api_key {
            builder = builder.api_key(key.clone());
        }
        let client = builder
            .build()
            .map_err(|e| IndexError::Invalid(format!("Qdrant client: {e}")))?;
        super::segment::warm_up();
        Ok(Self {
            client,
            collection: config.collection.clone(),
            dims: config.dims,
            ready: AtomicBool::new(false),
        })
    }

    /// Creates the collection and its payload indexes when absent (idempotent; done once
    /// per process on first use).
    pub async fn ensure_collection(&self) -> Result<(), IndexError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let c = &self.collection;
        if !self.client.collection_exists(c).await.map_err(index_err)? {
            let mut dense = VectorsConfigBuilder::default();
            dense.add_named_vector_params(
                DENSE,
                VectorParamsBuilder::new(self.dims as u64, Distance::Cosine),
            );
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(
                BM25,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            let created = self
                .client
                .create_collection(
                    CreateCollectionBuilder::new(c)
                        .vectors_config(dense)
                        .sparse_vectors_config(sparse),
                )
                .await;
            // Another process may have created it meanwhile.
            if let Err(e) = created
                && !self.client.collection_exists(c).await.map_err(index_err)?
            {
                return Err(index_err(e));
            }
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(c, "tenant", FieldType::Keyword)
                        .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                        .wait(true),
                )
                .await
                .map_err(index_err)?;
            for key in ["novel", "kind", "source", "chapter_id", "model"] {
                self.client
                    .create_field_index(
                        CreateFieldIndexCollectionBuilder::new(c, key, FieldType::Keyword)
                            .wait(true),
                    )
                    .await
                    .map_err(index_err)?;
            }
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(c, "chapter_seq", FieldType::Integer)
                        .field_index_params(
                            IntegerIndexParamsBuilder::default()
                                .lookup(false)
                                .range(true),
                        )
                        .wait(true),
                )
                .await
                .map_err(index_err)?;
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether Qdrant answers now.
    pub async fn healthy(&self) -> bool {
        self.client.health_check().await.is_ok()
    }

    /// Replaces everything of one novel by `records` (what `znovel reindex` does from the
    /// database, the record).
    pub async fn rebuild_novel(
        &self,
        tenant: TenantId,
        novel: NovelId,
        records: Vec<MemoryRecord>,
    ) -> Result<(), IndexError> {
        self.ensure_collection().await?;
        self.delete(Filter::must([
            keyword("tenant", tenant),
            keyword("novel", novel),
        ]))
        .await?;
        self.upsert(records).await
    }

    async fn delete(&self, filter: Filter) -> Result<(), IndexError> {
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(index_err)?;
        Ok(())
    }

    async fn upsert(&self, records: Vec<MemoryRecord>) -> Result<(), IndexError> {
        let points: Vec<PointStruct> = records.iter().map(|r| self.point(r)).collect();
        for batch in points.chunks(UPSERT_BATCH) {
            self.client
                .upsert_points(
                    UpsertPointsBuilder::new(&self.collection, batch.to_vec()).wait(true),
                )
                .await
                .map_err(index_err)?;
        }
        Ok(())
    }

    fn point(&self, r: &MemoryRecord) -> PointStruct {
        let mut vectors = NamedVectors::default();
        let words = sparse::document(&r.text);
        if !words.is_empty() {
            vectors = vectors.add_vector(BM25, Vector::new_sparse(words.indices, words.values));
        }
        match &r.vector {
            Some(v) if v.len() == self.dims => {
                vectors = vectors.add_vector(DENSE, Vector::new_dense(v.clone()));
            }
            Some(v) => tracing::warn!(
                record = %r.id,
                dims = v.len(),
                expected = self.dims,
                "a record's vector has other dimensions than the collection: kept for keywords only"
            ),
            None => {}
        }
        let mut payload = Payload::new();
        payload.insert("tenant", r.tenant_id.to_string());
        payload.insert("novel", r.novel_id.to_string());
        payload.insert("kind", r.kind.as_str().to_owned());
        payload.insert("source", r.source_id.to_string());
        payload.insert("ordinal", i64::from(r.ordinal));
        payload.insert("text", r.text.clone());
        if let Some(c) = r.chapter_id {
            payload.insert("chapter_id", c.to_string());
        }
        for (key, value) in [
            ("chapter_seq", r.chapter_seq),
            ("chapter_version", r.chapter_version),
            ("start_offset", r.start_offset),
            ("end_offset", r.end_offset),
        ] {
            if let Some(v) = value {
                payload.insert(key, i64::from(v));
            }
        }
        if r.vector.is_some()
            && let Some(m) = &r.model
        {
            payload.insert("model", m.clone());
        }
        PointStruct::new(r.id.to_string(), vectors, payload)
    }

    /// The filter of a query: tenant and novel always, then kinds and story time.
    fn filter(q: &IndexQuery, model: Option<&str>) -> Filter {
        let mut must = vec![keyword("tenant", q.tenant), keyword("novel", q.novel)];
        if !q.kinds.is_empty() {
            let kinds: Vec<String> = q.kinds.iter().map(|k| k.as_str().to_owned()).collect();
            must.push(Condition::matches("kind", kinds));
        }
        if let Some(before) = q.before_seq {
            must.push(
                Filter::should([
                    Condition::range(
                        "chapter_seq",
                        Range {
                            lt: Some(f64::from(before)),
                            ..Default::default()
                        },
                    ),
                    Condition::is_empty("chapter_seq"),
                ])
                .into(),
            );
        }
        if let Some(m) = model {
            must.push(keyword("model", m));
        }
        Filter::must(must)
    }

    fn dense_input(&self, q: &IndexQuery) -> Result<Option<(Vec<f32>, String)>, IndexError> {
        let (Some(v), Some(model)) = (&q.vector, &q.model) else {
            return Ok(None);
        };
        if v.len() != self.dims {
            return Err(IndexError::Invalid(format!(
                "the query vector has {} dimensions, the index {}",
                v.len(),
                self.dims
            )));
        }
        Ok(Some((v.clone(), model.clone())))
    }

    async fn query(&self, request: QueryPointsBuilder) -> Result<Vec<IndexHit>, IndexError> {
        let response = self
            .client
            .query(request.with_payload(true))
            .await
            .map_err(index_err)?;
        response.result.into_iter().map(hit).collect()
    }
}

fn get_str<'a>(p: &'a HashMap<String, Value>, key: &str) -> Option<&'a str> {
    match p.get(key)?.kind.as_ref()? {
        value::Kind::StringValue(s) => Some(s.as_str()),
        _ => None,
    }
}

fn get_int(p: &HashMap<String, Value>, key: &str) -> Option<i32> {
    match p.get(key)?.kind.as_ref()? {
        value::Kind::IntegerValue(i) => i32::try_from(*i).ok(),
        _ => None,
    }
}

fn get_uuid(p: &HashMap<String, Value>, key: &str) -> Result<Uuid, IndexError> {
    get_str(p, key)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| IndexError::Internal(format!("a point without a valid {key:?}")))
}

/// A point read back, as a hit.
fn hit(point: ScoredPoint) -> Result<IndexHit, IndexError> {
    let id = match point.id.and_then(|id| id.point_id_options) {
        Some(point_id::PointIdOptions::Uuid(s)) => Uuid::parse_str(&s).ok(),
        _ => None,
    }
    .ok_or_else(|| IndexError::Internal("a point without a UUID id".into()))?;
    let p = &point.payload;
    let kind = get_str(p, "kind")
        .and_then(MemoryKind::parse)
        .ok_or_else(|| IndexError::Internal(format!("point {id}: no valid kind")))?;
    Ok(IndexHit {
        record: MemoryRecord {
            id,
            tenant_id: TenantId::from_uuid(get_uuid(p, "tenant")?),
            novel_id: NovelId::from_uuid(get_uuid(p, "novel")?),
            kind,
            source_id: get_uuid(p, "source")?,
            ordinal: get_int(p, "ordinal").unwrap_or_default(),
            chapter_id: get_uuid(p, "chapter_id").ok().map(ChapterId::from_uuid),
            chapter_seq: get_int(p, "chapter_seq"),
            chapter_version: get_int(p, "chapter_version"),
            text: get_str(p, "text").unwrap_or_default().to_owned(),
            start_offset: get_int(p, "start_offset"),
            end_offset: get_int(p, "end_offset"),
            vector: None,
            model: get_str(p, "model").map(str::to_owned),
        },
        score: f64::from(point.score),
    })
}

fn sparse_input(s: Sparse) -> VectorInput {
    VectorInput::new_sparse(s.indices, s.values)
}

#[async_trait]
impl MemoryIndex for QdrantMemoryIndex {
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
        if kinds.is_empty() {
            return Ok(());
        }
        self.ensure_collection().await?;
        // Upsert first (ids are stable), then delete what the new set no longer has: a
        // search never sees the source without records in between.
        let keep: Vec<PointId> = records.iter().map(|r| r.id.to_string().into()).collect();
        self.upsert(records).await?;
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
        let mut stale = Filter::must([
            keyword("tenant", tenant),
            keyword("novel", novel),
            keyword("source", source),
            Condition::matches("kind", kinds),
        ]);
        if !keep.is_empty() {
            stale.must_not = vec![Condition::has_id(keep)];
        }
        self.delete(stale).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel, source = %source))]
    async fn forget(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
    ) -> Result<(), IndexError> {
        self.ensure_collection().await?;
        self.delete(Filter::must([
            keyword("tenant", tenant),
            keyword("novel", novel),
            keyword("source", source),
        ]))
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel, chapter = %chapter))]
    async fn forget_chapter(
        &self,
        tenant: TenantId,
        novel: NovelId,
        chapter: ChapterId,
    ) -> Result<(), IndexError> {
        self.ensure_collection().await?;
        self.delete(Filter::must([
            keyword("tenant", tenant),
            keyword("novel", novel),
            keyword("chapter_id", chapter),
        ]))
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %q.tenant, novel = %q.novel, mode = %q.mode))]
    async fn search(&self, q: &IndexQuery) -> Result<Vec<IndexHit>, IndexError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let dense = self.dense_input(q)?;
        if q.mode == RecallMode::Dense && q.vector.is_none() {
            return Err(IndexError::Invalid(
                "a DENSE search needs a query vector".into(),
            ));
        }
        self.ensure_collection().await?;
        let words = sparse::query(&q.text);
        let limit = q.limit as u64;
        let base = QueryPointsBuilder::new(&self.collection).limit(limit);
        match (q.mode, dense) {
            (RecallMode::Dense, None) => Ok(Vec::new()),
            (RecallMode::Dense, Some((v, model))) => {
                self.query(
                    base.query(Query::new_nearest(v))
                        .using(DENSE)
                        .filter(Self::filter(q, Some(&model))),
                )
                .await
            }
            (RecallMode::Keyword, _) | (RecallMode::Hybrid, None) => {
                if words.is_empty() {
                    return Ok(Vec::new());
                }
                self.query(
                    base.query(Query::new_nearest(sparse_input(words)))
                        .using(BM25)
                        .filter(Self::filter(q, None)),
                )
                .await
            }
            (RecallMode::Hybrid, Some((v, model))) => {
                let n = candidates(q.limit) as u64;
                let mut request = base.add_prefetch(
                    PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(v))
                        .using(DENSE)
                        .filter(Self::filter(q, Some(&model)))
                        .limit(n),
                );
                if !words.is_empty() {
                    request = request.add_prefetch(
                        PrefetchQueryBuilder::default()
                            .query(Query::new_nearest(sparse_input(words)))
                            .using(BM25)
                            .filter(Self::filter(q, None))
                            .limit(n),
                    );
                }
                self.query(request.query(Query::new_rrf(Rrf {
                    k: Some(RRF_K as u32),
                    ..Default::default()
                })))
                .await
            }
        }
    }
}
