//! Ports: the capabilities the domain needs from the outside world, one trait per
//! capability. Adapters in `znovel-infra` implement them; the services never know which
//! adapter they got.
//!
//! Error contract shared by every repository method below:
//! - every method takes the caller's [`TenantId`] (or a model value carrying it) and MUST
//!   NOT read or write rows of any other tenant: a row of another tenant is
//!   `StoreError::NotFound`, exactly as if it did not exist;
//! - `get_*`, `update_*`, `delete_*` MUST return `NotFound` when no row matches;
//! - `insert_*`/`update_*` MUST return `Conflict` (and write nothing) when a uniqueness
//!   constraint rejects the row;
//! - a method that writes several rows writes all of them or none (one transaction);
//! - list methods return keyset pages: rows after `page.after()` (the id of the last row
//!   of the previous page) in the documented order, at most `page.fetch_limit()` rows,
//!   turned into a [`Page`] with [`Page::from_rows`]. An `after` id that is not in the
//!   list yields an empty page.

mod credentials;
mod embed;
mod llm;
mod memory_index;
mod queue;
mod rate_limit;

pub use credentials::*;
pub use embed::*;
pub use llm::*;
pub use memory_index::*;
pub use queue::*;
pub use rate_limit::*;

use crate::StoreError;
use crate::ids::*;
use crate::model::*;
use crate::page::{Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Result of every repository method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Tenants. The tenants table is not tenant-owned data, so it is not row-level secured.
#[async_trait]
pub trait TenantRepository: Send + Sync + 'static {
    /// Inserts a tenant. `Conflict` when the slug is taken.
    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    /// Reads a tenant by id.
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant>;
    /// Reads a tenant by slug.
    async fn find_tenant_by_slug(&self, slug: &str) -> StoreResult<Tenant>;
    /// Every tenant's id (for maintenance that walks all tenants).
    async fn tenant_ids(&self) -> StoreResult<Vec<TenantId>>;
    /// Writes name, status, quota, settings and updated_at.
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
}

/// Users of a tenant.
#[async_trait]
pub trait UserRepository: Send + Sync + 'static {
    /// Inserts a user. `Conflict` when the email is taken in the tenant.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Reads a user.
    async fn get_user(&self, tenant: TenantId, id: UserId) -> StoreResult<User>;
    /// Reads a user by (lower-case) email.
    async fn find_user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<User>;
    /// Lists users in creation (id) order.
    async fn list_users(&self, tenant: TenantId, page: PageRequest) -> StoreResult<Page<User>>;
    /// Writes email, display name, role and updated_at.
    async fn update_user(&self, user: &User) -> StoreResult<()>;
}

/// API keys (hashed).
#[async_trait]
pub trait ApiKeyRepository: Send + Sync + 'static {
    /// Inserts a key. `Conflict` if the hash already exists.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// Reads a key by id.
    async fn get_api_key(&self, tenant: TenantId, id: ApiKeyId) -> StoreResult<ApiKey>;
    /// Reads a key by the hash of the presented secret (revoked keys included).
    async fn find_api_key_by_hash(&self, tenant: TenantId, hash: &str) -> StoreResult<ApiKey>;
    /// Lists keys in creation order, all of the tenant's or one user's.
    async fn list_api_keys(
        &self,
        tenant: TenantId,
        user: Option<UserId>,
        page: PageRequest,
    ) -> StoreResult<Page<ApiKey>>;
    /// Sets `revoked_at` (keeps an earlier revocation time).
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Sets `last_used_at`.
    async fn touch_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// Trusted (registered) GraphQL documents. Global: not tenant-owned, so these methods
/// take no tenant.
#[async_trait]
pub trait TrustedDocumentRepository: Send + Sync + 'static {
    /// Registers a document. Returns `false` (and changes nothing) when its hash is already
    /// registered; MUST NOT fail with `Conflict` for that.
    async fn register_trusted_document(&self, doc: &TrustedDocument) -> StoreResult<bool>;
    /// The document registered under `hash`; MUST return `Ok(None)` when there is none.
    async fn find_trusted_document(
        &self,
        hash: &DocumentHash,
    ) -> StoreResult<Option<TrustedDocument>>;
    /// Every registered document, oldest first.
    async fn list_trusted_documents(&self) -> StoreResult<Vec<TrustedDocument>>;
}

