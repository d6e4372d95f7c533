//! Contexts of the memory index suite: a fresh database with a tenant and a novel (the
//! SQL index keeps records there; Qdrant gets a collection of its own), and helpers to
//! build records and queries.

use std::sync::Arc;
use znovel_domain::ids::{ChapterId, NovelId, TenantId};
use znovel_domain::model::{MemoryKind, MemoryRecord, RecallMode};
use znovel_domain::ports::{IndexHit, IndexQuery, MemoryIndex, NovelRepository, TenantRepository};
use znovel_domain::services::now;
use znovel_infra::memory::{MirroredMemoryIndex, QdrantConfig, QdrantMemoryIndex, SqlMemoryIndex};
use znovel_infra::testing::TestDatabase;
use znovel_infra::testing::qdrant::TestQdrant;
use znovel_infra::{DbBackend, SqlStore};

/// The model the suite's vectors claim to come from.
pub const MODEL: &str = "contract-model";

/// Dimensions of the suite's vectors ([`fake_vector`]).
pub const DIMS: usize = 64;

pub struct Ctx {
    pub index: Arc<dyn MemoryIndex>,
    pub tenant: TenantId,
    pub novel: NovelId,
    store: SqlStore,
    _db: Option<TestDatabase>,
    _qdrant: Option<TestQdrant>,
}

async fn seed(store: &SqlStore, slug: &str) -> (TenantId, NovelId) {
    let t = now();
    let tenant = znovel_domain::model::Tenant {
        id: TenantId::new(),
        name: slug.into(),
        slug: format!("{slug}-{}", uuid::Uuid::new_v4().simple()),
        status: znovel_domain::model::TenantStatus::Active,
        quota: Default::default(),
        settings: serde_json::json!({}),
        created_at: t,
        updated_at: t,
    };
    store.insert_tenant(&tenant).await.unwrap();
    let novel = novel_of(tenant.id);
    store.insert_novel(&novel).await.unwrap();
    (tenant.id, novel.id)
}

fn novel_of(tenant: TenantId) -> znovel_domain::model::Novel {
    let t = now();
    znovel_domain::model::Novel {
        id: NovelId::new(),
        tenant_id: tenant,
        title: "Contract".into(),
        description: String::new(),
        genre: String::new(),
        language: "en".into(),
        target_word_count: None,
        style_guide: String::new(),
        world_settings: serde_json::json!({}),
        time_system: String::new(),
        status: znovel_domain::model::NovelStatus::Draft,
        word_count: 0,
        created_at: t,
        updated_at: t,
    }
}

impl Ctx {
    /// `index` over `store`, with a tenant and a novel created in `store`.
    pub async fn seeded(store: SqlStore, index: Arc<dyn MemoryIndex>) -> Ctx {
        let (tenant, novel) = seed(&store, "ours").await;
        Ctx {
            index,
            tenant,
            novel,
            store,
            _db: None,
            _qdrant: None,
        }
    }

    /// The SQL index on a fresh database of `backend`.
    pub async fn sql(backend: DbBackend) -> Ctx {
        let db = TestDatabase::new(backend).await.expect("test database");
        let store = db.store().await.expect("migrated store");
        let index = Arc::new(SqlMemoryIndex::new(store.clone(), 64 << 20));
        Ctx {
            _db: Some(db),
            ..Ctx::seeded(store, index).await
        }
    }

    /// The Qdrant index on a server of its own (tenants and novels are still created
    /// in a SQLite database); `None` when there is no Qdrant binary (said loudly).
    pub async fn qdrant() -> Option<Ctx> {
        let server = TestQdrant::start().expect("qdrant server")?;
        let db = TestDatabase::new(DbBackend::Sqlite)
            .await
            .expect("test database");
        let store = db.store().await.expect("migrated store");
        let index = QdrantMemoryIndex::new(&qdrant_config(&server.url)).expect("qdrant client");
        Some(Ctx {
            _db: Some(db),
            _qdrant: Some(server),
            ..Ctx::seeded(store, Arc::new(index)).await
        })
    }

    /// The PostgreSQL index mirrored to Qdrant (what `QDRANT_URL` sets up); `None` when
    /// there is no Qdrant binary.
    pub async fn mirrored() -> Option<Ctx> {
        let server = TestQdrant::start().expect("qdrant server")?;
        let db = TestDatabase::new(DbBackend::Postgres)
            .await
            .expect("test database");
        let store = db.store().await.expect("migrated store");
        let qdrant = QdrantMemoryIndex::new(&qdrant_config(&server.url)).expect("qdrant client");
        let index = MirroredMemoryIndex::new(
            SqlMemoryIndex::new(store.clone(), 64 << 20),
            Arc::new(qdrant),
        );
        Some(Ctx {
            _db: Some(db),
            _qdrant: Some(server),
            ..Ctx::seeded(store, Arc::new(index)).await
        })
    }

    /// Another tenant with a novel of its own.
    pub async fn other_tenant(&self) -> (TenantId, NovelId) {
        seed(&self.store, "theirs").await
    }

    /// Another novel of our tenant.
    pub async fn other_novel(&self) -> NovelId {
        let n = novel_of(self.tenant);
        self.store.insert_novel(&n).await.unwrap();
        n.id
    }

    /// A KEYWORD query over our novel.
    pub fn query(&self, text: &str) -> IndexQuery {
        IndexQuery {
            tenant: self.tenant,
            novel: self.novel,
            before_seq: None,
            kinds: Vec::new(),
            text: text.to_owned(),
            vector: None,
            model: Some(MODEL.to_owned()),
            mode: RecallMode::Keyword,
            limit: 10,
        }
    }

    /// Searches our novel by keywords.
    pub async fn keyword(&self, text: &str) -> Vec<IndexHit> {
        self.index.search(&self.query(text)).await.unwrap()
    }
}

/// The suite's Qdrant configuration: [`DIMS`]-dimensional vectors, a collection of its
/// own.
pub fn qdrant_config(url: &str) -> QdrantConfig {
    QdrantConfig {
        collection: format!("contract_{}", uuid::Uuid::new_v4().simple()),
        ..QdrantConfig::new(url, DIMS)
    }
}

/// A record of our kind of test.
pub fn record(
    tenant: TenantId,
    novel: NovelId,
    kind: MemoryKind,
    source: uuid::Uuid,
    ordinal: i32,
    seq: Option<i32>,
    text: &str,
) -> MemoryRecord {
    MemoryRecord {
        id: MemoryRecord::stable_id(source, kind, ordinal),
        tenant_id: tenant,
        novel_id: novel,
        kind,
        source_id: source,
        ordinal,
        chapter_id: seq.map(|_| ChapterId::from_uuid(source)),
        chapter_seq: seq,
        chapter_version: Some(1),
        text: text.to_owned(),
        start_offset: Some(0),
        end_offset: Some(text.chars().count() as i32),
        vector: None,
        model: Some(MODEL.to_owned()),
    }
}

/// A unit vector standing for the meaning of `words`: each word adds to two of 64
/// dimensions (by a stable hash), so texts sharing words are similar.
pub fn fake_vector(words: &str) -> Vec<f32> {
    let mut v = vec![0.01f32; DIMS];
    for w in words.split_whitespace() {
        let h = w.bytes().fold(2166136261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16777619)
        });
        v[h as usize % DIMS] += 1.0;
        v[(h as usize / DIMS) % DIMS] += 0.5;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}
