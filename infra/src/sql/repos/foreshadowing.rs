//! Foreshadowing threads.

use super::{cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::ForeshadowingRow;
use crate::sql::schema::foreshadowing;
use crate::sql::types::{DbTime, DbUuid, ToDb, opt_db};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{ForeshadowingId, NovelId, TenantId};
use znovel_domain::model::{Foreshadowing, ForeshadowingStatus};
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{ForeshadowingRepository, StoreResult};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, f: &Foreshadowing) -> StoreResult<()> {
        tx!(conn, Some(f.tenant_id), Write, {
            diesel::insert_into(foreshadowing::table)
                .values(ForeshadowingRow::from(f))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        id: ForeshadowingId,
    ) -> StoreResult<Foreshadowing> {
        tx!(conn, Some(tenant), Read, {
            foreshadowing::table
                .filter(foreshadowing::id.eq(id.db()))
                .filter(foreshadowing::tenant_id.eq(tenant.db()))
                .select(ForeshadowingRow::as_select())
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
        status: Option<ForeshadowingStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Foreshadowing>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let mut q = foreshadowing::table
                    .filter(foreshadowing::tenant_id.eq(tenant.db()))
                    .filter(foreshadowing::novel_id.eq(novel.db()))
                    .into_boxed::<Db>();
                if let Some(status) = status {
                    q = q.filter(foreshadowing::status.eq(status.as_str()));
                }
                q
            };
            let mut q = scope()
                .select(ForeshadowingRow::as_select())
                .order(foreshadowing::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(foreshadowing::id.eq(after))
                    .select(foreshadowing::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(foreshadowing::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn update(conn: &mut Conn, f: &Foreshadowing) -> StoreResult<()> {
        tx!(conn, Some(f.tenant_id), Write, {
            let rows = diesel::update(
                foreshadowing::table
                    .filter(foreshadowing::id.eq(f.id.db()))
                    .filter(foreshadowing::tenant_id.eq(f.tenant_id.db())),
            )
            .set((
                foreshadowing::title.eq(&f.title),
                foreshadowing::description.eq(&f.description),
                foreshadowing::planted_chapter_id.eq(opt_db(f.planted_chapter_id)),
                foreshadowing::expected_payoff.eq(&f.expected_payoff),
                foreshadowing::resolved_chapter_id.eq(opt_db(f.resolved_chapter_id)),
                foreshadowing::status.eq(f.status.as_str()),
                foreshadowing::origin.eq(f.provenance.origin.as_str()),
                foreshadowing::origin_chapter_id.eq(opt_db(f.provenance.chapter_id)),
                foreshadowing::span_start.eq(f.provenance.span_start),
                foreshadowing::span_end.eq(f.provenance.span_end),
                foreshadowing::updated_at.eq(DbTime(f.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn delete(
        conn: &mut Conn,
        tenant: TenantId,
        id: ForeshadowingId,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::delete(
                foreshadowing::table
                    .filter(foreshadowing::id.eq(id.db()))
                    .filter(foreshadowing::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }
}

#[async_trait]
impl ForeshadowingRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %item.tenant_id, thread = %item.id))]
    async fn insert_foreshadowing(&self, item: &Foreshadowing) -> StoreResult<()> {
        dispatch!(self, insert(item))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, thread = %id))]
    async fn get_foreshadowing(
        &self,
        tenant: TenantId,
        id: ForeshadowingId,
    ) -> StoreResult<Foreshadowing> {
        dispatch!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_foreshadowing(
        &self,
        tenant: TenantId,
        novel: NovelId,
        status: Option<ForeshadowingStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Foreshadowing>> {
        dispatch!(self, list(tenant, novel, status, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %item.tenant_id, thread = %item.id))]
    async fn update_foreshadowing(&self, item: &Foreshadowing) -> StoreResult<()> {
        dispatch!(self, update(item))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, thread = %id))]
    async fn delete_foreshadowing(&self, tenant: TenantId, id: ForeshadowingId) -> StoreResult<()> {
        dispatch!(self, delete(tenant, id))
    }
}
