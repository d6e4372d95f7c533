//! Story object types: `Novel`, `Volume`, `Chapter`, `ChapterRevision`, their enums and
//! connections. Each wraps the domain model; nested lists call the story service.

use super::chapter::ChapterConnection;
use crate::graphql::connection::{connection, cost, page_request};
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::to_id;
use crate::graphql::{Json, call};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use znovel_domain::model as m;
use znovel_domain::ports::ChapterFilter;

/// Lifecycle of a novel.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::NovelStatus")]
pub enum NovelStatus {
    /// Being planned.
    Draft,
    /// Chapters are being written.
    Writing,
    /// Finished.
    Completed,
    /// Hidden from default lists; kept.
    Archived,
}

/// Lifecycle of a chapter.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::ChapterStatus")]
pub enum ChapterStatus {
    /// Outlined or being written by hand.
    Draft,
    /// A generation job is writing it.
    Generating,
    /// Written; waiting for the author's review.
    Review,
    /// Accepted.
    Completed,
}

/// What produced a chapter revision.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::RevisionSource")]
pub enum RevisionSource {
    /// Typed or edited by a user.
    Author,
    /// Written by a generation job.
    Generation,
    /// Restored from an earlier revision.
    Rollback,
    /// Imported from a manuscript.
    Import,
}

/// Where a novel's memory stands. Chapters without content are not counted.
#[derive(SimpleObject)]
pub struct MemoryProgress {
    /// Chapters whose current version is searchable.
    pub indexed_chapters: i64,
    /// Chapters whose current version is not searchable yet (its memory job is queued or
    /// running).
    pub pending_chapters: i64,
    /// Chapters whose current version could not be indexed (its memory job failed).
    pub failed_chapters: i64,
    /// Chapters whose current version's facts (summary, states, events, relations,
    /// foreshadowing) were extracted by the language model.
    pub extracted_chapters: i64,
}

impl From<m::MemoryProgress> for MemoryProgress {
    fn from(p: m::MemoryProgress) -> Self {
        Self {
            indexed_chapters: p.indexed_chapters,
            pending_chapters: p.pending_chapters,
            failed_chapters: p.failed_chapters,
            extracted_chapters: p.extracted_chapters,
        }
    }
}

/// A novel: the root of a story and everything established in it.
pub struct Novel(pub m::Novel);

/// A novel: the root of a story and everything established in it.
#[Object]
impl Novel {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Title, 1 to 200 characters.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Blurb / premise.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Genre, free text (e.g. "xianxia", "cozy mystery").
    async fn genre(&self) -> &str {
        &self.0.genre
    }
    /// Language tag of the prose (`en`, `zh`, ...); decides how length is counted.
    async fn language(&self) -> &str {
        &self.0.language
    }
    /// Planned length of the whole novel in words (CJK: characters).
    async fn target_word_count(&self) -> Option<i64> {
        self.0.target_word_count
    }
    /// Style guide the writer follows.
    async fn style_guide(&self) -> &str {
        &self.0.style_guide
    }
    /// Free-form world settings (rules, magic system, technology level, ...), a JSON object.
    async fn world_settings(&self) -> Json {
        Json::from(self.0.world_settings.clone())
    }
    /// How story time is told (calendar, eras); story-time ordinals are in its units.
    async fn time_system(&self) -> &str {
        &self.0.time_system
    }
    /// Lifecycle status.
    async fn status(&self) -> NovelStatus {
        self.0.status.into()
    }
    /// Sum of the chapters' word counts.
    async fn word_count(&self) -> i64 {
        self.0.word_count
    }
    /// Where the novel's memory stands: how many of its chapters (with content) are
    /// remembered. A chapter counts as indexed once its current version's passages are
    /// searchable — seconds after a change, before the slower extraction of its facts.
    async fn memory_progress(&self, ctx: &Context<'_>) -> async_graphql::Result<MemoryProgress> {
        let (s, actor) = call(ctx)?;
        s.story
            .memory_progress(&actor, self.0.id)
            .await
            .gql()
            .map(MemoryProgress::from)
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The novel's volumes, by position.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn volumes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<VolumeConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.story.volumes(&actor, self.0.id, req).await.gql()?;
        Ok(VolumeConnection::new(page, &req))
    }
    /// The novel's chapters, by position (seq).
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn chapters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only chapters with this status.")] status: Option<ChapterStatus>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ChapterConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let filter = ChapterFilter {
            volume_id: None,
            status: status.map(Into::into),
        };
        let page = s
            .story
            .chapters(&actor, self.0.id, filter, req)
            .await
            .gql()?;
        Ok(ChapterConnection::new(page, &req))
    }
}

/// An ordered part of a novel.
pub struct Volume(pub m::Volume);

/// An ordered part of a novel.
#[Object]
impl Volume {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the novel it belongs to.
    async fn novel_id(&self) -> ID {
        to_id(self.0.novel_id)
    }
    /// The novel it belongs to.
    async fn novel(&self, ctx: &Context<'_>) -> async_graphql::Result<Novel> {
        let (s, actor) = call(ctx)?;
        s.story
            .novel(&actor, self.0.novel_id)
            .await
            .gql()
            .map(Novel)
    }
    /// Position in the novel, unique per novel, from 1.
    async fn seq(&self) -> i32 {
        self.0.seq
    }
    /// Title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Summary of the volume.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The volume's chapters, by position (seq).
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn chapters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only chapters with this status.")] status: Option<ChapterStatus>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ChapterConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let filter = ChapterFilter {
            volume_id: Some(self.0.id),
            status: status.map(Into::into),
        };
        let page = s
            .story
            .chapters(&actor, self.0.novel_id, filter, req)
            .await
            .gql()?;
        Ok(ChapterConnection::new(page, &req))
    }
}

connection!(
    NovelConnection,
    NovelEdge,
    Novel,
    m::Novel,
    "A page of novels.",
    "A novel in a page of novels."
);
connection!(
    VolumeConnection,
    VolumeEdge,
    Volume,
    m::Volume,
    "A page of volumes.",
    "A volume in a page of volumes."
);
