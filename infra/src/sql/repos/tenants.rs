//! Tenants. The tenants table is not tenant-owned data: no row-level security, no tenant
//! transaction.

use super::touched;
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::TenantRow;
use crate::sql::schema::tenants;
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::TenantId;
use znovel_domain::model::Tenant;
use znovel_domain::ports::{StoreResult, TenantRepository};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, t: &Tenant) -> StoreResult<()> {
        diesel::insert_into(tenants::table)
            .values(TenantRow::from(t))
            .execute(conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(crate) async fn get(conn: &mut Conn, id: TenantId) -> StoreResult<Tenant> {
        tenants::table
            .find(id.db())
            .select(TenantRow::as_select())
            .first(conn)
            .await
            .map_err(db_err)?
            .try_into()
    }

    pub(crate) async fn by_slug(conn: &mut Conn, slug: &str) -> StoreResult<Tenant> {
        tenants::table
            .filter(tenants::slug.eq(slug))
            .select(TenantRow::as_select())
            .first(conn)
            .await
            .map_err(db_err)?
            .try_into()
    }

    pub(crate) async fn ids(conn: &mut Conn) -> StoreResult<Vec<TenantId>> {
        let ids: Vec<DbUuid> = tenants::table
            .select(tenants::id)
            .order(tenants::id.asc())
            .load(conn)
            .await
            .map_err(db_err)?;
        Ok(ids.into_iter().map(|id| TenantId::from_uuid(id.0)).collect())
    }

    pub(crate) async fn update(conn: &mut Conn, t: &Tenant) -> StoreResult<()> {
        let n = diesel::update(tenants::table.find(t.id.db()))
            .set((
                tenants::name.eq(&t.name),
                tenants::status.eq(t.status.as_str()),
                tenants::max_novels.eq(t.quota.max_novels),
                tenants::max_chapters_per_novel.eq(t.quota.max_chapters_per_novel),
                tenants::max_tokens_per_day.eq(t.quota.max_tokens_per_day),
                tenants::max_file_bytes.eq(t.quota.max_file_bytes),
                tenants::settings.eq(DbJson(t.settings.clone())),
                tenants::updated_at.eq(DbTime(t.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
        touched(n)
    }
}

#[async_trait]
impl TenantRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant.id))]
    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        dispatch!(self, insert(tenant))
    }

    #[tracing::instrument(skip_all, fields(tenant = %id))]
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        dispatch_point!(self, get(id))
    }

    #[tracing::instrument(skip_all)]
    async fn find_tenant_by_slug(&self, slug: &str) -> StoreResult<Tenant> {
        dispatch!(self, by_slug(slug))
    }

    #[tracing::instrument(skip_all)]
    async fn tenant_ids(&self) -> StoreResult<Vec<TenantId>> {
        dispatch!(self, ids())
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant.id))]
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        dispatch!(self, update(tenant))
    }
}
