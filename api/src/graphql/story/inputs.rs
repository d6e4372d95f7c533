//! Story mutation inputs and payloads.

use super::{Chapter, ChapterStatus, Novel, NovelStatus, Volume};
use crate::graphql::Json;
use async_graphql::{ID, InputObject, MaybeUndefined, SimpleObject};

/// Input of `createNovel`. Unset optional fields take defaults.
#[derive(InputObject)]
pub struct CreateNovelInput {
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Blurb / premise.
    pub description: Option<String>,
    /// Genre, free text.
    pub genre: Option<String>,
    /// Language tag of the prose; default `en`.
    pub language: Option<String>,
    /// Planned length in words (CJK: characters).
    pub target_word_count: Option<i64>,
    /// Style guide the writer follows.
    pub style_guide: Option<String>,
    /// World settings, a JSON object; default `{}`.
    pub world_settings: Option<Json>,
    /// How story time is told.
    pub time_system: Option<String>,
}

/// Input of `updateNovel`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateNovelInput {
    /// The novel.
    pub id: ID,
    /// New title.
    pub title: Option<String>,
    /// New blurb.
    pub description: Option<String>,
    /// New genre.
    pub genre: Option<String>,
    /// New language tag.
    pub language: Option<String>,
    /// New planned length.
    pub target_word_count: Option<i64>,
    /// New style guide.
    pub style_guide: Option<String>,
    /// New world settings (replaces the whole object).
    pub world_settings: Option<Json>,
    /// New time system.
    pub time_system: Option<String>,
    /// New status.
    pub status: Option<NovelStatus>,
}

/// Input of `archiveNovel`.
#[derive(InputObject)]
pub struct ArchiveNovelInput {
    /// The novel.
    pub id: ID,
}

/// Input of `createVolume`.
#[derive(InputObject)]
pub struct CreateVolumeInput {
    /// The novel.
    pub novel_id: ID,
    /// Position in the novel; default: after the last volume.
    pub seq: Option<i64>,
    /// Title.
    pub title: String,
    /// Summary.
    pub summary: Option<String>,
}

/// Input of `updateVolume`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateVolumeInput {
    /// The volume.
    pub id: ID,
    /// New position.
    pub seq: Option<i64>,
    /// New title.
    pub title: Option<String>,
    /// New summary.
    pub summary: Option<String>,
}

/// Input of `deleteVolume`.
#[derive(InputObject)]
pub struct DeleteVolumeInput {
    /// The volume; its chapters stay in the novel.
    pub id: ID,
}

/// Input of `createChapter`.
#[derive(InputObject)]
pub struct CreateChapterInput {
    /// The novel.
    pub novel_id: ID,
    /// Position in the novel; default: after the last chapter.
    pub seq: Option<i64>,
    /// Title.
    pub title: String,
    /// Outline / beats.
    pub outline: Option<String>,
    /// The volume (of the same novel).
    pub volume_id: Option<ID>,
    /// Initial content, stored as revision 1 when not empty.
    pub content: Option<String>,
    /// Planned length.
    pub target_word_count: Option<i64>,
    /// Story time at the start.
    pub story_time_start: Option<i64>,
    /// Story time at the end.
    pub story_time_end: Option<i64>,
}

/// Input of `updateChapter`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateChapterInput {
    /// The chapter.
    pub id: ID,
    /// Move to this volume; `null` takes it out of any volume.
    pub volume_id: MaybeUndefined<ID>,
    /// New position.
    pub seq: Option<i64>,
    /// New title.
    pub title: Option<String>,
    /// New outline.
    pub outline: Option<String>,
    /// New summary.
    pub summary: Option<String>,
    /// New content, stored as a new revision.
    pub content: Option<String>,
    /// With `content`: fail with CONFLICT unless the chapter is still at this version.
    pub expected_version: Option<i64>,
    /// New planned length.
    pub target_word_count: Option<i64>,
    /// New story time at the start.
    pub story_time_start: Option<i64>,
    /// New story time at the end.
    pub story_time_end: Option<i64>,
    /// New status.
    pub status: Option<ChapterStatus>,
}

/// Input of `deleteChapter`.
#[derive(InputObject)]
pub struct DeleteChapterInput {
    /// The chapter; its revisions are deleted with it.
    pub id: ID,
}

/// Input of `rollbackChapter`.
#[derive(InputObject)]
pub struct RollbackChapterInput {
    /// The chapter.
    pub chapter_id: ID,
    /// The revision of that chapter whose content becomes the new content.
    pub revision_id: ID,
}

/// Result of `createNovel`.
#[derive(SimpleObject)]
pub struct CreateNovelPayload {
    /// The new novel.
    pub novel: Novel,
}

/// Result of `updateNovel`.
#[derive(SimpleObject)]
pub struct UpdateNovelPayload {
    /// The changed novel.
    pub novel: Novel,
}

/// Result of `archiveNovel`.
#[derive(SimpleObject)]
pub struct ArchiveNovelPayload {
    /// The archived novel.
    pub novel: Novel,
}

/// Result of `createVolume`.
#[derive(SimpleObject)]
pub struct CreateVolumePayload {
    /// The new volume.
    pub volume: Volume,
}

/// Result of `updateVolume`.
#[derive(SimpleObject)]
pub struct UpdateVolumePayload {
    /// The changed volume.
    pub volume: Volume,
}

/// Result of `deleteVolume`.
#[derive(SimpleObject)]
pub struct DeleteVolumePayload {
    /// The volume as it was before it was deleted.
    pub volume: Volume,
}

/// Result of `createChapter`.
#[derive(SimpleObject)]
pub struct CreateChapterPayload {
    /// The new chapter.
    pub chapter: Chapter,
}

/// Result of `updateChapter`.
#[derive(SimpleObject)]
pub struct UpdateChapterPayload {
    /// The changed chapter.
    pub chapter: Chapter,
}

/// Result of `deleteChapter`.
#[derive(SimpleObject)]
pub struct DeleteChapterPayload {
    /// The chapter as it was before it was deleted.
    pub chapter: Chapter,
}

/// Result of `rollbackChapter`.
#[derive(SimpleObject)]
pub struct RollbackChapterPayload {
    /// The chapter with the restored content (a new revision).
    pub chapter: Chapter,
}
