//! The remembered records (`memory_records`): the queries of the SQL memory index
//! ([`crate::memory::SqlMemoryIndex`]). Every write bumps the novel's row of
//! `memory_versions` in the same transaction, so a process caching the novel's vectors
//! knows to reload them.

use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::schema::{memory_records, memory_versions};
use crate::sql::types::{DbTime, DbUuid, SqlUuid, ToDb};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Text};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use uuid::Uuid;
use znovel_domain::ids::{ChapterId, NovelId, TenantId};
use znovel_domain::ports::StoreResult;

/// A row of `memory_records`, as written.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = memory_records, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct RecordRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub kind: String,
    pub source_id: DbUuid,
    pub ordinal: i32,
    pub chapter_id: Option<DbUuid>,
    pub chapter_seq: Option<i32>,
    pub chapter_version: Option<i32>,
    pub text: String,
    pub start_offset: Option<i32>,
    pub end_offset: Option<i32>,
    pub keywords: String,
    pub model: Option<String>,
    pub vector: Option<Vec<u8>>,
    pub created_at: DbTime,
}

/// A record as read back for a hit (no vector, no keywords).
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = memory_records, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct RecordMeta {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub kind: String,
    pub source_id: DbUuid,
    pub ordinal: i32,
    pub chapter_id: Option<DbUuid>,
    pub chapter_seq: Option<i32>,
    pub chapter_version: Option<i32>,
    pub text: String,
    pub start_offset: Option<i32>,
    pub end_offset: Option<i32>,
    pub model: Option<String>,
}

/// A keyword hit: the record and its score.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct KeywordHit {
    #[diesel(embed)]
    pub record: RecordMeta,
    #[diesel(sql_type = Double)]
    pub score: f64,
}

/// One cached vector: (record id, kind, chapter seq, vector bytes).
pub(crate) type VectorRow = (DbUuid, String, Option<i32>, Option<Vec<u8>>);

/// The columns of [`RecordMeta`], for the hand-written keyword queries.
const META: &str = "r.id, r.tenant_id, r.novel_id, r.kind, r.source_id, r.ordinal, \
     r.chapter_id, r.chapter_seq, r.chapter_version, r.text, r.start_offset, r.end_offset, \
     r.model";

/// SQLite: FTS5 with `bm25()` (higher is better once negated), the novel matched inside
/// the index through its `scope` token.
const SQLITE_KEYWORD: &str = "SELECT {META}, -bm25(memory_fts, 0.0, 1.0) AS score \
     FROM memory_fts JOIN memory_records r ON r.rowid = memory_fts.rowid \
     WHERE memory_fts MATCH ? AND r.tenant_id = ? AND r.novel_id = ? \
     AND (r.chapter_seq IS NULL OR r.chapter_seq < ?) \
     AND (? = '' OR instr(?, ',' || r.kind || ',') > 0) \
     ORDER BY bm25(memory_fts, 0.0, 1.0) LIMIT ?";

/// PostgreSQL: full-text search over the same words (`simple` configuration: no
/// stemming), ranked by cover density normalised by length.
const PG_KEYWORD: &str = "SELECT {META}, ts_rank_cd(r.keywords_tsv, q, 1)::float8 AS score \
     FROM memory_records r, to_tsquery('simple', $1) q \
     WHERE r.keywords_tsv @@ q AND r.tenant_id = $2 AND r.novel_id = $3 \
     AND (r.chapter_seq IS NULL OR r.chapter_seq < $4) \
     AND ($5 = '' OR position(',' || r.kind || ',' in $6) > 0) \
     ORDER BY score DESC, r.id LIMIT $7";

/// `,KIND,KIND,` (empty: every kind).
pub(crate) fn kinds_filter(kinds: &[&str]) -> String {
    if kinds.is_empty() {
        String::new()
    } else {
        format!(",{},", kinds.join(","))
    }
}

/// The FTS5 query: the novel's scope token AND any of the words (each quoted).
pub(crate) fn fts5_query(novel: NovelId, words: &[String]) -> String {
    let any: Vec<String> = words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    format!(
        "scope:n{} AND keywords:({})",
        novel.as_uuid().simple(),
        any.join(" OR ")
    )
}

/// The PostgreSQL tsquery: any of the words (each quoted as a lexeme).
pub(crate) fn tsquery(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" | ")
}

