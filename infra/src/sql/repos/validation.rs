//! Validation reports: one per checked chapter version (a new check of the same version
//! replaces it); the issues are stored as JSON, the way the domain serializes them.

use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::schema::{chapters, validation_reports};
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::{ChapterValidation, ValidationReport};
use znovel_domain::ports::{StoreResult, ValidationRepository};

/// Row of `validation_reports`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = validation_reports, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct ReportRow {
    id: DbUuid,
    tenant_id: DbUuid,
    chapter_id: DbUuid,
    revision_id: Option<DbUuid>,
    issues: DbJson,
    passed: bool,
    created_at: DbTime,
    chapter_version: Option<i32>,
    complete: bool,
}

impl TryFrom<ReportRow> for ChapterValidation {
    type Error = StoreError;
    fn try_from(r: ReportRow) -> Result<Self, StoreError> {
        let issues = serde_json::from_value(r.issues.0)
            .map_err(|e| StoreError::Internal(format!("stored issues: {e}")))?;
        Ok(ChapterValidation {
            id: r.id.0,
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            chapter_id: ChapterId::from_uuid(r.chapter_id.0),
            chapter_version: r.chapter_version.unwrap_or(0),
            report: ValidationReport {
                issues,
                complete: r.complete,
            },
            created_at: r.created_at.0,
        })
    }
}

per_backend! {
    pub(crate) async fn save(conn: &mut Conn, v: &ChapterValidation) -> StoreResult<()> {
        let issues = serde_json::to_value(&v.report.issues)
            .map_err(|e| StoreError::Internal(format!("issues: {e}")))?;
        tx!(conn, Some(v.tenant_id), Write, {
            chapters::table
                .filter(chapters::id.eq(v.chapter_id.db()))
                .filter(chapters::tenant_id.eq(v.tenant_id.db()))
                .select(chapters::id)
                .first::<DbUuid>(conn)
                .await
                .map_err(db_err)?;
            diesel::delete(
                validation_reports::table
                    .filter(validation_reports::tenant_id.eq(v.tenant_id.db()))
                    .filter(validation_reports::chapter_id.eq(v.chapter_id.db()))
                    .filter(validation_reports::chapter_version.eq(v.chapter_version)),
            )
            .execute(conn)
            .await
            .map_err(db_err)?;
            diesel::insert_into(validation_reports::table)
                .values(ReportRow {
                    id: v.id.db(),
                    tenant_id: v.tenant_id.db(),
                    chapter_id: v.chapter_id.db(),
                    revision_id: None,
                    issues: DbJson(issues),
                    passed: v.report.passed(),
                    created_at: DbTime(v.created_at),
                    chapter_version: Some(v.chapter_version),
                    complete: v.report.complete,
                })
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
    ) -> StoreResult<Option<ChapterValidation>> {
        tx!(conn, Some(tenant), Read, {
            let row: Option<ReportRow> = validation_reports::table
                .filter(validation_reports::tenant_id.eq(tenant.db()))
                .filter(validation_reports::chapter_id.eq(chapter.db()))
                .filter(validation_reports::chapter_version.eq(version))
                .order(validation_reports::created_at.desc())
                .select(ReportRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_err)?;
            row.map(ChapterValidation::try_from).transpose()
        })
    }
}

#[async_trait]
impl ValidationRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %report.tenant_id, chapter = %report.chapter_id))]
    async fn save_validation(&self, report: &ChapterValidation) -> StoreResult<()> {
        dispatch!(self, save(report))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, chapter = %chapter))]
    async fn get_validation(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
    ) -> StoreResult<Option<ChapterValidation>> {
        dispatch!(self, get(tenant, chapter, version))
    }
}
