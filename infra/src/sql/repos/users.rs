//! Users of a tenant.

use super::{cursor, page_of, touched};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::UserRow;
use crate::sql::schema::users;
use crate::sql::types::{DbTime, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::{TenantId, UserId};
use znovel_domain::model::User;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{StoreResult, UserRepository};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, u: &User) -> StoreResult<()> {
        tx!(conn, Some(u.tenant_id), Write, {
            diesel::insert_into(users::table)
                .values(UserRow::from(u))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(conn: &mut Conn, tenant: TenantId, id: UserId) -> StoreResult<User> {
        tx!(conn, Some(tenant), Read, {
            users::table
                .filter(users::id.eq(id.db()))
                .filter(users::tenant_id.eq(tenant.db()))
                .select(UserRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn by_email(
        conn: &mut Conn,
        tenant: TenantId,
        email: &str,
    ) -> StoreResult<User> {
        let email = email.to_lowercase();
        tx!(conn, Some(tenant), Read, {
            users::table
                .filter(users::tenant_id.eq(tenant.db()))
                .filter(users::email.eq(&email))
                .select(UserRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<User>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || users::table.filter(users::tenant_id.eq(tenant.db())).into_boxed::<Db>();
            let mut q = scope()
                .select(UserRow::as_select())
                .order(users::id.asc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(users::id.eq(after))
                    .select(users::id)
                    .first::<crate::sql::types::DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(users::id.gt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn update(conn: &mut Conn, u: &User) -> StoreResult<()> {
        tx!(conn, Some(u.tenant_id), Write, {
            let n = diesel::update(
                users::table
                    .filter(users::id.eq(u.id.db()))
                    .filter(users::tenant_id.eq(u.tenant_id.db())),
            )
            .set((
                users::email.eq(&u.email),
                users::display_name.eq(&u.display_name),
                users::role.eq(u.role.as_str()),
                users::updated_at.eq(DbTime(u.updated_at)),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(n)
        })
    }
}

#[async_trait]
impl UserRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %user.tenant_id, user = %user.id))]
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        dispatch!(self, insert(user))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, user = %id))]
    async fn get_user(&self, tenant: TenantId, id: UserId) -> StoreResult<User> {
        dispatch_point!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn find_user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<User> {
        dispatch!(self, by_email(tenant, email))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_users(&self, tenant: TenantId, page: PageRequest) -> StoreResult<Page<User>> {
        dispatch!(self, list(tenant, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %user.tenant_id, user = %user.id))]
    async fn update_user(&self, user: &User) -> StoreResult<()> {
        dispatch!(self, update(user))
    }
}
