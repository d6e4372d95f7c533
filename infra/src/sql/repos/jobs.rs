//! Generation jobs, and the daily usage records their results add to.
//!
//! Every state change is one conditional UPDATE on the job row (`WHERE status …`), so two
//! workers (or a worker and a cancelling user) racing on a job are safe on both backends:
//! PostgreSQL re-checks the condition on the row version the first writer committed (the
//! second waits on its row lock), and SQLite serializes writers (`BEGIN IMMEDIATE`). When
//! the UPDATE touches no row, a read of the stored status tells `Conflict` (the job is in
//! the wrong state) from `NotFound` (no such job in the tenant).

use super::chapters::SaveContentIn;
use super::{cursor, page_of};
use crate::sql::SqlStore;
use crate::sql::error::db_err;
use crate::sql::rows::{JobRow, UsageRow, enum_from};
use crate::sql::schema::{generation_jobs, usage_records};
use crate::sql::types::{DbJson, DbTime, DbUuid, SqlTimestamp, ToDb};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use uuid::Uuid;
use znovel_domain::StoreError;
use znovel_domain::ids::{JobId, NovelId, TenantId};
use znovel_domain::model::{
    Chapter, ChapterRevision, GenerationJob, JobProgress, JobStatus, RecallHit,
};
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::TenantRepository;
use znovel_domain::ports::{JobRepository, StoreResult, TokenUsage};
use znovel_domain::services::now;

/// The statuses a worker may (re)start a job from.
const STARTABLE: [&str; 2] = [JobStatus::Queued.as_str(), JobStatus::Running.as_str()];

/// The final statuses: no worker touches such a job again.
const FINAL: [&str; 3] = [
    JobStatus::Succeeded.as_str(),
    JobStatus::Failed.as_str(),
    JobStatus::Cancelled.as_str(),
];

/// The usage record's model when the job names none.
const UNKNOWN_MODEL: &str = "unknown";

/// The tokens (prompt + completion) of the selected usage records.
const TOKENS_SUM: &str = "CAST(COALESCE(SUM(usage_records.prompt_tokens \
     + usage_records.completion_tokens), 0) AS BIGINT)";

diesel::define_sql_function! {
    /// `COALESCE(a, b)` of two nullable timestamps.
    fn coalesce(a: Nullable<SqlTimestamp>, b: Nullable<SqlTimestamp>) -> Nullable<SqlTimestamp>;
}

