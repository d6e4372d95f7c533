//! Test context, builders of fully-populated model values, and raw-SQL helpers (the raw
//! connection is the database owner, so it bypasses row-level security).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;
use znovel_domain::auth::{Role, Scope};
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::services::now;
use znovel_infra::testing::TestDatabase;
use znovel_infra::{DbBackend, SqlStore};

/// A fresh, migrated database and a store on it.
pub struct Ctx {
    pub store: SqlStore,
    pub db: TestDatabase,
}

impl Ctx {
    pub async fn new(backend: DbBackend) -> Ctx {
        let db = TestDatabase::new(backend).await.expect("test database");
        let store = db.store().await.expect("migrated store");
        Ctx { store, db }
    }

    /// Runs SQL on a raw owner connection (no row-level security).
    pub async fn exec(&self, sql: &str) {
        match self.db.backend {
            DbBackend::Postgres => {
                let mut c = AsyncPgConnection::establish(&self.db.url).await.unwrap();
                c.batch_execute(sql).await.unwrap();
            }
            DbBackend::Sqlite => {
                let mut c = sqlite_raw(&self.db);
                diesel::connection::SimpleConnection::batch_execute(&mut c, sql).unwrap();
            }
        }
    }

    /// `SELECT COUNT(*) AS n FROM …` on a raw owner connection.
    pub async fn count(&self, from_where: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let q = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {from_where}"));
        match self.db.backend {
            DbBackend::Postgres => {
                let mut c = AsyncPgConnection::establish(&self.db.url).await.unwrap();
                q.get_result::<N>(&mut c).await.unwrap().n
            }
            DbBackend::Sqlite => {
                let mut c = sqlite_raw(&self.db);
                diesel::RunQueryDsl::get_result::<N>(q, &mut c).unwrap().n
            }
        }
    }
}

/// A write transaction left open on a raw owner connection (see [`Ctx::hold_write`]).
pub enum HeldWrite {
    Postgres(Box<AsyncPgConnection>),
    Sqlite(diesel::SqliteConnection),
}

impl HeldWrite {
    /// Rolls the transaction back.
    pub async fn rollback(self) {
        match self {
            Self::Postgres(mut c) => c.batch_execute("ROLLBACK").await.unwrap(),
            Self::Sqlite(mut c) => {
                diesel::connection::SimpleConnection::batch_execute(&mut c, "ROLLBACK").unwrap()
            }
        }
    }
}

impl Ctx {
    /// Opens a write transaction on a raw owner connection, runs `sql` in it and leaves it
    /// open (on SQLite it holds the database's write lock) until the result is rolled back.
    pub async fn hold_write(&self, sql: &str) -> HeldWrite {
        match self.db.backend {
            DbBackend::Postgres => {
                let mut c = AsyncPgConnection::establish(&self.db.url).await.unwrap();
                c.batch_execute(&format!("BEGIN; {sql}")).await.unwrap();
                HeldWrite::Postgres(Box::new(c))
            }
            DbBackend::Sqlite => {
                let mut c = sqlite_raw(&self.db);
                diesel::connection::SimpleConnection::batch_execute(
                    &mut c,
                    &format!("BEGIN IMMEDIATE; {sql}"),
                )
                .unwrap();
                HeldWrite::Sqlite(c)
            }
        }
    }
}

fn sqlite_raw(db: &TestDatabase) -> diesel::SqliteConnection {
    let path = db.sqlite_file().unwrap();
    let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut c,
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
    )
    .unwrap();
    c
}

pub fn page(first: i64, after: Option<uuid::Uuid>) -> PageRequest {
    PageRequest::new(Some(first), after).unwrap()
}

/// A time `secs` seconds from now, microsecond precision.
pub fn at(secs: i64) -> DateTime<Utc> {
    now() + TimeDelta::seconds(secs)
}

/// Follows `next` through every page; asserts that only the last has no next page.
pub async fn all_pages<T, F, Fut>(
    first: i64,
    id: impl Fn(&T) -> uuid::Uuid,
    mut next: F,
) -> Vec<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Page<T>>,
{
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let p = next(page(first, after)).await;
        assert!(p.items.len() as i64 <= first);
        let more = p.has_next_page;
        after = p.items.last().map(&id);
        pages.push(p.items);
        if !more {
            return pages;
        }
        assert!(pages.len() < 100, "runaway pagination");
    }
}

pub fn tenant(slug: &str) -> Tenant {
    let t = now();
    Tenant {
        id: TenantId::new(),
        name: format!("Tenant {slug}"),
        slug: slug.to_owned(),
        status: TenantStatus::Active,
        quota: Quota {
            max_novels: 7,
            max_chapters_per_novel: 70,
            max_tokens_per_day: 7_000,
            max_file_bytes: 70_000,
        },
        settings: json!({"model": "m-1", "flags": {"validation": "closed"}, "n": 1.5}),
        created_at: t,
        updated_at: t,
    }
}

pub fn user(tenant: TenantId, email: &str) -> User {
    let t = now();
    User {
        id: UserId::new(),
        tenant_id: tenant,
        email: email.to_owned(),
        display_name: "Ada".into(),
        role: Role::Member,
        created_at: t,
        updated_at: t,
    }
}

pub fn api_key(tenant: TenantId, user: UserId, hash: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        user_id: user,
        name: "ci".into(),
        prefix: "zk_abc".into(),
        secret_hash: hash.to_owned(),
        scopes: vec![Scope::Read, Scope::Write],
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    }
}

