//! Relations between entities.

use super::{cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::RelationRow;
use crate::sql::schema::relations;
use crate::sql::types::{DbTime, DbUuid, ToDb, opt_db};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{EntityId, RelationId, TenantId};
use znovel_domain::model::Relation;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{RelationRepository, StoreResult};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, r: &Relation) -> StoreResult<()> {
        tx!(conn, Some(r.tenant_id), Write, {
            diesel::insert_into(relations::table)
                .values(RelationRow::from(r))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        id: RelationId,
    ) -> StoreResult<Relation> {
        tx!(conn, Some(tenant), Read, {
            relations::table
                .filter(relations::id.eq(id.db()))
                .filter(relations::tenant_id.eq(tenant.db()))
                .select(RelationRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        entity: EntityId,
        page: PageRequest,
    ) -> StoreResult<Page<Relation>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                relations::table
                    .filter(relations::tenant_id.eq(tenant.db()))
                    .filter(
                        relations::source_id
                            .eq(entity.db())
                            .or(relations::target_id.eq(entity.db())),
                    )
                    .into_boxed::<Db>()
            };
            let mut q = scope()
                .select(RelationRow::as_select())
                .order(relations::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(relations::id.eq(after))
                    .select(relations::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(relations::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn update(conn: &mut Conn, r: &Relation) -> StoreResult<()> {
        tx!(conn, Some(r.tenant_id), Write, {
            let rows = diesel::update(
                relations::table
                    .filter(relations::id.eq(r.id.db()))
                    .filter(relations::tenant_id.eq(r.tenant_id.db())),
            )
            .set((
                relations::kind.eq(&r.kind),
                relations::strength.eq(r.strength),
                relations::description.eq(&r.description),
                relations::since_chapter_id.eq(opt_db(r.since_chapter_id)),
                relations::origin.eq(r.provenance.origin.as_str()),
                relations::origin_chapter_id.eq(opt_db(r.provenance.chapter_id)),
                relations::span_start.eq(r.provenance.span_start),
                relations::span_end.eq(r.provenance.span_end),
                relations::updated_at.eq(DbTime(r.updated_at)),
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
        id: RelationId,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::delete(
                relations::table
                    .filter(relations::id.eq(id.db()))
                    .filter(relations::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }
}

#[async_trait]
impl RelationRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %relation.tenant_id, relation = %relation.id))]
    async fn insert_relation(&self, relation: &Relation) -> StoreResult<()> {
        dispatch!(self, insert(relation))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, relation = %id))]
    async fn get_relation(&self, tenant: TenantId, id: RelationId) -> StoreResult<Relation> {
        dispatch!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, entity = %entity))]
    async fn list_relations(
        &self,
        tenant: TenantId,
        entity: EntityId,
        page: PageRequest,
    ) -> StoreResult<Page<Relation>> {
        dispatch!(self, list(tenant, entity, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %relation.tenant_id, relation = %relation.id))]
    async fn update_relation(&self, relation: &Relation) -> StoreResult<()> {
        dispatch!(self, update(relation))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, relation = %id))]
    async fn delete_relation(&self, tenant: TenantId, id: RelationId) -> StoreResult<()> {
        dispatch!(self, delete(tenant, id))
    }
}