/// Filter for [`NovelRepository::list_novels`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NovelFilter {
    /// Only novels with this status; when `None`, every status but ARCHIVED.
    pub status: Option<NovelStatus>,
}

/// Novels and volumes.
#[async_trait]
pub trait NovelRepository: Send + Sync + 'static {
    /// Inserts a novel.
    async fn insert_novel(&self, novel: &Novel) -> StoreResult<()>;
    /// Reads a novel.
    async fn get_novel(&self, tenant: TenantId, id: NovelId) -> StoreResult<Novel>;
    /// Lists novels in creation order.
    async fn list_novels(
        &self,
        tenant: TenantId,
        filter: &NovelFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Novel>>;
    /// Counts the tenant's novels, archived ones included.
    async fn count_novels(&self, tenant: TenantId) -> StoreResult<i64>;
    /// Writes every column but `word_count` (which the chapter methods maintain).
    async fn update_novel(&self, novel: &Novel) -> StoreResult<()>;
    /// Inserts a volume. `Conflict` when its seq is taken in the novel.
    async fn insert_volume(&self, volume: &Volume) -> StoreResult<()>;
    /// Reads a volume.
    async fn get_volume(&self, tenant: TenantId, id: VolumeId) -> StoreResult<Volume>;
    /// Lists a novel's volumes by seq.
    async fn list_volumes(
        &self,
        tenant: TenantId,
        novel: NovelId,
        page: PageRequest,
    ) -> StoreResult<Page<Volume>>;
    /// Writes seq, title, summary, updated_at. `Conflict` on a taken seq.
    async fn update_volume(&self, volume: &Volume) -> StoreResult<()>;
    /// Deletes a volume; its chapters stay, with no volume.
    async fn delete_volume(&self, tenant: TenantId, id: VolumeId) -> StoreResult<()>;
}

/// Filter for [`ChapterRepository::list_chapters`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChapterFilter {
    /// Only chapters of this volume.
    pub volume_id: Option<VolumeId>,
    /// Only chapters with this status.
    pub status: Option<ChapterStatus>,
}

/// Chapters and their revisions.
///
/// Every method that changes a chapter's content or removes a chapter also sets the
/// novel's `word_count` to the sum of its chapters' word counts, in the same transaction.
#[async_trait]
pub trait ChapterRepository: Send + Sync + 'static {
    /// Inserts a chapter and, when given, its first revision, in one transaction.
    /// `Conflict` when its seq is taken in the novel (whatever the volume).
    async fn insert_chapter(
        &self,
        chapter: &Chapter,
        first_revision: Option<&ChapterRevision>,
    ) -> StoreResult<()>;
    /// Reads a chapter from the database: what a read that decides a write needs.
    async fn get_chapter(&self, tenant: TenantId, id: ChapterId) -> StoreResult<Chapter>;
    /// Reads a chapter to show it: may answer from memory. This process's own writes are
    /// seen at once; another process's write once its notification arrived (milliseconds
    /// after its commit). Never for a read whose result decides a write: use
    /// [`ChapterRepository::get_chapter`]. By default the same as `get_chapter`.
    async fn show_chapter(&self, tenant: TenantId, id: ChapterId) -> StoreResult<Chapter> {
        self.get_chapter(tenant, id).await
    }
    /// Reads the chapter of a novel at a seq.
    async fn find_chapter_by_seq(
        &self,
        tenant: TenantId,
        novel: NovelId,
        seq: i32,
    ) -> StoreResult<Chapter>;
    /// Lists a novel's chapters by seq.
    async fn list_chapters(
        &self,
        tenant: TenantId,
        novel: NovelId,
        filter: &ChapterFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Chapter>>;
    /// Counts a novel's chapters.
    async fn count_chapters(&self, tenant: TenantId, novel: NovelId) -> StoreResult<i64>;
    /// The highest seq in the novel, if it has chapters.
    async fn max_chapter_seq(&self, tenant: TenantId, novel: NovelId) -> StoreResult<Option<i32>>;
    /// Writes the metadata (volume, seq, title, outline, summary, story times, target,
    /// status, updated_at), not content/word_count/version. `Conflict` on a taken seq.
    async fn update_chapter(&self, chapter: &Chapter) -> StoreResult<()>;
    /// Stores new content: writes `chapter` (content, word_count, version, status,
    /// updated_at) only if the stored version still equals `expected_version`, inserts
    /// `revision`, and updates the novel's word count — one transaction. `Conflict` when
    /// the stored version differs (someone else changed it first); nothing is written.
    async fn save_chapter_content(
        &self,
        chapter: &Chapter,
        expected_version: i32,
        revision: &ChapterRevision,
    ) -> StoreResult<()>;
    /// Deletes a chapter with its revisions, its memory state, and the story-bible
    /// records extracted from it that the author did not edit (one transaction).
    async fn delete_chapter(&self, tenant: TenantId, id: ChapterId) -> StoreResult<()>;
    /// Reads a revision.
    async fn get_revision(&self, tenant: TenantId, id: RevisionId) -> StoreResult<ChapterRevision>;
    /// Lists a chapter's revisions, newest (highest version) first.
    async fn list_revisions(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        page: PageRequest,
    ) -> StoreResult<Page<ChapterRevision>>;
}

