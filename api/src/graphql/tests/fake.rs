//! An in-memory [`Store`] honouring the port contract (tenant scoping, `NotFound`,
//! keyset pages), so resolvers can be exercised without a database.

use async_graphql::async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use uuid::Uuid;
use znovel_domain::StoreError;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::page::{Page, PageRequest};
use znovel_domain::ports::*;

pub(super) type R<T> = StoreResult<T>;

pub(super) trait Row: Clone {
    fn uuid(&self) -> Uuid;
    fn tenant(&self) -> TenantId;
}

macro_rules! rows {
    ($($t:ty),*) => {$(
        impl Row for $t {
            fn uuid(&self) -> Uuid { self.id.as_uuid() }
            fn tenant(&self) -> TenantId { self.tenant_id }
        }
    )*};
}
rows!(
    User,
    ApiKey,
    Novel,
    Volume,
    Chapter,
    ChapterRevision,
    Entity,
    EntityState,
    Relation,
    Event,
    Foreshadowing,
    AuditEntry,
    GenerationJob
);

#[derive(Default)]
pub(super) struct State {
    pub(super) tenants: Vec<Tenant>,
    pub(super) users: Vec<User>,
    pub(super) keys: Vec<ApiKey>,
    pub(super) novels: Vec<Novel>,
    pub(super) volumes: Vec<Volume>,
    pub(super) chapters: Vec<Chapter>,
    pub(super) revisions: Vec<ChapterRevision>,
    pub(super) entities: Vec<Entity>,
    pub(super) states: Vec<EntityState>,
    pub(super) relations: Vec<Relation>,
    pub(super) events: Vec<Event>,
    pub(super) threads: Vec<Foreshadowing>,
    pub(super) audit: Vec<AuditEntry>,
    pub(super) jobs: Vec<GenerationJob>,
    /// Usage records: (tenant, UTC day, model, tokens).
    pub(super) usage: Vec<(TenantId, chrono::NaiveDate, String, i64)>,
    /// Chapters' memory state.
    pub(super) memory: Vec<ChapterMemory>,
    /// Validation reports.
    pub(super) validations: Vec<ChapterValidation>,
}

/// The fake store.
#[derive(Default)]
pub struct FakeStore(Mutex<State>);

