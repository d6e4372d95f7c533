//! Use-case services: the operations the API exposes. Each checks the actor's permission,
//! validates input into model values, calls the repositories, and records an audit entry
//! for every change.

mod admin;
mod batch;
mod batch_run;
mod export;
pub mod extract;
mod files;
mod follow;
mod generation;
mod import;
mod memory;
mod memory_job;
pub mod outline;
pub mod prompt;
pub mod recall;
mod remember;
pub mod runner;
mod scheduler;
mod story;
pub mod validate;
mod validation;
mod write;

pub use admin::*;
pub use batch::{BatchEstimate, ChapterEstimate, EstimateBasis, GenerateChapters};
pub use export::ExportNovel;
pub use files::*;
pub use follow::*;
pub use generation::*;
pub use import::{EXCERPT_CHARS, ImportManuscript, ImportPreview, PreviewChapter};
pub use memory::*;
pub use memory_job::*;
pub use recall::{RecallRequest, RecallResult, RecallService};
pub use remember::*;
pub use scheduler::*;
pub use story::*;
pub use validation::*;
pub use write::first_token_mark_delay;

use crate::auth::Actor;
use crate::ids::AuditId;
use crate::model::AuditEntry;
use crate::ports::{Rate, RateLimiter, Store};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::sync::Arc;

/// All services, sharing one store.
#[derive(Clone)]
pub struct Services {
    /// Novels, volumes, chapters, revisions.
    pub story: StoryService,
    /// The story bible.
    pub memory: MemoryService,
    /// Tenants, users, keys, authentication.
    pub admin: AdminService,
    /// Generation jobs, when a queue and token streams are wired in.
    pub generation: Option<GenerationService>,
    /// Recall over the story's memory, when a memory index is wired in.
    pub recall: Option<RecallService>,
    /// Continuity checks.
    pub validation: ValidationService,
    /// Stored files (manuscripts, exported books) and their download links.
    pub files: FileService,
}

impl Services {
    /// Builds every service over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            story: StoryService::new(store.clone()),
            memory: MemoryService::new(store.clone()),
            admin: AdminService::new(store.clone()),
            files: FileService::with_defaults(store.clone()),
            validation: ValidationService::new(store),
            generation: None,
            recall: None,
        }
    }

    /// The same services, remembering: the story and the bible keep the memory index up
    /// to date (chapters through memory jobs, bible records at once), and recall works.
    pub fn with_memory(
        mut self,
        indexer: Indexer,
        scheduler: Scheduler,
        recall: RecallService,
    ) -> Self {
        self.story = self.story.with_memory(scheduler, indexer.clone());
        self.memory = self.memory.with_indexer(indexer);
        self.recall = Some(recall);
        self
    }

    /// The recall service, or `Unavailable` when this process has no memory index.
    pub fn recall(&self) -> Result<&RecallService, crate::Error> {
        self.recall
            .as_ref()
            .ok_or_else(|| crate::Error::Unavailable("the story memory is not configured".into()))
    }

    /// The same services with generation wired in.
    pub fn with_generation(mut self, generation: GenerationService) -> Self {
        self.generation = Some(generation);
        self
    }

    /// The generation service, or `Unavailable` when this process has none.
    pub fn generation(&self) -> Result<&GenerationService, crate::Error> {
        self.generation
            .as_ref()
            .ok_or_else(|| crate::Error::Unavailable("chapter generation is not configured".into()))
    }
}

/// The current time, truncated to microseconds (what both databases store), so a value
/// written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// Appends an audit entry for `actor`. Audit is best effort: a failure is returned to the
/// caller, who has already committed the change, so callers log it rather than fail.
pub(crate) async fn audit(
    store: &dyn Store,
    actor: &Actor,
    action: &str,
    resource_type: &str,
    resource_id: impl ToString,
) {
    let entry = AuditEntry {
        id: AuditId::new(),
        tenant_id: actor.tenant_id,
        actor_user_id: Some(actor.user_id),
        action: action.to_owned(),
        resource_type: resource_type.to_owned(),
        resource_id: resource_id.to_string(),
        request_id: actor.request_id.clone(),
        detail: serde_json::Value::Object(Default::default()),
        created_at: now(),
    };
    // The change is committed already; losing an audit line must not fail the request.
    let _ = store.append_audit(&entry).await;
}

/// Takes one from `bucket` of `limiter`: `RateLimited` (naming `what` and when to retry)
/// when the rate is used up. When the limiter's backend is unreachable the request is
/// let through (and logged): an outage of the counter must not stop the service.
pub async fn rate_limit(
    limiter: &dyn RateLimiter,
    bucket: &str,
    rate: Rate,
    what: impl FnOnce() -> String,
) -> Result<(), crate::Error> {
    match limiter.acquire(bucket, rate).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(crate::Error::RateLimited {
            what: what(),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        }),
        Err(e) => {
            tracing::warn!(error = %e, bucket, "rate limiter unavailable; request let through");
            Ok(())
        }
    }
}
