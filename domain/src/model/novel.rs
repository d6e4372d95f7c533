//! Novels and volumes.

use super::str_enum;
use crate::ids::{NovelId, TenantId, VolumeId};
use chrono::{DateTime, Utc};

str_enum! {
    /// Lifecycle of a novel.
    NovelStatus {
        /// Being planned.
        Draft = "DRAFT",
        /// Chapters are being written.
        Writing = "WRITING",
        /// Finished.
        Completed = "COMPLETED",
        /// Hidden from default lists; kept.
        Archived = "ARCHIVED",
    }
}

/// A novel: the root of a story and everything established in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Novel {
    /// Identity.
    pub id: NovelId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Title, 1..=200 characters.
    pub title: String,
    /// Blurb / premise.
    pub description: String,
    /// Genre, free text (e.g. "xianxia", "cozy mystery").
    pub genre: String,
    /// Language tag of the prose (`en`, `zh`, ...); decides how length is counted.
    pub language: String,
    /// Planned length of the whole novel in words (CJK: characters).
    pub target_word_count: Option<i64>,
    /// Style guide the writer follows.
    pub style_guide: String,
    /// Free-form world settings (rules, magic system, technology level, ...).
    pub world_settings: serde_json::Value,
    /// How story time is told (calendar, eras); story-time ordinals are in its units.
    pub time_system: String,
    /// Lifecycle status.
    pub status: NovelStatus,
    /// Sum of the chapters' word counts; maintained by the repository.
    pub word_count: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An ordered part of a novel.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Identity.
    pub id: VolumeId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The novel it belongs to.
    pub novel_id: NovelId,
    /// Position in the novel, unique per novel, from 1.
    pub seq: i32,
    /// Title.
    pub title: String,
    /// Summary of the volume.
    pub summary: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}