impl FakeStore {
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

pub(super) fn get<T: Row>(rows: &[T], tenant: TenantId, id: Uuid) -> R<T> {
    rows.iter()
        .find(|r| r.tenant() == tenant && r.uuid() == id)
        .cloned()
        .ok_or(StoreError::NotFound)
}

pub(super) fn update<T: Row>(rows: &mut [T], row: &T) -> R<()> {
    let slot = rows
        .iter_mut()
        .find(|r| r.tenant() == row.tenant() && r.uuid() == row.uuid())
        .ok_or(StoreError::NotFound)?;
    *slot = row.clone();
    Ok(())
}

pub(super) fn delete<T: Row>(rows: &mut Vec<T>, tenant: TenantId, id: Uuid) -> R<()> {
    let before = rows.len();
    rows.retain(|r| !(r.tenant() == tenant && r.uuid() == id));
    if rows.len() == before {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Keyset page over rows already filtered and in list order.
pub(super) fn page<T: Row>(rows: Vec<T>, req: PageRequest) -> R<Page<T>> {
    let start = match req.after() {
        None => 0,
        Some(after) => match rows.iter().position(|r| r.uuid() == after) {
            Some(i) => i + 1,
            None => rows.len(),
        },
    };
    let rows = rows
        .into_iter()
        .skip(start)
        .take(req.fetch_limit() as usize)
        .collect();
    Ok(Page::from_rows(rows, &req))
}

pub(super) fn scoped<T: Row>(rows: &[T], tenant: TenantId, keep: impl Fn(&T) -> bool) -> Vec<T> {
    rows.iter()
        .filter(|r| r.tenant() == tenant && keep(r))
        .cloned()
        .collect()
}

#[async_trait]
impl TenantRepository for FakeStore {
    async fn insert_tenant(&self, t: &Tenant) -> R<()> {
        self.with(|s| s.tenants.push(t.clone()));
        Ok(())
    }
    async fn get_tenant(&self, id: TenantId) -> R<Tenant> {
        self.with(|s| s.tenants.iter().find(|t| t.id == id).cloned())
            .ok_or(StoreError::NotFound)
    }
    async fn find_tenant_by_slug(&self, slug: &str) -> R<Tenant> {
        self.with(|s| s.tenants.iter().find(|t| t.slug == slug).cloned())
            .ok_or(StoreError::NotFound)
    }
    async fn tenant_ids(&self) -> R<Vec<TenantId>> {
        Ok(self.with(|s| s.tenants.iter().map(|t| t.id).collect()))
    }
    async fn update_tenant(&self, t: &Tenant) -> R<()> {
        self.with(|s| {
            let slot = s.tenants.iter_mut().find(|x| x.id == t.id);
            slot.map(|x| *x = t.clone()).ok_or(StoreError::NotFound)
        })
    }
}

#[async_trait]
impl UserRepository for FakeStore {
    async fn insert_user(&self, u: &User) -> R<()> {
        self.with(|s| s.users.push(u.clone()));
        Ok(())
    }
    async fn get_user(&self, t: TenantId, id: UserId) -> R<User> {
        self.with(|s| get(&s.users, t, id.as_uuid()))
    }
    async fn find_user_by_email(&self, t: TenantId, email: &str) -> R<User> {
        self.with(|s| scoped(&s.users, t, |u| u.email == email).pop())
            .ok_or(StoreError::NotFound)
    }
    async fn list_users(&self, t: TenantId, p: PageRequest) -> R<Page<User>> {
        self.with(|s| page(scoped(&s.users, t, |_| true), p))
    }
    async fn update_user(&self, u: &User) -> R<()> {
        self.with(|s| update(&mut s.users, u))
    }
}

#[async_trait]
impl ApiKeyRepository for FakeStore {
    async fn insert_api_key(&self, k: &ApiKey) -> R<()> {
        self.with(|s| s.keys.push(k.clone()));
        Ok(())
    }
    async fn get_api_key(&self, t: TenantId, id: ApiKeyId) -> R<ApiKey> {
        self.with(|s| get(&s.keys, t, id.as_uuid()))
    }
    async fn find_api_key_by_hash(&self, t: TenantId, hash: &str) -> R<ApiKey> {
        self.with(|s| scoped(&s.keys, t, |k| k.secret_hash == hash).pop())
            .ok_or(StoreError::NotFound)
    }
    async fn list_api_keys(
        &self,
        t: TenantId,
        u: Option<UserId>,
        p: PageRequest,
    ) -> R<Page<ApiKey>> {
        self.with(|s| page(scoped(&s.keys, t, |k| u.is_none_or(|u| k.user_id == u)), p))
    }
    async fn revoke_api_key(&self, t: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> R<()> {
        self.with(|s| {
            let mut k = get(&s.keys, t, id.as_uuid())?;
            k.revoked_at = k.revoked_at.or(Some(at));
            update(&mut s.keys, &k)
        })
    }
    async fn touch_api_key(&self, t: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> R<()> {
        self.with(|s| {
            let mut k = get(&s.keys, t, id.as_uuid())?;
            k.last_used_at = Some(at);
            update(&mut s.keys, &k)
        })
    }
}

#[async_trait]
impl NovelRepository for FakeStore {
    async fn insert_novel(&self, n: &Novel) -> R<()> {
        self.with(|s| s.novels.push(n.clone()));
        Ok(())
    }
    async fn get_novel(&self, t: TenantId, id: NovelId) -> R<Novel> {
        self.with(|s| get(&s.novels, t, id.as_uuid()))
    }
    async fn list_novels(&self, t: TenantId, f: &NovelFilter, p: PageRequest) -> R<Page<Novel>> {
        let keep = |n: &Novel| match f.status {
            Some(st) => n.status == st,
            None => n.status != NovelStatus::Archived,
        };
        self.with(|s| page(scoped(&s.novels, t, keep), p))
    }
    async fn count_novels(&self, t: TenantId) -> R<i64> {
        Ok(self.with(|s| scoped(&s.novels, t, |_| true).len() as i64))
    }
    async fn update_novel(&self, n: &Novel) -> R<()> {
        self.with(|s| update(&mut s.novels, n))
    }
    async fn insert_volume(&self, v: &Volume) -> R<()> {
        self.with(|s| s.volumes.push(v.clone()));
        Ok(())
    }
    async fn get_volume(&self, t: TenantId, id: VolumeId) -> R<Volume> {
        self.with(|s| get(&s.volumes, t, id.as_uuid()))
    }
    async fn list_volumes(&self, t: TenantId, n: NovelId, p: PageRequest) -> R<Page<Volume>> {
        self.with(|s| page(scoped(&s.volumes, t, |v| v.novel_id == n), p))
    }
    async fn update_volume(&self, v: &Volume) -> R<()> {
        self.with(|s| update(&mut s.volumes, v))
    }
    async fn delete_volume(&self, t: TenantId, id: VolumeId) -> R<()> {
        self.with(|s| delete(&mut s.volumes, t, id.as_uuid()))
    }
}

#[async_trait]
impl ChapterRepository for FakeStore {
    async fn insert_chapter(&self, c: &Chapter, r: Option<&ChapterRevision>) -> R<()> {
        self.with(|s| {
            if s.chapters
                .iter()
                .any(|x| x.novel_id == c.novel_id && x.seq == c.seq)
            {
                return Err(StoreError::Conflict("seq".into()));
            }
            s.chapters.push(c.clone());
            s.revisions.extend(r.cloned());
            Ok(())
        })
    }
    async fn get_chapter(&self, t: TenantId, id: ChapterId) -> R<Chapter> {
        self.with(|s| get(&s.chapters, t, id.as_uuid()))
    }
    async fn find_chapter_by_seq(&self, t: TenantId, n: NovelId, seq: i32) -> R<Chapter> {
        self.with(|s| scoped(&s.chapters, t, |c| c.novel_id == n && c.seq == seq).pop())
            .ok_or(StoreError::NotFound)
    }
    async fn list_chapters(
        &self,
        t: TenantId,
        n: NovelId,
        f: &ChapterFilter,
        p: PageRequest,
    ) -> R<Page<Chapter>> {
        let keep = |c: &Chapter| {
            c.novel_id == n
                && f.volume_id.is_none_or(|v| c.volume_id == Some(v))
                && f.status.is_none_or(|st| c.status == st)
        };
        let mut rows = self.with(|s| scoped(&s.chapters, t, keep));
        rows.sort_by_key(|c| c.seq);
        page(rows, p)
    }
    async fn count_chapters(&self, t: TenantId, n: NovelId) -> R<i64> {
        Ok(self.with(|s| scoped(&s.chapters, t, |c| c.novel_id == n).len() as i64))
    }
    async fn max_chapter_seq(&self, t: TenantId, n: NovelId) -> R<Option<i32>> {
        Ok(self.with(|s| {
            scoped(&s.chapters, t, |c| c.novel_id == n)
                .iter()
                .map(|c| c.seq)
                .max()
        }))
    }
    async fn update_chapter(&self, c: &Chapter) -> R<()> {
        self.with(|s| update(&mut s.chapters, c))
    }
    async fn save_chapter_content(&self, c: &Chapter, expected: i32, r: &ChapterRevision) -> R<()> {
        self.with(|s| {
            let stored = get(&s.chapters, c.tenant_id, c.id.as_uuid())?;
            if stored.version != expected {
                return Err(StoreError::Conflict("version".into()));
            }
            s.revisions.push(r.clone());
            update(&mut s.chapters, c)
        })
    }
    async fn delete_chapter(&self, t: TenantId, id: ChapterId) -> R<()> {
        self.with(|s| delete(&mut s.chapters, t, id.as_uuid()))
    }
    async fn get_revision(&self, t: TenantId, id: RevisionId) -> R<ChapterRevision> {
        self.with(|s| get(&s.revisions, t, id.as_uuid()))
    }
    async fn list_revisions(
        &self,
        t: TenantId,
        c: ChapterId,
        p: PageRequest,
    ) -> R<Page<ChapterRevision>> {
        let mut rows = self.with(|s| scoped(&s.revisions, t, |r| r.chapter_id == c));
        rows.sort_by_key(|r| std::cmp::Reverse(r.version));
        page(rows, p)
    }
}

#[async_trait]
impl JobRepository for FakeStore {
    async fn insert_job(&self, j: &GenerationJob) -> R<()> {
        self.with(|s| {
            if j.idempotency_key.is_some()
                && s.jobs
                    .iter()
                    .any(|x| x.tenant_id == j.tenant_id && x.idempotency_key == j.idempotency_key)
            {
                return Err(StoreError::Conflict("idempotency key".into()));
            }
            s.jobs.push(j.clone());
            Ok(())
        })
    }
    async fn get_job(&self, t: TenantId, id: JobId) -> R<GenerationJob> {
        self.with(|s| get(&s.jobs, t, id.as_uuid()))
    }
    async fn find_job_by_idempotency_key(&self, t: TenantId, key: &str) -> R<GenerationJob> {
        self.with(|s| scoped(&s.jobs, t, |j| j.idempotency_key.as_deref() == Some(key)).pop())
            .ok_or(StoreError::NotFound)
    }
    async fn list_jobs(
        &self,
        t: TenantId,
        n: NovelId,
        st: Option<JobStatus>,
        p: PageRequest,
    ) -> R<Page<GenerationJob>> {
        let keep = |j: &GenerationJob| j.novel_id == n && st.is_none_or(|st| j.status == st);
        let mut rows = self.with(|s| scoped(&s.jobs, t, keep));
        rows.sort_by_key(|j| std::cmp::Reverse(j.id.as_uuid()));
        page(rows, p)
    }
    async fn start_job(&self, t: TenantId, id: JobId, at: DateTime<Utc>) -> R<GenerationJob> {
        self.with(|s| {
            let mut j = get(&s.jobs, t, id.as_uuid())?;
            if j.status.is_final() {
                return Err(StoreError::Conflict("job is final".into()));
            }
            j.status = JobStatus::Running;
            j.attempts += 1;
            j.started_at = Some(at);
            update(&mut s.jobs, &j)?;
            Ok(j)
        })
    }
    async fn mark_first_token(&self, t: TenantId, id: JobId, at: DateTime<Utc>) -> R<()> {
        self.with(|s| {
            let mut j = get(&s.jobs, t, id.as_uuid())?;
            j.first_token_at = j.first_token_at.or(Some(at));
            update(&mut s.jobs, &j)
        })
    }
    async fn complete_job(
        &self,
        j: &GenerationJob,
        c: &Chapter,
        expected: i32,
        r: &ChapterRevision,
    ) -> R<()> {
        self.with(|s| {
            let stored = get(&s.jobs, j.tenant_id, j.id.as_uuid())?;
            if stored.status != JobStatus::Running {
                return Err(StoreError::Conflict("job is not running".into()));
            }
            let chapter = get(&s.chapters, c.tenant_id, c.id.as_uuid())?;
            if chapter.version != expected {
                return Err(StoreError::Conflict("version".into()));
            }
            let finished = j.finished_at.unwrap_or_else(Utc::now);
            let mut done = j.clone();
            done.status = JobStatus::Succeeded;
            done.first_token_at = j.first_token_at.or(stored.first_token_at);
            done.finished_at = Some(finished);
            update(&mut s.jobs, &done)?;
            update(&mut s.chapters, c)?;
            s.revisions.push(r.clone());
            let model = j.model.clone().unwrap_or_else(|| "unknown".into());
            s.usage.push((
                j.tenant_id,
                finished.date_naive(),
                model,
                j.prompt_tokens + j.completion_tokens,
            ));
            Ok(())
        })
    }
    async fn finish_job(&self, j: &GenerationJob) -> R<bool> {
        self.with(|s| {
            let stored = get(&s.jobs, j.tenant_id, j.id.as_uuid())?;
            if stored.status.is_final() {
                return Ok(false);
            }
            let mut done = j.clone();
            done.first_token_at = j.first_token_at.or(stored.first_token_at);
            update(&mut s.jobs, &done)?;
            Ok(true)
        })
    }
    async fn record_usage(
        &self,
        t: TenantId,
        model: &str,
        usage: znovel_domain::ports::TokenUsage,
        at: chrono::DateTime<chrono::Utc>,
    ) -> R<()> {
        self.with(|s| {
            s.usage.push((
                t,
                at.date_naive(),
                model.to_owned(),
                usage.prompt_tokens + usage.completion_tokens,
            ))
        });
        Ok(())
    }
    async fn tokens_used(&self, t: TenantId, day: chrono::NaiveDate) -> R<i64> {
        Ok(self.with(|s| {
            s.usage
                .iter()
                .filter(|(tenant, d, _, _)| *tenant == t && *d == day)
                .map(|(_, _, _, n)| n)
                .sum()
        }))
    }
    async fn set_job_context(&self, t: TenantId, id: JobId, context: &[RecallHit]) -> R<()> {
        self.with(|s| {
            let job = s
                .jobs
                .iter_mut()
                .find(|j| j.tenant_id == t && j.id == id)
                .ok_or(StoreError::NotFound)?;
            job.context = context.to_vec();
            Ok(())
        })
    }
    async fn set_job_progress(&self, t: TenantId, id: JobId, progress: JobProgress) -> R<()> {
        self.with(|s| {
            let job = s
                .jobs
                .iter_mut()
                .find(|j| j.tenant_id == t && j.id == id)
                .ok_or(StoreError::NotFound)?;
            job.progress = Some(progress);
            Ok(())
        })
    }
    async fn unfinished_jobs(&self, limit: i64) -> R<Vec<(TenantId, JobId)>> {
        Ok(self.with(|s| {
            s.jobs
                .iter()
                .filter(|j| !j.status.is_final())
                .take(limit.max(0) as usize)
                .map(|j| (j.tenant_id, j.id))
                .collect()
        }))
    }
}
