//! Rows of generation jobs and of the daily usage records.

use super::enum_from;
use crate::sql::error::corrupt;
use crate::sql::schema::{generation_jobs, usage_records};
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb, opt_db};
use chrono::NaiveDate;
use diesel::prelude::*;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;

/// A row of `generation_jobs`. `result` holds `{"progress": {"done", "total"}}` for jobs
/// that report progress (IMPORT), else NULL.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = generation_jobs,
    check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite)
)]
pub struct JobRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub novel_id: DbUuid,
    pub chapter_id: Option<DbUuid>,
    pub kind: String,
    pub status: String,
    pub priority: i32,
    pub input: DbJson,
    pub idempotency_key: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub fallback_used: bool,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub queued_at: DbTime,
    pub started_at: Option<DbTime>,
    pub first_token_at: Option<DbTime>,
    pub finished_at: Option<DbTime>,
    pub attempts: i32,
    pub error: Option<String>,
    pub result: Option<DbJson>,
    pub created_by: Option<DbUuid>,
    pub context: DbJson,
}

impl TryFrom<&GenerationJob> for JobRow {
    type Error = StoreError;
    fn try_from(j: &GenerationJob) -> Result<Self, StoreError> {
        let input = serde_json::to_value(&j.input)
            .map_err(|e| StoreError::Internal(format!("serializing a job input: {e}")))?;
        let context = serde_json::to_value(&j.context)
            .map_err(|e| StoreError::Internal(format!("serializing a job context: {e}")))?;
        Ok(Self {
            id: j.id.db(),
            tenant_id: j.tenant_id.db(),
            novel_id: j.novel_id.db(),
            chapter_id: opt_db(j.chapter_id),
            kind: j.kind.as_str().to_owned(),
            status: j.status.as_str().to_owned(),
            priority: j.priority,
            input: DbJson(input),
            idempotency_key: j.idempotency_key.clone(),
            provider: j.provider.clone(),
            model: j.model.clone(),
            fallback_used: j.fallback_used,
            prompt_tokens: j.prompt_tokens,
            completion_tokens: j.completion_tokens,
            queued_at: DbTime(j.queued_at),
            started_at: j.started_at.map(DbTime),
            first_token_at: j.first_token_at.map(DbTime),
            finished_at: j.finished_at.map(DbTime),
            attempts: j.attempts,
            error: j.error.clone(),
            result: progress_json(j.progress)?,
            created_by: opt_db(j.created_by),
            context: DbJson(context),
        })
    }
}

impl TryFrom<JobRow> for GenerationJob {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(GenerationJob {
            id: JobId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            novel_id: NovelId::from_uuid(r.novel_id.0),
            chapter_id: r.chapter_id.map(|c| ChapterId::from_uuid(c.0)),
            kind: enum_from("job kind", &r.kind, JobKind::parse)?,
            status: enum_from("job status", &r.status, JobStatus::parse)?,
            priority: r.priority,
            input: serde_json::from_value(r.input.0).map_err(|e| corrupt("job input", e))?,
            idempotency_key: r.idempotency_key,
            provider: r.provider,
            model: r.model,
            fallback_used: r.fallback_used,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            queued_at: r.queued_at.0,
            started_at: r.started_at.map(|t| t.0),
            first_token_at: r.first_token_at.map(|t| t.0),
            finished_at: r.finished_at.map(|t| t.0),
            attempts: r.attempts,
            error: r.error,
            created_by: r.created_by.map(|u| UserId::from_uuid(u.0)),
            context: serde_json::from_value(r.context.0).map_err(|e| corrupt("job context", e))?,
            progress: match r.result {
                Some(DbJson(v)) => match v.get("progress") {
                    Some(p) if !p.is_null() => Some(
                        serde_json::from_value(p.clone())
                            .map_err(|e| corrupt("job progress", e))?,
                    ),
                    _ => None,
                },
                None => None,
            },
        })
    }
}

/// A row of `usage_records`: a tenant's tokens of one model on one UTC day.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = usage_records,
    check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite)
)]
pub struct UsageRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub day: NaiveDate,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub updated_at: DbTime,
}

/// The `result` column of a job with `progress`.
pub fn progress_json(progress: Option<JobProgress>) -> Result<Option<DbJson>, StoreError> {
    progress
        .map(|p| {
            serde_json::to_value(p)
                .map(|v| DbJson(serde_json::json!({ "progress": v })))
                .map_err(|e| StoreError::Internal(format!("serializing a job progress: {e}")))
        })
        .transpose()
}
