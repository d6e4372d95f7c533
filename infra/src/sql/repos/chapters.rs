//! Chapters and their revisions. Every content change or removal also recomputes the
//! novel's `word_count` as the sum of its chapters', in the same transaction.

use super::memory::MemoryIn;
use super::{cursor, page_of, revisions, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::{ChapterRow, RevisionRow};
use crate::sql::schema::{chapter_revisions, chapters, novels};
use crate::sql::types::{DbTime, DbUuid, SqlUuid, ToDb, opt_db};
use async_trait::async_trait;
use diesel::dsl::{max, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use znovel_domain::StoreError;
use znovel_domain::ids::{ChapterId, NovelId, RevisionId, TenantId};
use znovel_domain::model::{Chapter, ChapterRevision};
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{ChapterFilter, ChapterRepository, StoreResult};

/// The sum of a novel's chapter word counts (correlated with the updated `novels` row).
const WORD_COUNT_SUM: &str = "(SELECT CAST(COALESCE(SUM(c.word_count), 0) AS BIGINT) \
     FROM chapters c WHERE c.novel_id = novels.id AND c.tenant_id = novels.tenant_id)";

per_backend! {
    /// Sets the novel's word count to the sum of its chapters' (inside a transaction).
    ///
    /// PostgreSQL (READ COMMITTED) first locks the novel row, so the sum is taken by a
    /// statement that starts after any concurrent chapter write to the novel committed;
    /// `NO KEY UPDATE` does not conflict with the key-share locks the chapter foreign key
    /// takes, so two writers cannot deadlock. SQLite writers are serialized already.
    async fn refresh_word_count(
        conn: &mut Conn,
        tenant: TenantId,
        novel: DbUuid,
    ) -> StoreResult<()> {
        if PG {
            diesel::sql_query("SELECT 1 FROM novels WHERE id = $1 FOR NO KEY UPDATE")
                .bind::<SqlUuid, _>(novel)
                .execute(conn)
                .await
                .map_err(db_err)?;
        }
        diesel::update(
            novels::table
                .filter(novels::id.eq(novel))
                .filter(novels::tenant_id.eq(tenant.db())),
        )
        .set(novels::word_count.eq(sql::<BigInt>(WORD_COUNT_SUM)))
        .execute(conn)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn insert(
        conn: &mut Conn,
        c: &Chapter,
        first: Option<&ChapterRevision>,
    ) -> StoreResult<()> {
        tx!(conn, Some(c.tenant_id), Write, {
            diesel::insert_into(chapters::table)
                .values(ChapterRow::from(c))
                .execute(conn)
                .await
                .map_err(db_err)?;
            if let Some(rev) = first {
                diesel::insert_into(chapter_revisions::table)
                    .values(RevisionRow::from(rev))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            refresh_word_count(conn, c.tenant_id, c.novel_id.db()).await
        })
    }

    pub(crate) async fn by_seq(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        seq: i32,
    ) -> StoreResult<Chapter> {
        tx!(conn, Some(tenant), Read, {
            chapters::table
                .filter(chapters::tenant_id.eq(tenant.db()))
                .filter(chapters::novel_id.eq(novel.db()))
                .filter(chapters::seq.eq(seq))
                .select(ChapterRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        filter: &ChapterFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Chapter>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let mut q = chapters::table
                    .filter(chapters::tenant_id.eq(tenant.db()))
                    .filter(chapters::novel_id.eq(novel.db()))
                    .into_boxed::<Db>();
                if let Some(volume) = filter.volume_id {
                    q = q.filter(chapters::volume_id.eq(volume.db()));
                }
                if let Some(status) = filter.status {
                    q = q.filter(chapters::status.eq(status.as_str()));
                }
                q
            };
            let mut q = scope()
                .select(ChapterRow::as_select())
                .order(chapters::seq.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let seq = scope()
                    .filter(chapters::id.eq(after))
                    .select(chapters::seq)
                    .first::<i32>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(seq) = seq else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(chapters::seq.gt(seq));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn count(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<i64> {
        tx!(conn, Some(tenant), Read, {
            chapters::table
                .filter(chapters::tenant_id.eq(tenant.db()))
                .filter(chapters::novel_id.eq(novel.db()))
                .count()
                .get_result(conn)
                .await
                .map_err(db_err)
        })
    }

    pub(crate) async fn max_seq(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<Option<i32>> {
        tx!(conn, Some(tenant), Read, {
            chapters::table
                .filter(chapters::tenant_id.eq(tenant.db()))
                .filter(chapters::novel_id.eq(novel.db()))
                .select(max(chapters::seq))
                .get_result(conn)
                .await
                .map_err(db_err)
        })
    }

    pub(crate) async fn update(conn: &mut Conn, c: &Chapter) -> StoreResult<()> {
        tx!(conn, Some(c.tenant_id), Write, {
            let rows = diesel::update(
                chapters::table
                    .filter(chapters::id.eq(c.id.db()))
                    .filter(chapters::tenant_id.eq(c.tenant_id.db())),
            )
            .set((
                chapters::volume_id.eq(opt_db(c.volume_id)),
                chapters::seq.eq(c.seq),
                chapters::title.eq(&c.title),
                chapters::outline.eq(&c.outline),
                chapters::summary.eq(&c.summary),
                chapters::summary_origin.eq(c.summary_origin.as_str()),
                chapters::story_time_start.eq(c.story_time_start),
                chapters::story_time_end.eq(c.story_time_end),
                chapters::target_word_count.eq(c.target_word_count),
                chapters::status.eq(c.status.as_str()),
                chapters::updated_at.eq(DbTime(c.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn save_content(
        conn: &mut Conn,
        c: &Chapter,
        expected_version: i32,
        rev: &ChapterRevision,
    ) -> StoreResult<()> {
        tx!(conn, Some(c.tenant_id), Write, {
            save_content_in(conn, c, expected_version, rev).await
        })
    }

    /// The body of [`save_content`], run inside the caller's write transaction (which
    /// must be scoped to `c.tenant_id`): the version-checked chapter update, the
    /// revision, the novel's word count. `Conflict` when the stored version is not
    /// `expected_version`, `NotFound` when the chapter does not exist; the caller's
    /// transaction must then roll back (nothing here was written).
    pub(crate) async fn save_content_in(
        conn: &mut Conn,
        c: &Chapter,
        expected_version: i32,
        rev: &ChapterRevision,
    ) -> StoreResult<()> {
        let chapter = chapters::table
            .filter(chapters::id.eq(c.id.db()))
            .filter(chapters::tenant_id.eq(c.tenant_id.db()));
        let novel: Option<DbUuid> = diesel::update(chapter)
            .filter(chapters::version.eq(expected_version))
            .set((
                chapters::content.eq(&c.content),
                chapters::word_count.eq(c.word_count),
                chapters::version.eq(c.version),
                chapters::status.eq(c.status.as_str()),
                chapters::updated_at.eq(DbTime(c.updated_at)),
            ))
            .returning(chapters::novel_id)
            .get_result(conn)
            .await
            .optional()
            .map_err(db_err)?;
        let Some(novel) = novel else {
            let stored: Option<i32> = chapter
                .select(chapters::version)
                .first(conn)
                .await
                .optional()
                .map_err(db_err)?;
            return Err(match stored {
                Some(v) => StoreError::Conflict(format!(
                    "the chapter is at version {v}, not {expected_version}"
                )),
                None => StoreError::NotFound,
            });
        };
        diesel::insert_into(chapter_revisions::table)
            .values(RevisionRow::from(rev))
            .execute(conn)
            .await
            .map_err(db_err)?;
        refresh_word_count(conn, c.tenant_id, novel).await
    }

    pub(crate) async fn delete(
        conn: &mut Conn,
        tenant: TenantId,
        id: ChapterId,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            // What the chapter established goes with it (the author's own records stay).
            let named = conn.forget_chapter_in(tenant, id).await?;
            let novel: DbUuid = diesel::delete(
                chapters::table
                    .filter(chapters::id.eq(id.db()))
                    .filter(chapters::tenant_id.eq(tenant.db())),
            )
            .returning(chapters::novel_id)
            .get_result(conn)
            .await
            .map_err(db_err)?;
            conn.refresh_entity_stats_in(tenant, &named).await?;
            refresh_word_count(conn, tenant, novel).await
        })
    }
}

point_get!(chapters, ChapterRow, ChapterId, Chapter);

/// [`save_content_in`](pg::save_content_in) of the connection's backend, so a query body
/// of another repository written once in `per_backend!` can store chapter content inside
/// its own transaction (e.g. completing a generation job).
pub(crate) trait SaveContentIn: Send {
    /// Stores `c`'s new content in the open transaction; see `save_content_in`.
    fn save_content_in<'a>(
        &'a mut self,
        c: &'a Chapter,
        expected_version: i32,
        rev: &'a ChapterRevision,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;
}

impl SaveContentIn for pg::Conn {
    fn save_content_in<'a>(
        &'a mut self,
        c: &'a Chapter,
        expected_version: i32,
        rev: &'a ChapterRevision,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a {
        pg::save_content_in(self, c, expected_version, rev)
    }
}

impl SaveContentIn for sqlite::Conn {
    fn save_content_in<'a>(
        &'a mut self,
        c: &'a Chapter,
        expected_version: i32,
        rev: &'a ChapterRevision,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a {
        sqlite::save_content_in(self, c, expected_version, rev)
    }
}

#[async_trait]
impl ChapterRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %chapter.tenant_id, chapter = %chapter.id))]
    async fn insert_chapter(
        &self,
        chapter: &Chapter,
        first_revision: Option<&ChapterRevision>,
    ) -> StoreResult<()> {
        dispatch!(self, insert(chapter, first_revision))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %id))]
    async fn get_chapter(&self, tenant: TenantId, id: ChapterId) -> StoreResult<Chapter> {
        dispatch_point!(self, get(tenant, id), pg = pg_get, sqlite = sqlite_get)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %id))]
    async fn show_chapter(&self, tenant: TenantId, id: ChapterId) -> StoreResult<Chapter> {
        let cache = self.chapter_cache();
        cache.wake();
        if let Some(kept) = cache.get(tenant, id) {
            return Ok(kept);
        }
        let epoch = cache.epoch();
        let c = self.get_chapter(tenant, id).await?;
        cache.keep(epoch, &c);
        Ok(c)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel, seq))]
    async fn find_chapter_by_seq(
        &self,
        tenant: TenantId,
        novel: NovelId,
        seq: i32,
    ) -> StoreResult<Chapter> {
        dispatch!(self, by_seq(tenant, novel, seq))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_chapters(
        &self,
        tenant: TenantId,
        novel: NovelId,
        filter: &ChapterFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Chapter>> {
        dispatch!(self, list(tenant, novel, filter, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn count_chapters(&self, tenant: TenantId, novel: NovelId) -> StoreResult<i64> {
        dispatch!(self, count(tenant, novel))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn max_chapter_seq(&self, tenant: TenantId, novel: NovelId) -> StoreResult<Option<i32>> {
        dispatch!(self, max_seq(tenant, novel))
    }

    #[tracing::instrument(skip_all, fields(tenant = %chapter.tenant_id, chapter = %chapter.id))]
    async fn update_chapter(&self, chapter: &Chapter) -> StoreResult<()> {
        let written = dispatch!(self, update(chapter));
        self.chapter_cache().forget(chapter.id);
        written
    }

    #[tracing::instrument(skip_all, fields(tenant = %chapter.tenant_id, chapter = %chapter.id))]
    async fn save_chapter_content(
        &self,
        chapter: &Chapter,
        expected_version: i32,
        revision: &ChapterRevision,
    ) -> StoreResult<()> {
        let written = dispatch!(self, save_content(chapter, expected_version, revision));
        self.chapter_cache().forget(chapter.id);
        written
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %id))]
    async fn delete_chapter(&self, tenant: TenantId, id: ChapterId) -> StoreResult<()> {
        let written = dispatch!(self, delete(tenant, id));
        self.chapter_cache().forget(id);
        written
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, revision = %id))]
    async fn get_revision(&self, tenant: TenantId, id: RevisionId) -> StoreResult<ChapterRevision> {
        dispatch!(self, revisions::get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %chapter))]
    async fn list_revisions(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        page: PageRequest,
    ) -> StoreResult<Page<ChapterRevision>> {
        dispatch!(self, revisions::list(tenant, chapter, page))
    }
}