/// Filter for [`EntityRepository::list_entities`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityFilter {
    /// Only entities of this kind.
    pub kind: Option<EntityKind>,
    /// Case-insensitive substring of the name or of any alias.
    pub search: Option<String>,
}

/// Story-bible entities and their state history.
#[async_trait]
pub trait EntityRepository: Send + Sync + 'static {
    /// Inserts an entity. `Conflict` when (novel, kind, name) is taken.
    async fn insert_entity(&self, entity: &Entity) -> StoreResult<()>;
    /// Reads an entity.
    async fn get_entity(&self, tenant: TenantId, id: EntityId) -> StoreResult<Entity>;
    /// Lists a novel's entities in creation order.
    async fn list_entities(
        &self,
        tenant: TenantId,
        novel: NovelId,
        filter: &EntityFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Entity>>;
    /// Writes every column but id, tenant, novel, created_at. `Conflict` on a taken name.
    async fn update_entity(&self, entity: &Entity) -> StoreResult<()>;
    /// Deletes an entity with its states and relations.
    async fn delete_entity(&self, tenant: TenantId, id: EntityId) -> StoreResult<()>;
    /// Inserts a state change and writes the updated entity (current state, attributes),
    /// in one transaction.
    async fn insert_entity_state(&self, state: &EntityState, entity: &Entity) -> StoreResult<()>;
    /// Reads one state change.
    async fn get_entity_state(
        &self,
        tenant: TenantId,
        id: EntityStateId,
    ) -> StoreResult<EntityState>;
    /// Writes every column of a state change but id, tenant, entity and created_at (the
    /// entity's current state does not follow: it reflects the latest recorded change).
    async fn update_entity_state(&self, state: &EntityState) -> StoreResult<()>;
    /// Deletes a state change.
    async fn delete_entity_state(&self, tenant: TenantId, id: EntityStateId) -> StoreResult<()>;
    /// Lists an entity's state history in creation order.
    async fn list_entity_states(
        &self,
        tenant: TenantId,
        entity: EntityId,
        page: PageRequest,
    ) -> StoreResult<Page<EntityState>>;
}

/// Relations between entities.
#[async_trait]
pub trait RelationRepository: Send + Sync + 'static {
    /// Inserts a relation. `Conflict` when (source, target, kind) exists.
    async fn insert_relation(&self, relation: &Relation) -> StoreResult<()>;
    /// Reads a relation.
    async fn get_relation(&self, tenant: TenantId, id: RelationId) -> StoreResult<Relation>;
    /// Lists relations where the entity is source or target, in creation order.
    async fn list_relations(
        &self,
        tenant: TenantId,
        entity: EntityId,
        page: PageRequest,
    ) -> StoreResult<Page<Relation>>;
    /// Writes kind, strength, description, since_chapter_id, updated_at.
    async fn update_relation(&self, relation: &Relation) -> StoreResult<()>;
    /// Deletes a relation.
    async fn delete_relation(&self, tenant: TenantId, id: RelationId) -> StoreResult<()>;
}

