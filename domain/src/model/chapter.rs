//! Chapters and their revisions.

use super::str_enum;
use crate::ids::{ChapterId, JobId, NovelId, RevisionId, TenantId, UserId, VolumeId};
use chrono::{DateTime, Utc};

str_enum! {
    /// Lifecycle of a chapter.
    ChapterStatus {
        /// Outlined or being written by hand.
        Draft = "DRAFT",
        /// A generation job is writing it.
        Generating = "GENERATING",
        /// Written; waiting for the author's review.
        Review = "REVIEW",
        /// Accepted.
        Completed = "COMPLETED",
    }
}

str_enum! {
    /// What produced a revision.
    RevisionSource {
        /// Typed or edited by a user.
        Author = "AUTHOR",
        /// Written by a generation job.
        Generation = "GENERATION",
        /// Restored from an earlier revision.
        Rollback = "ROLLBACK",
        /// Imported from a manuscript.
        Import = "IMPORT",
    }
}

/// A chapter of a novel.
#[derive(Debug, Clone, PartialEq)]
pub struct Chapter {
    /// Identity.
    pub id: ChapterId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel it belongs to.
    pub novel_id: NovelId,
    /// The volume it is in, if any.
    pub volume_id: Option<VolumeId>,
    /// Position in the novel, unique per novel (whatever the volume), from 1.
    pub seq: i32,
    /// Title.
    pub title: String,
    /// Outline / beats the chapter should follow.
    pub outline: String,
    /// The prose.
    pub content: String,
    /// Summary of what happens.
    pub summary: String,
    /// Who wrote the summary: an author's summary is never replaced by extraction.
    pub summary_origin: super::Origin,
    /// Story time at which the chapter starts (ordinal in the novel's time system).
    pub story_time_start: Option<i64>,
    /// Story time at which it ends.
    pub story_time_end: Option<i64>,
    /// Length of `content` (words; CJK characters).
    pub word_count: i64,
    /// Planned length.
    pub target_word_count: Option<i64>,
    /// Lifecycle status.
    pub status: ChapterStatus,
    /// Content version: 0 before any content, +1 for every new revision.
    pub version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One stored version of a chapter's content. Revisions are never changed or deleted
/// (except with their chapter), so any version can be compared or restored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterRevision {
    /// Identity.
    pub id: RevisionId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The chapter.
    pub chapter_id: ChapterId,
    /// The chapter version this revision created (1, 2, ...).
    pub version: i32,
    /// The full content at that version.
    pub content: String,
    /// Its length.
    pub word_count: i64,
    /// What produced it.
    pub source: RevisionSource,
    /// The user who made it, if a user did.
    pub created_by: Option<UserId>,
    /// The generation job that wrote it, if one did.
    pub job_id: Option<JobId>,
    /// Free-form note ("rollback to v2", the generation instructions, ...).
    pub note: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}
