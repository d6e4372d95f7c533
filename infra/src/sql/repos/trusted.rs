//! Trusted documents. Global rows (not tenant-owned): no row-level security, no tenant
//! transaction.

use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::TrustedDocumentRow;
use crate::sql::schema::trusted_documents;
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::model::{DocumentHash, TrustedDocument};
use znovel_domain::ports::{StoreResult, TrustedDocumentRepository};

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, doc: &TrustedDocument) -> StoreResult<bool> {
        let n = diesel::insert_into(trusted_documents::table)
            .values(TrustedDocumentRow::from(doc))
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map_err(db_err)?;
        Ok(n > 0)
    }

    pub(crate) async fn find(
        conn: &mut Conn,
        hash: &DocumentHash,
    ) -> StoreResult<Option<TrustedDocument>> {
        trusted_documents::table
            .find(hash.as_str())
            .select(TrustedDocumentRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(db_err)?
            .map(TrustedDocument::try_from)
            .transpose()
    }

    pub(crate) async fn all(conn: &mut Conn) -> StoreResult<Vec<TrustedDocument>> {
        let rows = trusted_documents::table
            .select(TrustedDocumentRow::as_select())
            .order((trusted_documents::registered_at.asc(), trusted_documents::sha256.asc()))
            .load(conn)
            .await
            .map_err(db_err)?;
        crate::sql::repos::convert(rows)
    }
}

#[async_trait]
impl TrustedDocumentRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(hash = %doc.hash))]
    async fn register_trusted_document(&self, doc: &TrustedDocument) -> StoreResult<bool> {
        dispatch!(self, insert(doc))
    }

    #[tracing::instrument(skip_all, fields(hash = %hash))]
    async fn find_trusted_document(
        &self,
        hash: &DocumentHash,
    ) -> StoreResult<Option<TrustedDocument>> {
        dispatch!(self, find(hash))
    }

    #[tracing::instrument(skip_all)]
    async fn list_trusted_documents(&self) -> StoreResult<Vec<TrustedDocument>> {
        dispatch!(self, all())
    }
}