/// Filter for [`EventRepository::list_events`]: events whose start lies in `from..=to`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineFilter {
    /// Earliest story time (inclusive).
    pub from: Option<i64>,
    /// Latest story time (inclusive).
    pub to: Option<i64>,
}

/// The timeline.
#[async_trait]
pub trait EventRepository: Send + Sync + 'static {
    /// Inserts an event.
    async fn insert_event(&self, event: &Event) -> StoreResult<()>;
    /// Reads an event.
    async fn get_event(&self, tenant: TenantId, id: EventId) -> StoreResult<Event>;
    /// Lists a novel's events ordered by (story_time_start, id).
    async fn list_events(
        &self,
        tenant: TenantId,
        novel: NovelId,
        filter: &TimelineFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Event>>;
    /// Writes every column but id, tenant, novel, created_at.
    async fn update_event(&self, event: &Event) -> StoreResult<()>;
    /// Deletes an event.
    async fn delete_event(&self, tenant: TenantId, id: EventId) -> StoreResult<()>;
}

/// Foreshadowing threads.
#[async_trait]
pub trait ForeshadowingRepository: Send + Sync + 'static {
    /// Inserts a thread.
    async fn insert_foreshadowing(&self, item: &Foreshadowing) -> StoreResult<()>;
    /// Reads a thread.
    async fn get_foreshadowing(
        &self,
        tenant: TenantId,
        id: ForeshadowingId,
    ) -> StoreResult<Foreshadowing>;
    /// Lists a novel's threads in creation order, optionally of one status.
    async fn list_foreshadowing(
        &self,
        tenant: TenantId,
        novel: NovelId,
        status: Option<ForeshadowingStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Foreshadowing>>;
    /// Writes every column but id, tenant, novel, created_at.
    async fn update_foreshadowing(&self, item: &Foreshadowing) -> StoreResult<()>;
    /// Deletes a thread.
    async fn delete_foreshadowing(&self, tenant: TenantId, id: ForeshadowingId) -> StoreResult<()>;
}

/// The audit log (append-only).
#[async_trait]
pub trait AuditRepository: Send + Sync + 'static {
    /// Appends an entry.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Lists entries newest first.
    async fn list_audit(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEntry>>;
}

