//! Novels and their volumes.

use super::{cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::{NovelRow, VolumeRow};
use crate::sql::schema::{novels, volumes};
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{NovelId, TenantId, VolumeId};
use znovel_domain::model::{Novel, NovelStatus, Volume};
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{NovelFilter, NovelRepository, StoreResult};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, n: &Novel) -> StoreResult<()> {
        tx!(conn, Some(n.tenant_id), Write, {
            diesel::insert_into(novels::table)
                .values(NovelRow::from(n))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        filter: &NovelFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Novel>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let q = novels::table
                    .filter(novels::tenant_id.eq(tenant.db()))
                    .into_boxed::<Db>();
                match filter.status {
                    Some(status) => q.filter(novels::status.eq(status.as_str())),
                    None => q.filter(novels::status.ne(NovelStatus::Archived.as_str())),
                }
            };
            let mut q = scope()
                .select(NovelRow::as_select())
                .order(novels::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(novels::id.eq(after))
                    .select(novels::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(novels::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn count(conn: &mut Conn, tenant: TenantId) -> StoreResult<i64> {
        tx!(conn, Some(tenant), Read, {
            novels::table
                .filter(novels::tenant_id.eq(tenant.db()))
                .count()
                .get_result(conn)
                .await
                .map_err(db_err)
        })
    }

    pub(crate) async fn update(conn: &mut Conn, n: &Novel) -> StoreResult<()> {
        tx!(conn, Some(n.tenant_id), Write, {
            let rows = diesel::update(
                novels::table
                    .filter(novels::id.eq(n.id.db()))
                    .filter(novels::tenant_id.eq(n.tenant_id.db())),
            )
            .set((
                novels::title.eq(&n.title),
                novels::description.eq(&n.description),
                novels::genre.eq(&n.genre),
                novels::language.eq(&n.language),
                novels::target_word_count.eq(n.target_word_count),
                novels::style_guide.eq(&n.style_guide),
                novels::world_settings.eq(DbJson(n.world_settings.clone())),
                novels::time_system.eq(&n.time_system),
                novels::status.eq(n.status.as_str()),
                novels::updated_at.eq(DbTime(n.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn insert_volume(conn: &mut Conn, v: &Volume) -> StoreResult<()> {
        tx!(conn, Some(v.tenant_id), Write, {
            diesel::insert_into(volumes::table)
                .values(VolumeRow::from(v))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get_volume(
        conn: &mut Conn,
        tenant: TenantId,
        id: VolumeId,
    ) -> StoreResult<Volume> {
        tx!(conn, Some(tenant), Read, {
            volumes::table
                .filter(volumes::id.eq(id.db()))
                .filter(volumes::tenant_id.eq(tenant.db()))
                .select(VolumeRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list_volumes(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        page: PageRequest,
    ) -> StoreResult<Page<Volume>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                volumes::table
                    .filter(volumes::tenant_id.eq(tenant.db()))
                    .filter(volumes::novel_id.eq(novel.db()))
                    .into_boxed::<Db>()
            };
            let mut q = scope()
                .select(VolumeRow::as_select())
                .order(volumes::seq.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let seq = scope()
                    .filter(volumes::id.eq(after))
                    .select(volumes::seq)
                    .first::<i32>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(seq) = seq else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(volumes::seq.gt(seq));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn update_volume(conn: &mut Conn, v: &Volume) -> StoreResult<()> {
        tx!(conn, Some(v.tenant_id), Write, {
            let rows = diesel::update(
                volumes::table
                    .filter(volumes::id.eq(v.id.db()))
                    .filter(volumes::tenant_id.eq(v.tenant_id.db())),
            )
            .set((
                volumes::seq.eq(v.seq),
                volumes::title.eq(&v.title),
                volumes::summary.eq(&v.summary),
                volumes::updated_at.eq(DbTime(v.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn delete_volume(
        conn: &mut Conn,
        tenant: TenantId,
        id: VolumeId,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::delete(
                volumes::table
                    .filter(volumes::id.eq(id.db()))
                    .filter(volumes::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }
}

point_get!(novels, NovelRow, NovelId, Novel);

#[async_trait]
impl NovelRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %novel.tenant_id, novel = %novel.id))]
    async fn insert_novel(&self, novel: &Novel) -> StoreResult<()> {
        dispatch!(self, insert(novel))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %id))]
    async fn get_novel(&self, tenant: TenantId, id: NovelId) -> StoreResult<Novel> {
        dispatch_point!(self, get(tenant, id), pg = pg_get, sqlite = sqlite_get)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_novels(
        &self,
        tenant: TenantId,
        filter: &NovelFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Novel>> {
        dispatch!(self, list(tenant, filter, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn count_novels(&self, tenant: TenantId) -> StoreResult<i64> {
        dispatch!(self, count(tenant))
    }

    #[tracing::instrument(skip_all, fields(tenant = %novel.tenant_id, novel = %novel.id))]
    async fn update_novel(&self, novel: &Novel) -> StoreResult<()> {
        dispatch!(self, update(novel))
    }

    #[tracing::instrument(skip_all, fields(tenant = %volume.tenant_id, volume = %volume.id))]
    async fn insert_volume(&self, volume: &Volume) -> StoreResult<()> {
        dispatch!(self, insert_volume(volume))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, volume = %id))]
    async fn get_volume(&self, tenant: TenantId, id: VolumeId) -> StoreResult<Volume> {
        dispatch!(self, get_volume(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_volumes(
        &self,
        tenant: TenantId,
        novel: NovelId,
        page: PageRequest,
    ) -> StoreResult<Page<Volume>> {
        dispatch!(self, list_volumes(tenant, novel, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %volume.tenant_id, volume = %volume.id))]
    async fn update_volume(&self, volume: &Volume) -> StoreResult<()> {
        dispatch!(self, update_volume(volume))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, volume = %id))]
    async fn delete_volume(&self, tenant: TenantId, id: VolumeId) -> StoreResult<()> {
        let written = dispatch!(self, delete_volume(tenant, id));
        // Its chapters' volume_id became NULL.
        self.chapter_cache().forget_all();
        written
    }
}
