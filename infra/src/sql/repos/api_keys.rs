//! API keys (only their hash is stored).

use super::{cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::ApiKeyRow;
use crate::sql::schema::api_keys;
use crate::sql::types::{DbTime, DbUuid, ToDb};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::StoreError;
use znovel_domain::ids::{ApiKeyId, TenantId, UserId};
use znovel_domain::model::ApiKey;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{ApiKeyRepository, StoreResult};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, k: &ApiKey) -> StoreResult<()> {
        tx!(conn, Some(k.tenant_id), Write, {
            diesel::insert_into(api_keys::table)
                .values(ApiKeyRow::from(k))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> StoreResult<ApiKey> {
        tx!(conn, Some(tenant), Read, {
            api_keys::table
                .filter(api_keys::id.eq(id.db()))
                .filter(api_keys::tenant_id.eq(tenant.db()))
                .select(ApiKeyRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn by_hash(
        conn: &mut Conn,
        tenant: TenantId,
        hash: &str,
    ) -> StoreResult<ApiKey> {
        tx!(conn, Some(tenant), Read, {
            api_keys::table
                .filter(api_keys::tenant_id.eq(tenant.db()))
                .filter(api_keys::secret_hash.eq(hash))
                .select(ApiKeyRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        user: Option<UserId>,
        page: PageRequest,
    ) -> StoreResult<Page<ApiKey>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let mut q = api_keys::table
                    .filter(api_keys::tenant_id.eq(tenant.db()))
                    .into_boxed::<Db>();
                if let Some(user) = user {
                    q = q.filter(api_keys::user_id.eq(user.db()));
                }
                q
            };
            let mut q = scope()
                .select(ApiKeyRow::as_select())
                .order(api_keys::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(api_keys::id.eq(after))
                    .select(api_keys::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(api_keys::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn revoke(
        conn: &mut Conn,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let key = api_keys::table
                .filter(api_keys::id.eq(id.db()))
                .filter(api_keys::tenant_id.eq(tenant.db()));
            // An earlier revocation stands: only set when unrevoked or revoked later.
            let n = diesel::update(key)
                .filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(DbTime(at))))
                .set(api_keys::revoked_at.eq(DbTime(at)))
                .execute(conn)
                .await
                .map_err(db_err)?;
            if n > 0 {
                return Ok(());
            }
            let exists: i64 = key.count().get_result(conn).await.map_err(db_err)?;
            if exists > 0 { Ok(()) } else { Err(StoreError::NotFound) }
        })
    }

    pub(crate) async fn touch(
        conn: &mut Conn,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let n = diesel::update(
                api_keys::table
                    .filter(api_keys::id.eq(id.db()))
                    .filter(api_keys::tenant_id.eq(tenant.db())),
            )
            .set(api_keys::last_used_at.eq(DbTime(at)))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(n)
        })
    }
}

#[async_trait]
impl ApiKeyRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %key.tenant_id, key = %key.id))]
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        dispatch!(self, insert(key))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, key = %id))]
    async fn get_api_key(&self, tenant: TenantId, id: ApiKeyId) -> StoreResult<ApiKey> {
        dispatch!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn find_api_key_by_hash(&self, tenant: TenantId, hash: &str) -> StoreResult<ApiKey> {
        dispatch!(self, by_hash(tenant, hash))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_api_keys(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        page: PageRequest,
    ) -> StoreResult<Page<ApiKey>> {
        dispatch!(self, list(tenant, user, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, key = %id))]
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, revoke(tenant, id, at))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, key = %id))]
    async fn touch_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, touch(tenant, id, at))
    }
}