pub fn novel(tenant: TenantId, title: &str) -> Novel {
    let t = now();
    Novel {
        id: NovelId::new(),
        tenant_id: tenant,
        title: title.to_owned(),
        description: "A premise".into(),
        genre: "xianxia".into(),
        language: "zh".into(),
        target_word_count: Some(1_000_000),
        style_guide: "terse".into(),
        world_settings: json!({"magic": {"tiers": ["qi", "core"]}, "tech": null}),
        time_system: "lunar years".into(),
        status: NovelStatus::Writing,
        word_count: 0,
        created_at: t,
        updated_at: t,
    }
}

pub fn volume(n: &Novel, seq: i32) -> Volume {
    let t = now();
    Volume {
        id: VolumeId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        seq,
        title: format!("Volume {seq}"),
        summary: "part".into(),
        created_at: t,
        updated_at: t,
    }
}

/// A chapter with content of `words` words (version 1 when it has content).
pub fn chapter(n: &Novel, seq: i32, words: i64) -> Chapter {
    let t = now();
    let content = vec!["word"; words as usize].join(" ");
    Chapter {
        id: ChapterId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        volume_id: None,
        seq,
        title: format!("Chapter {seq}"),
        outline: "beats".into(),
        content,
        summary: "what happens".into(),
        summary_origin: Origin::Author,
        story_time_start: Some(10 * i64::from(seq)),
        story_time_end: Some(10 * i64::from(seq) + 5),
        word_count: words,
        target_word_count: Some(3000),
        status: ChapterStatus::Draft,
        version: i32::from(words > 0),
        created_at: t,
        updated_at: t,
    }
}

/// The revision recording `c`'s current content.
pub fn revision(c: &Chapter, by: Option<UserId>) -> ChapterRevision {
    ChapterRevision {
        id: RevisionId::new(),
        tenant_id: c.tenant_id,
        chapter_id: c.id,
        version: c.version,
        content: c.content.clone(),
        word_count: c.word_count,
        source: RevisionSource::Author,
        created_by: by,
        job_id: None,
        note: format!("v{}", c.version),
        created_at: c.updated_at,
    }
}

/// `c` with new content of `words` words at the next version, and its revision.
pub fn next_content(c: &Chapter, words: i64) -> (Chapter, ChapterRevision) {
    let mut c = c.clone();
    c.version += 1;
    c.content = vec!["more"; words as usize].join(" ");
    c.word_count = words;
    c.status = ChapterStatus::Review;
    c.updated_at = now();
    let r = revision(&c, None);
    (c, r)
}

pub fn entity(n: &Novel, name: &str, kind: EntityKind) -> Entity {
    let t = now();
    Entity {
        id: EntityId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        name: name.to_owned(),
        aliases: vec![format!("{name} the Bold"), "小明".into()],
        kind,
        description: "someone".into(),
        attributes: json!({"age": 17, "eyes": "grey"}),
        importance: 80,
        current_state: "alive".into(),
        first_chapter_seq: Some(1),
        last_chapter_seq: Some(3),
        appearance_count: 2,
        provenance: Provenance::default(),
        created_at: t,
        updated_at: t,
    }
}

pub fn relation(n: &Novel, source: EntityId, target: EntityId, kind: &str) -> Relation {
    let t = now();
    Relation {
        id: RelationId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        source_id: source,
        target_id: target,
        kind: kind.to_owned(),
        strength: 0.75,
        description: "sworn".into(),
        since_chapter_id: None,
        provenance: Provenance::default(),
        created_at: t,
        updated_at: t,
    }
}

pub fn event(n: &Novel, start: i64, involved: Vec<EntityId>) -> Event {
    let t = now();
    Event {
        id: EventId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        chapter_id: None,
        title: format!("at {start}"),
        summary: "things happen".into(),
        story_time_start: start,
        story_time_end: Some(start + 2),
        location_id: None,
        involved,
        importance: 50,
        provenance: Provenance::default(),
        created_at: t,
        updated_at: t,
    }
}

pub fn thread(n: &Novel, title: &str, status: ForeshadowingStatus) -> Foreshadowing {
    let t = now();
    Foreshadowing {
        id: ForeshadowingId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        title: title.to_owned(),
        description: "a locked box".into(),
        planted_chapter_id: None,
        expected_payoff: "it opens".into(),
        resolved_chapter_id: None,
        status,
        provenance: Provenance::default(),
        created_at: t,
        updated_at: t,
    }
}

/// Inserts a tenant with a novel.
pub async fn tenant_with_novel(store: &SqlStore, slug: &str) -> (Tenant, Novel) {
    use znovel_domain::ports::{NovelRepository, TenantRepository};
    let t = tenant(slug);
    store.insert_tenant(&t).await.unwrap();
    let n = novel(t.id, "The Long Road");
    store.insert_novel(&n).await.unwrap();
    (t, n)
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, znovel_domain::StoreError>) {
    assert!(
        matches!(r, Err(znovel_domain::StoreError::Conflict(_))),
        "expected Conflict, got {r:?}"
    );
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, znovel_domain::StoreError>) {
    assert!(
        matches!(r, Err(znovel_domain::StoreError::NotFound)),
        "expected NotFound, got {r:?}"
    );
}