per_backend! {
    /// The stored status of a job in the tenant, if there is such a job.
    async fn stored_status(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
    ) -> QueryResult<Option<String>> {
        generation_jobs::table
            .filter(generation_jobs::id.eq(id.db()))
            .filter(generation_jobs::tenant_id.eq(tenant.db()))
            .select(generation_jobs::status)
            .first::<String>(conn)
            .await
            .optional()
    }

    /// The error of a conditional job UPDATE that touched no row: `NotFound` when the job
    /// does not exist in the tenant, else `Conflict` naming its status and `wanted`.
    async fn state_error(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
        wanted: &str,
    ) -> StoreError {
        match stored_status(conn, tenant, id).await {
            Ok(Some(status)) => {
                StoreError::Conflict(format!("the job is {status}, not {wanted}"))
            }
            Ok(None) => StoreError::NotFound,
            Err(e) => db_err(e),
        }
    }

    pub(crate) async fn insert(conn: &mut Conn, j: &GenerationJob) -> StoreResult<()> {
        let row = JobRow::try_from(j)?;
        tx!(conn, Some(j.tenant_id), Write, {
            diesel::insert_into(generation_jobs::table)
                .values(row)
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    pub(crate) async fn get(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
    ) -> StoreResult<GenerationJob> {
        tx!(conn, Some(tenant), Read, {
            generation_jobs::table
                .filter(generation_jobs::id.eq(id.db()))
                .filter(generation_jobs::tenant_id.eq(tenant.db()))
                .select(JobRow::as_select())
                .first(conn)
                .await
                .map_err(db_err)?
                .try_into()
        })
    }

    pub(crate) async fn status(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
    ) -> StoreResult<JobStatus> {
        tx!(conn, Some(tenant), Read, {
            let status = stored_status(conn, tenant, id)
                .await
                .map_err(db_err)?
                .ok_or(StoreError::NotFound)?;
            enum_from("job status", &status, JobStatus::parse)
        })
    }

    pub(crate) async fn by_idempotency_key(
        conn: &mut Conn,
        tenant: TenantId,
        key: &str,
    ) -> StoreResult<GenerationJob> {
        tx!(conn, Some(tenant), Read, {
            generation_jobs::table
                .filter(generation_jobs::tenant_id.eq(tenant.db()))
                .filter(generation_jobs::idempotency_key.eq(key))
                .select(JobRow::as_select())
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
        status: Option<JobStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<GenerationJob>> {
        tx!(conn, Some(tenant), Read, {
            let scope = || {
                let q = generation_jobs::table
                    .filter(generation_jobs::tenant_id.eq(tenant.db()))
                    .filter(generation_jobs::novel_id.eq(novel.db()))
                    .into_boxed::<Db>();
                match status {
                    Some(status) => q.filter(generation_jobs::status.eq(status.as_str())),
                    None => q,
                }
            };
            let mut q = scope()
                .select(JobRow::as_select())
                .order(generation_jobs::id.desc())
                .limit(page.fetch_limit());
            if let Some(after) = cursor(&page) {
                let found = scope()
                    .filter(generation_jobs::id.eq(after))
                    .select(generation_jobs::id)
                    .first::<DbUuid>(conn)
                    .await
                    .optional()
                    .map_err(db_err)?;
                let Some(after) = found else {
                    return Ok(Page::from_rows(Vec::new(), &page));
                };
                q = q.filter(generation_jobs::id.lt(after));
            }
            page_of(q.load(conn).await.map_err(db_err)?, &page)
        })
    }

    pub(crate) async fn start(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<GenerationJob> {
        tx!(conn, Some(tenant), Write, {
            let row: Option<JobRow> = diesel::update(
                generation_jobs::table
                    .filter(generation_jobs::id.eq(id.db()))
                    .filter(generation_jobs::tenant_id.eq(tenant.db()))
                    .filter(generation_jobs::status.eq_any(STARTABLE)),
            )
            .set((
                generation_jobs::status.eq(JobStatus::Running.as_str()),
                generation_jobs::attempts.eq(generation_jobs::attempts + 1),
                generation_jobs::started_at.eq(DbTime(at)),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)
            .await
            .optional()
            .map_err(db_err)?;
            match row {
                Some(row) => row.try_into(),
                None => Err(state_error(conn, tenant, id, "QUEUED or RUNNING").await),
            }
        })
    }

    pub(crate) async fn mark_first_token(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            let job = generation_jobs::table
                .filter(generation_jobs::id.eq(id.db()))
                .filter(generation_jobs::tenant_id.eq(tenant.db()));
            let rows = diesel::update(job)
                .filter(generation_jobs::first_token_at.is_null())
                .set(generation_jobs::first_token_at.eq(DbTime(at)))
                .execute(conn)
                .await
                .map_err(db_err)?;
            if rows > 0 {
                return Ok(());
            }
            let exists = job
                .select(generation_jobs::id)
                .first::<DbUuid>(conn)
                .await
                .optional()
                .map_err(db_err)?;
            exists.map(|_| ()).ok_or(StoreError::NotFound)
        })
    }

    /// One transaction: the job RUNNING → SUCCEEDED, the chapter content (exactly as
    /// `save_chapter_content`), the usage record. Any error rolls all of it back.
    pub(crate) async fn complete(
        conn: &mut Conn,
        j: &GenerationJob,
        chapter: &Chapter,
        expected_version: i32,
        rev: &ChapterRevision,
    ) -> StoreResult<()> {
        let finished = j.finished_at.unwrap_or_else(now);
        tx!(conn, Some(j.tenant_id), Write, {
            let rows = diesel::update(
                generation_jobs::table
                    .filter(generation_jobs::id.eq(j.id.db()))
                    .filter(generation_jobs::tenant_id.eq(j.tenant_id.db()))
                    .filter(generation_jobs::status.eq(JobStatus::Running.as_str())),
            )
            .set((
                generation_jobs::status.eq(JobStatus::Succeeded.as_str()),
                generation_jobs::provider.eq(&j.provider),
                generation_jobs::model.eq(&j.model),
                generation_jobs::fallback_used.eq(j.fallback_used),
                generation_jobs::prompt_tokens.eq(j.prompt_tokens),
                generation_jobs::completion_tokens.eq(j.completion_tokens),
                generation_jobs::first_token_at.eq(coalesce(
                    j.first_token_at.map(DbTime),
                    generation_jobs::first_token_at,
                )),
                generation_jobs::finished_at.eq(DbTime(finished)),
                generation_jobs::attempts.eq(j.attempts),
            ))
            .execute(conn)
            .await
            .map_err(db_err)?;
            if rows == 0 {
                return Err(state_error(conn, j.tenant_id, j.id, "RUNNING").await);
            }
            conn.save_content_in(chapter, expected_version, rev).await?;
            add_usage(conn, j, finished).await
        })
    }

    /// Adds a finished job's tokens to its tenant's usage record of the day and model
    /// (inside the caller's transaction).
    async fn add_usage(conn: &mut Conn, j: &GenerationJob, finished: DateTime<Utc>) -> StoreResult<()> {
        let model = j.model.as_deref().unwrap_or(UNKNOWN_MODEL);
        add_tokens(conn, j.tenant_id, model, j.prompt_tokens, j.completion_tokens, finished).await
    }

    /// Adds tokens to the tenant's usage record of `at`'s day and the model (inside the
    /// caller's transaction).
    async fn add_tokens(
        conn: &mut Conn,
        tenant: TenantId,
        model: &str,
        prompt_tokens: i64,
        completion_tokens: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        {
            let usage = UsageRow {
                id: Uuid::now_v7().db(),
                tenant_id: tenant.db(),
                day: at.date_naive(),
                model: model.to_owned(),
                prompt_tokens,
                completion_tokens,
                updated_at: DbTime(at),
            };
            diesel::insert_into(usage_records::table)
                .values(usage)
                .on_conflict((
                    usage_records::tenant_id,
                    usage_records::day,
                    usage_records::model,
                ))
                .do_update()
                .set((
                    usage_records::prompt_tokens
                        .eq(usage_records::prompt_tokens + excluded(usage_records::prompt_tokens)),
                    usage_records::completion_tokens.eq(usage_records::completion_tokens
                        + excluded(usage_records::completion_tokens)),
                    usage_records::updated_at.eq(excluded(usage_records::updated_at)),
                ))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        }
    }

    /// Adds tokens a job used outside its own completion (one transaction).
    pub(crate) async fn record_usage(
        conn: &mut Conn,
        tenant: TenantId,
        model: &str,
        usage: TokenUsage,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        tx!(conn, Some(tenant), Write, {
            add_tokens(conn, tenant, model, usage.prompt_tokens, usage.completion_tokens, at).await
        })
    }

    pub(crate) async fn finish(conn: &mut Conn, j: &GenerationJob) -> StoreResult<bool> {
        if !j.status.is_final() {
            return Err(StoreError::Internal(format!(
                "finish_job needs a final status, not {}",
                j.status.as_str()
            )));
        }
        let finished = j.finished_at.unwrap_or_else(now);
        tx!(conn, Some(j.tenant_id), Write, {
            let job = generation_jobs::table
                .filter(generation_jobs::id.eq(j.id.db()))
                .filter(generation_jobs::tenant_id.eq(j.tenant_id.db()));
            let rows = diesel::update(job)
                .filter(generation_jobs::status.ne_all(FINAL))
                .set((
                    generation_jobs::status.eq(j.status.as_str()),
                    generation_jobs::error.eq(&j.error),
                    generation_jobs::finished_at.eq(DbTime(finished)),
                    generation_jobs::attempts.eq(j.attempts),
                    generation_jobs::provider.eq(&j.provider),
                    generation_jobs::model.eq(&j.model),
                    generation_jobs::fallback_used.eq(j.fallback_used),
                    generation_jobs::prompt_tokens.eq(j.prompt_tokens),
                    generation_jobs::completion_tokens.eq(j.completion_tokens),
                    generation_jobs::first_token_at.eq(coalesce(
                        j.first_token_at.map(DbTime),
                        generation_jobs::first_token_at,
                    )),
                ))
                .execute(conn)
                .await
                .map_err(db_err)?;
            if rows > 0 {
                // A job that succeeded without writing a chapter (memory, validation)
                // still used its model's tokens.
                // A batch's tokens are its children's, counted when they completed.
                if j.status == JobStatus::Succeeded
                    && j.input.batch.is_none()
                    && j.prompt_tokens + j.completion_tokens > 0
                {
                    add_usage(conn, j, finished).await?;
                }
                return Ok(true);
            }
            let stored = job
                .select(generation_jobs::status)
                .first::<String>(conn)
                .await
                .optional()
                .map_err(db_err)?;
            stored.map(|_| false).ok_or(StoreError::NotFound)
        })
    }

    pub(crate) async fn set_context(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
        context: &[RecallHit],
    ) -> StoreResult<()> {
        let value = serde_json::to_value(context)
            .map_err(|e| StoreError::Internal(format!("serializing a job context: {e}")))?;
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::update(
                generation_jobs::table
                    .filter(generation_jobs::id.eq(id.db()))
                    .filter(generation_jobs::tenant_id.eq(tenant.db())),
            )
            .set(generation_jobs::context.eq(DbJson(value)))
            .execute(conn)
            .await
            .map_err(db_err)?;
            crate::sql::repos::touched(rows)
        })
    }

    pub(crate) async fn set_progress(
        conn: &mut Conn,
        tenant: TenantId,
        id: JobId,
        progress: JobProgress,
    ) -> StoreResult<()> {
        let value = crate::sql::rows::progress_json(Some(progress))?;
        tx!(conn, Some(tenant), Write, {
            let rows = diesel::update(
                generation_jobs::table
                    .filter(generation_jobs::id.eq(id.db()))
                    .filter(generation_jobs::tenant_id.eq(tenant.db())),
            )
            .set(generation_jobs::result.eq(value))
            .execute(conn)
            .await
            .map_err(db_err)?;
            crate::sql::repos::touched(rows)
        })
    }

    /// The unfinished jobs of one tenant, oldest first.
    pub(crate) async fn unfinished(
        conn: &mut Conn,
        tenant: TenantId,
        limit: i64,
    ) -> StoreResult<Vec<(TenantId, JobId)>> {
        tx!(conn, Some(tenant), Read, {
            let ids: Vec<DbUuid> = generation_jobs::table
                .filter(generation_jobs::tenant_id.eq(tenant.db()))
                .filter(generation_jobs::status.eq_any(STARTABLE))
                .order(generation_jobs::id.asc())
                .limit(limit)
                .select(generation_jobs::id)
                .load(conn)
                .await
                .map_err(db_err)?;
            Ok(ids
                .into_iter()
                .map(|id| (tenant, JobId::from_uuid(id.0)))
                .collect())
        })
    }

    pub(crate) async fn tokens_used(
        conn: &mut Conn,
        tenant: TenantId,
        day: NaiveDate,
    ) -> StoreResult<i64> {
        tx!(conn, Some(tenant), Read, {
            usage_records::table
                .filter(usage_records::tenant_id.eq(tenant.db()))
                .filter(usage_records::day.eq(day))
                .select(sql::<BigInt>(TOKENS_SUM))
                .get_result(conn)
                .await
                .map_err(db_err)
        })
    }
}

#[async_trait]
impl JobRepository for SqlStore {
    #[tracing::instrument(skip_all, fields(tenant = %job.tenant_id, job = %job.id))]
    async fn insert_job(&self, job: &GenerationJob) -> StoreResult<()> {
        dispatch!(self, insert(job))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, job = %id))]
    async fn get_job(&self, tenant: TenantId, id: JobId) -> StoreResult<GenerationJob> {
        dispatch_point!(self, get(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, job = %id))]
    async fn job_status(&self, tenant: TenantId, id: JobId) -> StoreResult<JobStatus> {
        dispatch_point!(self, status(tenant, id))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn find_job_by_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> StoreResult<GenerationJob> {
        dispatch!(self, by_idempotency_key(tenant, key))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, novel = %novel))]
    async fn list_jobs(
        &self,
        tenant: TenantId,
        novel: NovelId,
        status: Option<JobStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<GenerationJob>> {
        dispatch!(self, list(tenant, novel, status, page))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, job = %id))]
    async fn start_job(
        &self,
        tenant: TenantId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<GenerationJob> {
        dispatch!(self, start(tenant, id, at))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, job = %id))]
    async fn mark_first_token(
        &self,
        tenant: TenantId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, mark_first_token(tenant, id, at))
    }

    #[tracing::instrument(skip_all, fields(tenant = %job.tenant_id, job = %job.id))]
    async fn complete_job(
        &self,
        job: &GenerationJob,
        chapter: &Chapter,
        expected_version: i32,
        revision: &ChapterRevision,
    ) -> StoreResult<()> {
        let written = dispatch!(self, complete(job, chapter, expected_version, revision));
        self.chapter_cache().forget(chapter.id);
        written
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, model))]
    async fn record_usage(
        &self,
        tenant: TenantId,
        model: &str,
        usage: TokenUsage,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, record_usage(tenant, model, usage, at))
    }

    #[tracing::instrument(skip_all, fields(tenant = %job.tenant_id, job = %job.id))]
    async fn finish_job(&self, job: &GenerationJob) -> StoreResult<bool> {
        dispatch!(self, finish(job))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, %day))]
    async fn tokens_used(&self, tenant: TenantId, day: NaiveDate) -> StoreResult<i64> {
        dispatch!(self, tokens_used(tenant, day))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, job = %id))]
    async fn set_job_progress(
        &self,
        tenant: TenantId,
        id: JobId,
        progress: JobProgress,
    ) -> StoreResult<()> {
        dispatch!(self, set_progress(tenant, id, progress))
    }

    async fn set_job_context(
        &self,
        tenant: TenantId,
        id: JobId,
        context: &[RecallHit],
    ) -> StoreResult<()> {
        dispatch!(self, set_context(tenant, id, context))
    }

    #[tracing::instrument(skip_all)]
    async fn unfinished_jobs(&self, limit: i64) -> StoreResult<Vec<(TenantId, JobId)>> {
        // Row-level security scopes every query to one tenant: walk them.
        let mut out = Vec::new();
        for tenant in self.tenant_ids().await? {
            let left = limit - out.len() as i64;
            if left <= 0 {
                break;
            }
            out.extend(dispatch!(self, unfinished(tenant, left))?);
        }
        Ok(out)
    }
}
