//! Stored files, bytes included (BYTEA on PostgreSQL, BLOB on SQLite). Reading a file's
//! metadata never loads its bytes.

use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::repos::{cursor, page_of, touched};
use crate::sql::schema::{files, novels};
use crate::sql::types::{DbTime, DbUuid, ToDb, opt_db};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::StoredFile;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::{FileRepository, StoreResult};

/// Row of `files` without its bytes.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = files, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct FileRow {
    id: DbUuid,
    tenant_id: DbUuid,
    novel_id: DbUuid,
    job_id: Option<DbUuid>,
    name: String,
    content_type: String,
    size: i64,
    created_by: Option<DbUuid>,
    created_at: DbTime,
}

/// A new row of `files`, bytes included.
#[derive(Insertable)]
#[diesel(table_name = files)]
struct NewFile<'a> {
    id: DbUuid,
    tenant_id: DbUuid,
    novel_id: DbUuid,
    job_id: Option<DbUuid>,
    name: &'a str,
    content_type: &'a str,
    size: i64,
    content: &'a [u8],
    created_by: Option<DbUuid>,
    created_at: DbTime,
}

impl TryFrom<FileRow> for StoredFile {
    type Error = StoreError;
    fn try_from(r: FileRow) -> Result<Self, StoreError> {
        Ok(StoredFile {
            id: FileId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            job_id: r.job_id.map(|j| JobId::from_uuid(j.0)),
            name: r.name,
            content_type: r.content_type,
            size: r.size,
            created_by: r.created_by.map(|u| UserId::from_uuid(u.0)),
            created_at: r.created_at.0,
        })
    }
}

per_backend! {
    pub(crate) async fn insert(conn: &mut Conn, f: &StoredFile, bytes: &[u8]) -> StoreResult<()> {
        if f.size != bytes.len() as i64 {
            return Err(StoreError::Internal(format!(
                "file size {} does not match its {} bytes",
                f.size,
                bytes.len()
            )));
        }
        tx!(conn, Some(f.tenant_id), Write, {
            novels::table
                .filter(novels::id.eq(f.novel_id.db()))
                .filter(novels::tenant_id.eq(f.tenant_id.db()))
                .select(novels::id)
                .first::<DbUuid>(conn)
                .await
                .map_err(db_err)?;
            diesel::insert_into(files::table)
                .values(NewFile {
                    id: f.id.db(),
                    tenant_id: f.tenant_id.db(),
                    novel_id: f.novel_id.db(),
                    job_id: opt_db(f.job_id),
                    name: &f.name,
                    content_type: &f.content_type,
                    size: f.size,
                    content: bytes,
                    created_by: opt_db(f.created_by),
                    created_at: DbTime(f.created_at),
                })
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(conn: &mut Conn, tenant: TenantId, id: FileId) -> StoreResult<StoredFile> {
        tx!(conn, Some(tenant), Read, {
            let row: FileRow = files::table
                .filter(files::id.eq(id.db()))
                .filter(files::tenant_id.eq(tenant.db()))
                .select(FileRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?;
            StoredFile::try_from(row)
        })
    }

    pub(crate) async fn content(conn: &mut Conn, tenant: TenantId, id: FileId) -> StoreResult<Vec<u8>> {
        tx!(conn, Some(tenant), Read, {
            files::table
                .filter(files::id.eq(id.db()))
                .filter(files::tenant_id.eq(tenant.db()))
                .select(files::content)
                .first::<Vec<u8>>(conn)
                .await
                .map_err(db_err)
        })
    }

    pub(crate) async fn by_job(
        conn: &mut Conn,
        tenant: TenantId,
        job: JobId,
    ) -> StoreResult<Option<StoredFile>> {
        tx!(conn, Some(tenant), Read, {
            let row: Option<FileRow> = files::table
                .filter(files::job_id.eq(job.db()))
                .filter(files::tenant_id.eq(tenant.db()))
                .order(files::id.desc())
                .select(FileRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_err)?;
            row.map(StoredFile::try_from).transpose()
        })
    }

    pub(crate) async fn list(
        conn: &mut Conn,
        tenant: TenantId,
        novel: NovelId,
        page: PageRequest,
    ) -> StoreResult<Page<StoredFile>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                files::table
                    .filter(files::tenant_id.eq(tenant.db()))
                    .filter(files::novel_id.eq(novel.db()))
                    .into_boxed::<Db>()
            };
            let mut q = scope()
                .select(FileRow::as_select())
                .order(files::id.desc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(files::id.eq(after))
                    .select(files::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(files::id.lt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn delete(conn: &mut Conn, tenant: TenantId, id: FileId) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::delete(
                files::table
                    .filter(files::id.eq(id.db()))
                    .filter(files::tenant_id.eq(tenant.db())),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            touched(rows)
        })
    }

    pub(crate) async fn bytes_used(conn: &mut Conn, tenant: TenantId) -> StoreResult<i64> {
        tx!(conn, Some(tenant), Read, {
            let sizes: Vec<i64> = files::table
                .filter(files::tenant_id.eq(tenant.db()))
                .select(files::size)
                .load(conn)
                .await
                .map_err(db_err)?;
            Ok(sizes.iter().sum())
        })
    }
}

#[async_trait]
impl FileRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %file.tenant_id, file = %file.id, size = file.size))]
    async fn insert_file(&self, file: &StoredFile, bytes: &[u8]) -> StoreResult<()> {
        dispatch!(self, insert(file, bytes))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, file = %id))]
    async fn get_file(&self, tenant: TenantId, id: FileId) -> StoreResult<StoredFile> {
        dispatch!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, file = %id))]
    async fn get_file_content(&self, tenant: TenantId, id: FileId) -> StoreResult<Vec<u8>> {
        dispatch!(self, content(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, job = %job))]
    async fn find_file_by_job(
        &self,
        tenant: TenantId,
        job: JobId,
    ) -> StoreResult<Option<StoredFile>> {
        dispatch!(self, by_job(tenant, job))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_files(
        &self,
        tenant: TenantId,
        novel: NovelId,
        page: PageRequest,
    ) -> StoreResult<Page<StoredFile>> {
        dispatch!(self, list(tenant, novel, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, file = %id))]
    async fn delete_file(&self, tenant: TenantId, id: FileId) -> StoreResult<()> {
        dispatch!(self, delete(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn file_bytes_used(&self, tenant: TenantId) -> StoreResult<i64> {
        dispatch!(self, bytes_used(tenant))
    }
}
