//! The audit log: append-only, listed newest first.

use super::{cursor, page_of};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::AuditRow;
use crate::sql::schema::audit_logs;
use crate::sql::types::{DbUuid, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::ids::TenantId;
use znovel_domain::model::AuditEntry;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{AuditRepository, StoreResult};

per_backend! {
    pub(crate) async fn append(conn: &mut Conn, e: &AuditEntry) -> StoreResult<()> {
        tx!(conn, Some(e.tenant_id), Write, {
            diesel::insert_into(audit_logs::table)
                .values(AuditRow::from(e))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                audit_logs::table
                    .filter(audit_logs::tenant_id.eq(tenant.db()))
                    .into_boxed::<Db>()
            };
            let mut q = scope()
                .select(AuditRow::as_select())
                .order(audit_logs::id.desc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(audit_logs::id.eq(after))
                    .select(audit_logs::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(audit_logs::id.lt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }
}

#[async_trait]
impl AuditRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %entry.tenant_id, action = %entry.action))]
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        dispatch!(self, append(entry))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_audit(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        dispatch!(self, list(tenant, page))
    }
}
