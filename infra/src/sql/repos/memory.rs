//! The memory repository: chapters' memory state, what extraction stored, which entities
//! each chapter names (and the entity statistics that follow), and the bible as of a
//! point of the story.

use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::{EntityRow, EntityStateRow, EventRow, ForeshadowingRow, RelationRow};
use crate::sql::schema::{
    chapter_memory, chapters, entities, entity_appearances, entity_states, events, foreshadowing,
    memory_records, relations,
};
use crate::sql::types::{DbTime, DbUuid, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use uuid::Uuid;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::{MemoryMark, MemoryRepository, StoreResult};
use znovel_domain::services::now;

const EXTRACTED: &str = "EXTRACTED";

/// Row of `chapter_memory`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = chapter_memory, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct MemoryRow {
    chapter_id: DbUuid,
    tenant_id: DbUuid,
    novel_id: DbUuid,
    indexed_version: Option<i32>,
    extracted_version: Option<i32>,
    failed_version: Option<i32>,
    error: Option<String>,
    updated_at: DbTime,
}

fn bump(old: Option<i32>, v: i32) -> Option<i32> {
    Some(old.map_or(v, |o| o.max(v)))
}

per_backend! {
    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        chapter: ChapterId,
    ) -> StoreResult<Option<ChapterMemory>> {
        tx!(conn, Some(tenant), Read, {
            let row: Option<MemoryRow> = chapter_memory::table
                .filter(chapter_memory::chapter_id.eq(chapter.db()))
                .filter(chapter_memory::tenant_id.eq(tenant.db()))
                .select(MemoryRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_err)?;
            Ok(row.map(|r| ChapterMemory {
                tenant_id: tenant,
                chapter_id: chapter,
                indexed_version: r.indexed_version,
                extracted_version: r.extracted_version,
                failed_version: r.failed_version,
                error: r.error,
            }))
        })
    }

    pub(crate) async fn mark(
        conn: &mut Conn,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
        mark: &MemoryMark,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let novel: DbUuid = chapters::table
                .filter(chapters::id.eq(chapter.db()))
                .filter(chapters::tenant_id.eq(tenant.db()))
                .select(chapters::novel_id)
                .first(conn)
                .await
                .map_err(db_err)?;
            let old: Option<MemoryRow> = chapter_memory::table
                .filter(chapter_memory::chapter_id.eq(chapter.db()))
                .filter(chapter_memory::tenant_id.eq(tenant.db()))
                .select(MemoryRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_err)?;
            let mut row = old.clone().unwrap_or(MemoryRow {
                chapter_id: chapter.db(),
                tenant_id: tenant.db(),
                novel_id: novel,
                indexed_version: None,
                extracted_version: None,
                failed_version: None,
                error: None,
                updated_at: DbTime(now()),
            });
            match mark {
                MemoryMark::Indexed => row.indexed_version = bump(row.indexed_version, version),
                MemoryMark::Extracted => {
                    row.extracted_version = bump(row.extracted_version, version)
                }
                MemoryMark::Failed(why) => {
                    if row.failed_version.is_none_or(|f| f <= version) {
                        row.error = Some(why.chars().take(2_000).collect());
                    }
                    row.failed_version = bump(row.failed_version, version);
                }
            }
            row.updated_at = DbTime(now());
            if old.is_some() {
                diesel::update(
                    chapter_memory::table.filter(chapter_memory::chapter_id.eq(chapter.db())),
                )
                .set((
                    chapter_memory::indexed_version.eq(row.indexed_version),
                    chapter_memory::extracted_version.eq(row.extracted_version),
                    chapter_memory::failed_version.eq(row.failed_version),
                    chapter_memory::error.eq(&row.error),
                    chapter_memory::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await
                .map_err(db_err)?;
            } else {
                diesel::insert_into(chapter_memory::table)
                    .values(row)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            Ok(())
        })
    }

    /// (id, seq, version) of the novel's chapters, with their memory state.
    async fn chapters_with_memory(
        conn: &mut Conn,
        tenant: TenantId,
        novel: Option<NovelId>,
    ) -> StoreResult<Vec<(DbUuid, i32, i32, Option<MemoryRow>)>> {
        let mut q = chapters::table
            .left_join(chapter_memory::table.on(chapter_memory::chapter_id.eq(chapters::id)))
            .filter(chapters::tenant_id.eq(tenant.db()))
            .filter(chapters::version.gt(0))
            .into_boxed::<Db>();
        if let Some(novel) = novel {
            q = q.filter(chapters::novel_id.eq(novel.db()));
        }
        let rows: Vec<(DbUuid, i32, i32, Option<MemoryRow>)> = q
            .order(chapters::seq.asc())
            .select((
                chapters::id,
                chapters::seq,
                chapters::version,
                Option::<MemoryRow>::as_select(),
            ))
            .load(conn)
            .await
            .map_err(db_err)?;
        Ok(rows)
    }

    pub(crate) async fn progress(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<MemoryProgress> {
        tx!(conn, Some(tenant), Read, {
            let mut p = MemoryProgress::default();
            for (_, _, version, m) in chapters_with_memory(conn, tenant, Some(novel)).await? {
                let m = m.as_ref();
                let indexed = m.and_then(|m| m.indexed_version) == Some(version);
                let failed = m.and_then(|m| m.failed_version) == Some(version);
                if indexed {
                    p.indexed_chapters += 1;
                } else if failed {
                    p.failed_chapters += 1;
                } else {
                    p.pending_chapters += 1;
                }
                if m.and_then(|m| m.extracted_version) == Some(version) {
                    p.extracted_chapters += 1;
                }
            }
            Ok(p)
        })
    }

    pub(crate) async fn unremembered(
        conn: &mut Conn,
        tenant: TenantId,
        limit: i64,
    ) -> StoreResult<Vec<(ChapterId, i32, i32)>> {
        tx!(conn, Some(tenant), Read, {
            Ok(chapters_with_memory(conn, tenant, None)
                .await?
                .into_iter()
                .filter(|(_, _, version, m)| {
                    let m = m.as_ref();
                    m.and_then(|m| m.indexed_version) != Some(*version)
                        && m.and_then(|m| m.failed_version) != Some(*version)
                })
                .take(limit.max(0) as usize)
                .map(|(id, seq, version, _)| (ChapterId::from_uuid(id.0), version, seq))
                .collect())
        })
    }

    pub(crate) async fn heads(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<Vec<(ChapterId, i32, i32)>> {
        tx!(conn, Some(tenant), Read, {
            let rows: Vec<(DbUuid, i32, i32)> = chapters::table
                .filter(chapters::tenant_id.eq(tenant.db()))
                .filter(chapters::novel_id.eq(novel.db()))
                .select((chapters::id, chapters::seq, chapters::version))
                .load(conn)
                .await
                .map_err(db_err)?;
            Ok(rows
                .into_iter()
                .map(|(id, seq, v)| (ChapterId::from_uuid(id.0), seq, v))
                .collect())
        })
    }

    /// Recomputes first/last chapter seq and appearance count of `ids` from the
    /// appearances (inside the caller's transaction).
    pub(crate) async fn refresh_stats(
        conn: &mut Conn,
        tenant: TenantId,
        ids: &[EntityId],
    ) -> StoreResult<()> {
        for id in ids {
            let seqs: Vec<i32> = entity_appearances::table
                .inner_join(chapters::table.on(chapters::id.eq(entity_appearances::chapter_id)))
                .filter(entity_appearances::tenant_id.eq(tenant.db()))
                .filter(entity_appearances::entity_id.eq(id.db()))
                .select(chapters::seq)
                .load(conn)
                .await
                .map_err(db_err)?;
            diesel::update(
                entities::table
                    .filter(entities::id.eq(id.db()))
                    .filter(entities::tenant_id.eq(tenant.db())),
            )
            .set((
                entities::first_chapter_seq.eq(seqs.iter().min().copied()),
                entities::last_chapter_seq.eq(seqs.iter().max().copied()),
                entities::appearance_count.eq(seqs.len() as i32),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    pub(crate) async fn replace_appearances(
        conn: &mut Conn,
        a: &ChapterAppearances,
    ) -> StoreResult<()> {
        let tenant = a.tenant_id;
        tx!(conn, Some(tenant), Write, {
            let old: Vec<DbUuid> = entity_appearances::table
                .filter(entity_appearances::tenant_id.eq(tenant.db()))
                .filter(entity_appearances::chapter_id.eq(a.chapter_id.db()))
                .select(entity_appearances::entity_id)
                .load(conn)
                .await
                .map_err(db_err)?;
            diesel::delete(
                entity_appearances::table
                    .filter(entity_appearances::tenant_id.eq(tenant.db()))
                    .filter(entity_appearances::chapter_id.eq(a.chapter_id.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            let mut touched: Vec<EntityId> = old.into_iter().map(|u| EntityId::from_uuid(u.0)).collect();
            let mut seen = HashSet::new();
            for e in &a.entities {
                if !seen.insert(*e) {
                    continue;
                }
                diesel::insert_into(entity_appearances::table)
                    .values((
                        entity_appearances::tenant_id.eq(tenant.db()),
                        entity_appearances::entity_id.eq(e.db()),
                        entity_appearances::chapter_id.eq(a.chapter_id.db()),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                touched.push(*e);
            }
            touched.sort();
            touched.dedup();
            refresh_stats(conn, tenant, &touched).await
        })
    }

    /// Deletes what extraction recorded from a chapter and the chapter's index records
    /// (inside the caller's transaction); returns the entities it named (their
    /// statistics must be refreshed once the chapter is gone).
    pub(crate) async fn forget_chapter(
        conn: &mut Conn,
        tenant: TenantId,
        chapter: ChapterId,
    ) -> StoreResult<Vec<EntityId>> {
        delete_extracted(conn, tenant, chapter).await?;
        diesel::delete(
            memory_records::table
                .filter(memory_records::tenant_id.eq(tenant.db()))
                .filter(memory_records::chapter_id.eq(chapter.db())),
        )
        .execute(conn)
        .await
        .map_err(db_err)?;
        let named: Vec<DbUuid> = entity_appearances::table
            .filter(entity_appearances::tenant_id.eq(tenant.db()))
            .filter(entity_appearances::chapter_id.eq(chapter.db()))
            .select(entity_appearances::entity_id)
            .load(conn)
            .await
            .map_err(db_err)?;
        Ok(named.into_iter().map(|u| EntityId::from_uuid(u.0)).collect())
    }

    /// Deletes the records extracted from `chapter` (origin EXTRACTED); returns their ids.
    async fn delete_extracted(
        conn: &mut Conn,
        tenant: TenantId,
        chapter: ChapterId,
    ) -> StoreResult<Vec<Uuid>> {
        let mut removed = Vec::new();
        let ids: Vec<DbUuid> = diesel::delete(
            entity_states::table
                .filter(entity_states::tenant_id.eq(tenant.db()))
                .filter(entity_states::origin.eq(EXTRACTED))
                .filter(entity_states::origin_chapter_id.eq(chapter.db())),
        )
        .returning(entity_states::id)
        .get_results(conn)
        .await
        .map_err(db_err)?;
        removed.extend(ids.into_iter().map(|u| u.0));
        let ids: Vec<DbUuid> = diesel::delete(
            relations::table
                .filter(relations::tenant_id.eq(tenant.db()))
                .filter(relations::origin.eq(EXTRACTED))
                .filter(relations::origin_chapter_id.eq(chapter.db())),
        )
        .returning(relations::id)
        .get_results(conn)
        .await
        .map_err(db_err)?;
        removed.extend(ids.into_iter().map(|u| u.0));
        let ids: Vec<DbUuid> = diesel::delete(
            events::table
                .filter(events::tenant_id.eq(tenant.db()))
                .filter(events::origin.eq(EXTRACTED))
                .filter(events::origin_chapter_id.eq(chapter.db())),
        )
        .returning(events::id)
        .get_results(conn)
        .await
        .map_err(db_err)?;
        removed.extend(ids.into_iter().map(|u| u.0));
        let ids: Vec<DbUuid> = diesel::delete(
            foreshadowing::table
                .filter(foreshadowing::tenant_id.eq(tenant.db()))
                .filter(foreshadowing::origin.eq(EXTRACTED))
                .filter(foreshadowing::origin_chapter_id.eq(chapter.db())),
        )
        .returning(foreshadowing::id)
        .get_results(conn)
        .await
        .map_err(db_err)?;
        removed.extend(ids.into_iter().map(|u| u.0));
        Ok(removed)
    }

    pub(crate) async fn replace_extracted(
        conn: &mut Conn,
        m: &ExtractedMemory,
    ) -> StoreResult<Option<Vec<Uuid>>> {
        let tenant = m.tenant_id;
        tx!(conn, Some(tenant), Write, {
            let current: Option<(i32, String, String)> = chapters::table
                .filter(chapters::id.eq(m.chapter_id.db()))
                .filter(chapters::tenant_id.eq(tenant.db()))
                .select((chapters::version, chapters::summary, chapters::summary_origin))
                .first(conn)
                .await
                .optional()
                .map_err(db_err)?;
            let Some((version, summary, summary_origin)) = current else {
                return Ok(None);
            };
            if version != m.chapter_version {
                return Ok(None);
            }
            let removed = delete_extracted(conn, tenant, m.chapter_id).await?;
            for e in &m.new_entities {
                diesel::insert_into(entities::table)
                    .values(EntityRow::from(e))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            for s in &m.states {
                diesel::insert_into(entity_states::table)
                    .values(EntityStateRow::from(s))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            for e in &m.events {
                diesel::insert_into(events::table)
                    .values(EventRow::from(e))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            for r in &m.relations {
                let exists = relations::table
                    .filter(relations::tenant_id.eq(tenant.db()))
                    .filter(relations::source_id.eq(r.source_id.db()))
                    .filter(relations::target_id.eq(r.target_id.db()))
                    .filter(relations::kind.eq(&r.kind))
                    .select(relations::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                if exists.is_none() {
                    diesel::insert_into(relations::table)
                        .values(RelationRow::from(r))
                        .execute(conn)
                        .await
                        .map_err(db_err)?;
                }
            }
            for f in &m.planted {
                diesel::insert_into(foreshadowing::table)
                    .values(ForeshadowingRow::from(f))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            for id in &m.resolved {
                diesel::update(
                    foreshadowing::table
                        .filter(foreshadowing::id.eq(id.db()))
                        .filter(foreshadowing::tenant_id.eq(tenant.db()))
                        .filter(foreshadowing::status.eq(ForeshadowingStatus::Open.as_str())),
                )
                .set((
                    foreshadowing::status.eq(ForeshadowingStatus::Resolved.as_str()),
                    foreshadowing::resolved_chapter_id.eq(m.chapter_id.db()),
                    foreshadowing::updated_at.eq(DbTime(now())),
                ))
                .execute(conn)
                .await
                .map_err(db_err)?;
            }
            let authors = summary_origin == Origin::Author.as_str() && !summary.trim().is_empty();
            if let (Some(new), false) = (&m.summary, authors) {
                diesel::update(chapters::table.filter(chapters::id.eq(m.chapter_id.db())))
                    .set((
                        chapters::summary.eq(new),
                        chapters::summary_origin.eq(Origin::Extracted.as_str()),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            }
            Ok(Some(removed))
        })
    }

    pub(crate) async fn states_as_of(
        conn: &mut Conn,
        tenant: TenantId,
        ids: &[EntityId],
        seq: i32,
    ) -> StoreResult<Vec<EntityState>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        tx!(conn, Some(tenant), Read, {
            let keys: Vec<DbUuid> = ids.iter().map(|i| i.db()).collect();
            let rows: Vec<(EntityStateRow, Option<i32>)> = entity_states::table
                .left_join(chapters::table.on(chapters::id.nullable().eq(entity_states::chapter_id)))
                .filter(entity_states::tenant_id.eq(tenant.db()))
                .filter(entity_states::entity_id.eq_any(keys))
                .order(entity_states::id.asc())
                .select((EntityStateRow::as_select(), chapters::seq.nullable()))
                .load(conn)
                .await
                .map_err(db_err)?;
            // Latest by (chapter seq, creation); a change tied to no chapter is seq 0.
            let mut best: HashMap<Uuid, (i32, EntityStateRow)> = HashMap::new();
            for (row, chapter_seq) in rows {
                let at = chapter_seq.unwrap_or(0);
                if at > seq {
                    continue;
                }
                match best.get(&row.entity_id.0) {
                    Some((b, _)) if *b > at => {}
                    _ => {
                        best.insert(row.entity_id.0, (at, row));
                    }
                }
            }
            let mut out: Vec<EntityState> = best
                .into_values()
                .map(|(_, r)| EntityState::try_from(r))
                .collect::<Result<_, _>>()?;
            out.sort_by_key(|s| s.entity_id);
            Ok(out)
        })
    }
}

/// [`forget_chapter`](pg::forget_chapter) and [`refresh_stats`](pg::refresh_stats) of the
/// connection's backend, for the chapter repository's delete (one transaction).
pub(crate) trait MemoryIn: Send {
    /// See `forget_chapter`.
    fn forget_chapter_in(
        &mut self,
        tenant: TenantId,
        chapter: ChapterId,
    ) -> impl Future<Output = StoreResult<Vec<EntityId>>> + Send;
    /// See `refresh_stats`.
    fn refresh_entity_stats_in<'a>(
        &'a mut self,
        tenant: TenantId,
        ids: &'a [EntityId],
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;
}

macro_rules! memory_in {
    ($conn:ty, $module:ident) => {
        impl MemoryIn for $conn {
            fn forget_chapter_in(
                &mut self,
                tenant: TenantId,
                chapter: ChapterId,
            ) -> impl Future<Output = StoreResult<Vec<EntityId>>> + Send {
                $module::forget_chapter(self, tenant, chapter)
            }
            fn refresh_entity_stats_in<'a>(
                &'a mut self,
                tenant: TenantId,
                ids: &'a [EntityId],
            ) -> impl Future<Output = StoreResult<()>> + Send + 'a {
                $module::refresh_stats(self, tenant, ids)
            }
        }
    };
}
memory_in!(pg::Conn, pg);
memory_in!(sqlite::Conn, sqlite);

#[async_trait]
impl MemoryRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %chapter))]
    async fn get_chapter_memory(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
    ) -> StoreResult<Option<ChapterMemory>> {
        dispatch!(self, get(tenant, chapter))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %chapter, version))]
    async fn mark_chapter_memory(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
        mark: MemoryMark,
    ) -> StoreResult<()> {
        dispatch!(self, mark(tenant, chapter, version, &mark))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn memory_progress(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<MemoryProgress> {
        dispatch!(self, progress(tenant, novel))
    }

    #[tracing::instrument(skip_all, fields(tenant = %memory.tenant_id, chapter = %memory.chapter_id))]
    async fn replace_extracted(&self, memory: &ExtractedMemory) -> StoreResult<Option<Vec<Uuid>>> {
        let written = dispatch!(self, replace_extracted(memory));
        self.chapter_cache().forget(memory.chapter_id);
        written
    }

    #[tracing::instrument(skip_all, fields(tenant = %appearances.tenant_id, chapter = %appearances.chapter_id))]
    async fn replace_appearances(&self, appearances: &ChapterAppearances) -> StoreResult<()> {
        dispatch!(self, replace_appearances(appearances))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter_seq))]
    async fn entity_states_as_of(
        &self,
        tenant: TenantId,
        entities: &[EntityId],
        chapter_seq: i32,
    ) -> StoreResult<Vec<EntityState>> {
        dispatch!(self, states_as_of(tenant, entities, chapter_seq))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn chapter_heads(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<Vec<(ChapterId, i32, i32)>> {
        dispatch!(self, heads(tenant, novel))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn unremembered_chapters(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> StoreResult<Vec<(ChapterId, i32, i32)>> {
        dispatch!(self, unremembered(tenant, limit))
    }
}