/// Generation jobs and their results.
#[async_trait]
pub trait JobRepository: Send + Sync + 'static {
    /// Inserts a job. `Conflict` when its (tenant, idempotency key) is taken.
    async fn insert_job(&self, job: &GenerationJob) -> StoreResult<()>;
    /// Reads a job.
    async fn get_job(&self, tenant: TenantId, id: JobId) -> StoreResult<GenerationJob>;
    /// Reads only a job's status: what a running job's worker polls to see a cancel.
    async fn job_status(&self, tenant: TenantId, id: JobId) -> StoreResult<JobStatus> {
        Ok(self.get_job(tenant, id).await?.status)
    }
    /// Reads the job with an idempotency key.
    async fn find_job_by_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> StoreResult<GenerationJob>;
    /// Lists a novel's jobs, newest (highest id) first, optionally of one status.
    async fn list_jobs(
        &self,
        tenant: TenantId,
        novel: NovelId,
        status: Option<JobStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<GenerationJob>>;
    /// A worker starts (or restarts) a job: QUEUED or RUNNING becomes RUNNING with
    /// `attempts + 1` and `started_at = at`; returns the updated job. `Conflict` when the
    /// job is already final (SUCCEEDED, FAILED, CANCELLED) — the worker drops it.
    async fn start_job(
        &self,
        tenant: TenantId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<GenerationJob>;
    /// Sets `first_token_at` (only when not yet set).
    async fn mark_first_token(
        &self,
        tenant: TenantId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Stores a successful result in ONE transaction: the job row (status SUCCEEDED,
    /// provider, model, fallback_used, tokens, first_token_at, finished_at) only if it is
    /// still RUNNING; the chapter's new content exactly like
    /// [`ChapterRepository::save_chapter_content`] (version check, revision, novel word
    /// count); and the tenant's usage record of the day and model (tokens added).
    /// `Conflict` when the job is no longer RUNNING (cancelled, or finished by another
    /// worker) or the chapter version moved; then nothing is written.
    async fn complete_job(
        &self,
        job: &GenerationJob,
        chapter: &Chapter,
        expected_version: i32,
        revision: &ChapterRevision,
    ) -> StoreResult<()>;
    /// Ends a job without a chapter result (its final status from `job`, with `error`,
    /// `finished_at`, `attempts`, model fields and tokens) unless it is already final;
    /// returns whether it changed the row. A SUCCEEDED job's tokens go to the tenant's
    /// usage record too — except a batch's, which are its children's, counted already.
    async fn finish_job(&self, job: &GenerationJob) -> StoreResult<bool>;
    /// Adds tokens used outside a job's own completion (a batch drafting an outline) to
    /// the tenant's usage record of `at`'s UTC day and `model`.
    async fn record_usage(
        &self,
        tenant: TenantId,
        model: &str,
        usage: crate::ports::TokenUsage,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The tenant's LLM tokens (prompt + completion) used on a UTC day.
    async fn tokens_used(&self, tenant: TenantId, day: chrono::NaiveDate) -> StoreResult<i64>;
    /// Records what a running job's prompt was given from memory (`GenerationJob::context`).
    async fn set_job_context(
        &self,
        tenant: TenantId,
        id: JobId,
        context: &[RecallHit],
    ) -> StoreResult<()>;
    /// Records how far a running job has come (`GenerationJob::progress`).
    async fn set_job_progress(
        &self,
        tenant: TenantId,
        id: JobId,
        progress: JobProgress,
    ) -> StoreResult<()>;
    /// Jobs of any tenant that are QUEUED or RUNNING, oldest first, at most `limit`
    /// (after a restart of a process whose queue lived in memory, they are queued again).
    async fn unfinished_jobs(&self, limit: i64) -> StoreResult<Vec<(TenantId, JobId)>>;
}

/// What the story's memory keeps beside the bible itself: which chapter versions are
/// remembered, what extraction found, which entities each chapter names, and the bible
/// as of a point of the story.
#[async_trait]
pub trait MemoryRepository: Send + Sync + 'static {
    /// A chapter's memory state; `None` when nothing was recorded for it.
    async fn get_chapter_memory(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
    ) -> StoreResult<Option<ChapterMemory>>;
    /// Records that `version` of the chapter is now searchable (`indexed`), extracted, or
    /// failed (`error`): upserts the row, never moving a version backwards (a late job for
    /// an older version changes nothing). `NotFound` when the chapter does not exist.
    async fn mark_chapter_memory(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
        mark: MemoryMark,
    ) -> StoreResult<()>;
    /// Counts a novel's chapters with content by memory state.
    async fn memory_progress(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<MemoryProgress>;
    /// Stores what extraction found in one version of a chapter, in ONE transaction, only
    /// if the chapter is still at `memory.chapter_version` (writes nothing otherwise):
    /// deletes the records previously extracted from the chapter
    /// (origin EXTRACTED, that chapter) and inserts the new ones; inserts the new
    /// entities (an entity whose name exists in the novel already is skipped); inserts
    /// relations that do not exist yet; resolves the listed OPEN threads; writes the
    /// summary unless the chapter's summary is the author's and not empty.
    /// Returns the ids of the records it deleted (to forget them in the index), or `None`
    /// when the chapter moved on.
    async fn replace_extracted(
        &self,
        memory: &ExtractedMemory,
    ) -> StoreResult<Option<Vec<uuid::Uuid>>>;
    /// Replaces which entities a chapter names and recomputes those entities' (and the
    /// previously named ones') first/last chapter seq and appearance count.
    async fn replace_appearances(&self, appearances: &ChapterAppearances) -> StoreResult<()>;
    /// For each of `entities`, its latest state change recorded in a chapter with
    /// `seq <= chapter_seq` (a change tied to no chapter counts as before chapter 1),
    /// latest by (chapter seq, creation); entities with none are absent.
    async fn entity_states_as_of(
        &self,
        tenant: TenantId,
        entities: &[EntityId],
        chapter_seq: i32,
    ) -> StoreResult<Vec<EntityState>>;
    /// The current (seq, version) of every chapter of a novel: what recall checks hits
    /// against.
    async fn chapter_heads(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> StoreResult<Vec<(ChapterId, i32, i32)>>;
    /// The tenant's chapters with content whose current version is neither indexed nor
    /// failed: (chapter, version, seq), at most `limit`.
    async fn unremembered_chapters(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> StoreResult<Vec<(ChapterId, i32, i32)>>;
}

/// What [`MemoryRepository::mark_chapter_memory`] records about a chapter version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryMark {
    /// Its passages are searchable.
    Indexed,
    /// Its facts were extracted.
    Extracted,
    /// Its memory job failed, for this reason.
    Failed(String),
}

/// Validation reports of chapter versions.
#[async_trait]
pub trait ValidationRepository: Send + Sync + 'static {
    /// Stores the report of a chapter version, replacing an earlier report of the same
    /// version. MUST return `NotFound` when the chapter does not exist in the tenant.
    async fn save_validation(&self, report: &ChapterValidation) -> StoreResult<()>;
    /// The latest report of version `version` of a chapter, if there is one.
    async fn get_validation(
        &self,
        tenant: TenantId,
        chapter: ChapterId,
        version: i32,
    ) -> StoreResult<Option<ChapterValidation>>;
}

/// Stored files (uploaded manuscripts, exported books), bytes included.
#[async_trait]
pub trait FileRepository: Send + Sync + 'static {
    /// Stores a file's metadata and bytes (one transaction). `file.size` MUST equal
    /// `bytes.len()`. `NotFound` when its novel does not exist in the tenant.
    async fn insert_file(&self, file: &StoredFile, bytes: &[u8]) -> StoreResult<()>;
    /// Reads a file's metadata.
    async fn get_file(&self, tenant: TenantId, id: FileId) -> StoreResult<StoredFile>;
    /// Reads a file's bytes.
    async fn get_file_content(&self, tenant: TenantId, id: FileId) -> StoreResult<Vec<u8>>;
    /// The latest file tied to a job, if any.
    async fn find_file_by_job(
        &self,
        tenant: TenantId,
        job: JobId,
    ) -> StoreResult<Option<StoredFile>>;
    /// Lists a novel's files, newest (highest id) first.
    async fn list_files(
        &self,
        tenant: TenantId,
        novel: NovelId,
        page: PageRequest,
    ) -> StoreResult<Page<StoredFile>>;
    /// Deletes a file.
    async fn delete_file(&self, tenant: TenantId, id: FileId) -> StoreResult<()>;
    /// The total size in bytes of the tenant's files.
    async fn file_bytes_used(&self, tenant: TenantId) -> StoreResult<i64>;
}

/// Every repository at once: what the services are built from. Implemented
/// automatically for any type that implements all of them.
pub trait Store:
    TenantRepository
    + UserRepository
    + ApiKeyRepository
    + NovelRepository
    + ChapterRepository
    + EntityRepository
    + RelationRepository
    + EventRepository
    + ForeshadowingRepository
    + AuditRepository
    + JobRepository
    + MemoryRepository
    + ValidationRepository
    + FileRepository
{
}

impl<T> Store for T where
    T: TenantRepository
        + UserRepository
        + ApiKeyRepository
        + NovelRepository
        + ChapterRepository
        + EntityRepository
        + RelationRepository
        + EventRepository
        + ForeshadowingRepository
        + AuditRepository
        + JobRepository
        + MemoryRepository
        + ValidationRepository
        + FileRepository
{
}
