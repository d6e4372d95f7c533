//! Generation jobs: one request to write (or rewrite) a chapter, and what happened to it.

use super::str_enum;
use crate::ids::{ChapterId, JobId, NovelId, TenantId, UserId};
use chrono::{DateTime, Utc};

str_enum! {
    /// What a job does.
    JobKind {
        /// Write the chapter from its outline.
        Draft = "DRAFT",
        /// Append to the chapter's content.
        Continue = "CONTINUE",
        /// Write the chapter anew, keeping the old content as a revision.
        Rewrite = "REWRITE",
        /// Improve the prose without changing what happens.
        Polish = "POLISH",
        /// Summarize a chapter.
        Summarize = "SUMMARIZE",
        /// Extract memory (entities, states, events) from a chapter.
        ExtractMemory = "EXTRACT_MEMORY",
        /// Validate a chapter.
        Validate = "VALIDATE",
        /// Import a manuscript.
        Import = "IMPORT",
        /// Export a novel.
        Export = "EXPORT",
    }
}

str_enum! {
    /// Lifecycle of a job.
    JobStatus {
        /// Waiting for a worker.
        Queued = "QUEUED",
        /// A worker is running it.
        Running = "RUNNING",
        /// Finished; its result is stored.
        Succeeded = "SUCCEEDED",
        /// Gave up; `error` says why. The chapter is as it was.
        Failed = "FAILED",
        /// Cancelled by a user. The chapter is as it was.
        Cancelled = "CANCELLED",
    }
}

impl JobStatus {
    /// Whether the job has finished (no worker will touch it again).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct JobInput {
    /// Free-text instructions for the writer.
    pub instructions: String,
    /// Target length of the result (words; CJK characters).
    pub target_words: Option<i64>,
    /// For jobs about one version of a chapter (memory, validation): that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapter_version: Option<i32>,
    /// For EXPORT jobs: what to export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<super::ExportSpec>,
    /// For IMPORT jobs: how the manuscript is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<super::ImportSpec>,
    /// For a batch (the parent job of `generateChapters`): what to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
    /// For a rewrite: the continuity issues to fix, as the prompt gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<String>,
}

/// How far a job that works through many items (an IMPORT's chapters) has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct JobProgress {
    /// Items done.
    pub done: i32,
    /// Items in all.
    pub total: i32,
}

/// What a batch writes: one child job per chapter from `from_seq` to `to_seq`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchSpec {
    /// First chapter seq (inclusive).
    pub from_seq: i32,
    /// Last chapter seq (inclusive).
    pub to_seq: i32,
    /// How each chapter is written (DRAFT, CONTINUE, REWRITE or POLISH).
    pub kind: JobKind,
    /// Target length of each chapter; default: the chapter's own target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_words: Option<i64>,
    /// Whether a chapter that fails stops the rest of the batch.
    pub stop_on_error: bool,
}

/// A generation job.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationJob {
    /// Identity.
    pub id: JobId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel.
    pub novel_id: NovelId,
    /// The chapter it writes.
    pub chapter_id: Option<ChapterId>,
    /// What it does.
    pub kind: JobKind,
    /// Lifecycle status.
    pub status: JobStatus,
    /// Higher runs first.
    pub priority: i32,
    /// The request.
    pub input: JobInput,
    /// Client key making the request idempotent (unique per tenant).
    pub idempotency_key: Option<String>,
    /// Provider that served it (e.g. `openai`, `local`).
    pub provider: Option<String>,
    /// Model that served it.
    pub model: Option<String>,
    /// Whether a fallback model served it.
    pub fallback_used: bool,
    /// Prompt tokens used.
    pub prompt_tokens: i64,
    /// Completion tokens used.
    pub completion_tokens: i64,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When a worker started it (the latest attempt).
    pub started_at: Option<DateTime<Utc>>,
    /// When the first token arrived.
    pub first_token_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times a worker started it.
    pub attempts: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// Who asked for it.
    pub created_by: Option<UserId>,
    /// What the model was given from the story's memory (generation jobs), so an author
    /// sees why it wrote what it wrote.
    pub context: Vec<super::RecallHit>,
    /// How far it has come, for jobs that report it (IMPORT: chapters created of all).
    pub progress: Option<JobProgress>,
}