per_backend! {
    /// Bumps the novel's memory version (inside the caller's transaction).
    async fn bump(conn: &mut Conn, tenant: TenantId, novel: NovelId) -> StoreResult<()> {
        diesel::insert_into(memory_versions::table)
            .values((
                memory_versions::tenant_id.eq(tenant.db()),
                memory_versions::novel_id.eq(novel.db()),
                memory_versions::version.eq(1i64),
            ))
            .on_conflict((memory_versions::tenant_id, memory_versions::novel_id))
            .do_update()
            .set(memory_versions::version.eq(memory_versions::version + excluded(memory_versions::version)))
            .execute(conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn replace(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
        kinds: &[&str],
        rows: &[RecordRow],
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            diesel::delete(
                memory_records::table
                    .filter(memory_records::tenant_id.eq(tenant.db()))
                    .filter(memory_records::source_id.eq(DbUuid(source)))
                    .filter(memory_records::kind.eq_any(kinds)),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            for row in rows {
                diesel::insert_into(memory_records::table)
                    .values(row)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            bump(conn, tenant, novel).await
        })
    }

    pub(crate) async fn forget(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        source: Option<Uuid>,
        chapter: Option<ChapterId>,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let mut q = diesel::delete(memory_records::table)
                .filter(memory_records::tenant_id.eq(tenant.db()))
                .filter(memory_records::novel_id.eq(novel.db()))
                .into_boxed::<Db>();
            if let Some(source) = source {
                q = q.filter(memory_records::source_id.eq(DbUuid(source)));
            }
            if let Some(chapter) = chapter {
                q = q.filter(memory_records::chapter_id.eq(chapter.db()));
            }
            // Nothing gone (or not the tenant's novel): nothing for caches to reload.
            if q.execute(conn).await.map_err(db_err)? == 0 {
                return Ok(());
            }
            bump(conn, tenant, novel).await
        })
    }

    /// The novel's memory version (0 before any record).
    pub(crate) async fn version(conn: &mut Conn, tenant: TenantId, novel: NovelId) -> StoreResult<i64> {
        tx!(conn, Some(tenant), Read, {
            Ok(memory_versions::table
                .filter(memory_versions::tenant_id.eq(tenant.db()))
                .filter(memory_versions::novel_id.eq(novel.db()))
                .select(memory_versions::version)
                .first::<i64>(conn)
                .await
                .optional()
                .map_err(db_err)?
                .unwrap_or(0))
        })
    }

    /// The novel's version and its vectors of `model`.
    pub(crate) async fn vectors(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        model: &str,
    ) -> StoreResult<(i64, Vec<VectorRow>)> {
        tx!(conn, Some(tenant), Read, {
            let version = memory_versions::table
                .filter(memory_versions::tenant_id.eq(tenant.db()))
                .filter(memory_versions::novel_id.eq(novel.db()))
                .select(memory_versions::version)
                .first::<i64>(conn)
                .await
                .optional()
                .map_err(db_err)?
                .unwrap_or(0);
            let rows: Vec<VectorRow> = memory_records::table
                .filter(memory_records::tenant_id.eq(tenant.db()))
                .filter(memory_records::novel_id.eq(novel.db()))
                .filter(memory_records::model.eq(model))
                .select((
                    memory_records::id,
                    memory_records::kind,
                    memory_records::chapter_seq,
                    memory_records::vector,
                ))
                .load(conn)
                .await
                .map_err(db_err)?;
            Ok((version, rows))
        })
    }

    pub(crate) async fn by_ids(
        conn: &mut Conn,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> StoreResult<Vec<RecordMeta>> {
        tx!(conn, Some(tenant), Read, {
            let keys: Vec<DbUuid> = ids.iter().map(|u| DbUuid(*u)).collect();
            memory_records::table
                .filter(memory_records::tenant_id.eq(tenant.db()))
                .filter(memory_records::id.eq_any(keys))
                .select(RecordMeta::as_select())
                .load(conn)
                .await
                .map_err(db_err)
        })
    }

    /// Every record of a novel, with its vector and model (for `znovel reindex`).
    pub(crate) async fn all(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<Vec<(RecordMeta, Option<Vec<u8>>)>> {
        tx!(conn, Some(tenant), Read, {
            memory_records::table
                .filter(memory_records::tenant_id.eq(tenant.db()))
                .filter(memory_records::novel_id.eq(novel.db()))
                .order(memory_records::id.asc())
                .select((RecordMeta::as_select(), memory_records::vector))
                .load(conn)
                .await
                .map_err(db_err)
        })
    }

    pub(crate) async fn keyword(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        words: &[String],
        before: Option<i32>,
        kinds: &str,
        limit: i64,
    ) -> StoreResult<Vec<KeywordHit>> {
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let before = before.unwrap_or(i32::MAX);
        tx!(conn, Some(tenant), Read, {
            let sql = if PG { PG_KEYWORD } else { SQLITE_KEYWORD }.replace("{META}", META);
            let query = if PG { tsquery(words) } else { fts5_query(novel, words) };
            diesel::sql_query(sql)
                .bind::<Text, _>(query)
                .bind::<SqlUuid, _>(tenant.db())
                .bind::<SqlUuid, _>(novel.db())
                .bind::<Integer, _>(before)
                .bind::<Text, _>(kinds)
                .bind::<Text, _>(kinds)
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await
                .map_err(db_err)
        })
    }
}

/// The record queries on the store's pool (for the SQL memory index).
impl SqlStore {
    pub(crate) async fn records_all(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<Vec<(RecordMeta, Option<Vec<u8>>)>> {
        dispatch!(self, all(tenant, novel))
    }

    pub(crate) async fn records_version(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<i64> {
        dispatch!(self, version(tenant, novel))
    }

    pub(crate) async fn records_vectors(
        &self,
        tenant: TenantId,
        novel: NovelId,
        model: &str,
    ) -> StoreResult<(i64, Vec<VectorRow>)> {
        dispatch!(self, vectors(tenant, novel, model))
    }

    pub(crate) async fn records_keyword(
        &self,
        tenant: TenantId,
        novel: NovelId,
        words: &[String],
        before: Option<i32>,
        kinds: &str,
        limit: i64,
    ) -> StoreResult<Vec<KeywordHit>> {
        dispatch!(self, keyword(tenant, novel, words, before, kinds, limit))
    }

    pub(crate) async fn records_by_ids(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> StoreResult<Vec<RecordMeta>> {
        dispatch!(self, by_ids(tenant, ids))
    }

    pub(crate) async fn records_replace(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
        kinds: &[&str],
        rows: &[RecordRow],
    ) -> StoreResult<()> {
        dispatch!(self, replace(tenant, novel, source, kinds, rows))
    }

    pub(crate) async fn records_forget(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Option<Uuid>,
        chapter: Option<ChapterId>,
    ) -> StoreResult<()> {
        dispatch!(self, forget(tenant, novel, source, chapter))
    }
}
