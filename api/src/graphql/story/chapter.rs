//! Story object types `Chapter` and `ChapterRevision` and their connections.

use super::types::{ChapterStatus, Novel, RevisionSource, Volume};
use crate::graphql::call;
use crate::graphql::connection::{connection, cost, page_request};
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{opt_id, to_id};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use znovel_domain::model as m;

/// A chapter of a novel.
pub struct Chapter(pub m::Chapter);

/// A chapter of a novel.
#[Object]
impl Chapter {
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
    /// ID of the volume it is in, if any.
    async fn volume_id(&self) -> Option<ID> {
        opt_id(self.0.volume_id)
    }
    /// The volume it is in, if any.
    async fn volume(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Volume>> {
        let Some(id) = self.0.volume_id else {
            return Ok(None);
        };
        let (s, actor) = call(ctx)?;
        s.story
            .volume(&actor, id)
            .await
            .gql()
            .map(|v| Some(Volume(v)))
    }
    // The gateway's only: the story-gen subgraph leaves this field out of its schema (the
    // validator subgraph serves it; see `graphql::subgraph`).
    /// The latest continuity report of the current version (checked after its memory
    /// is updated, or by `validateChapter`); null until it is checked.
    async fn validation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::validation::ValidationReport>> {
        let report = crate::graphql::validation::chapter_validation(ctx, &self.0).await?;
        Ok(report.map(Into::into))
    }
    /// Position in the novel, unique per novel (whatever the volume), from 1.
    async fn seq(&self) -> i32 {
        self.0.seq
    }
    /// Title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Outline / beats the chapter should follow.
    async fn outline(&self) -> &str {
        &self.0.outline
    }
    /// The prose.
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// Summary of what happens.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// Story time at which the chapter starts (ordinal in the novel's time system).
    async fn story_time_start(&self) -> Option<i64> {
        self.0.story_time_start
    }
    /// Story time at which it ends.
    async fn story_time_end(&self) -> Option<i64> {
        self.0.story_time_end
    }
    /// Length of the content (words; CJK: characters).
    async fn word_count(&self) -> i64 {
        self.0.word_count
    }
    /// Planned length.
    async fn target_word_count(&self) -> Option<i64> {
        self.0.target_word_count
    }
    /// Lifecycle status.
    async fn status(&self) -> ChapterStatus {
        self.0.status.into()
    }
    /// Content version: 0 before any content, +1 for every new revision. Pass it as
    /// `expectedVersion` when updating the content.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Stored versions of the content, newest first.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn revisions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ChapterRevisionConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.story.revisions(&actor, self.0.id, req).await.gql()?;
        Ok(ChapterRevisionConnection::new(page, &req))
    }
}

/// One stored version of a chapter's content; never changed, so any version can be
/// compared or restored.
pub struct ChapterRevision(pub m::ChapterRevision);

/// One stored version of a chapter's content; never changed, so any version can be
/// compared or restored.
#[Object]
impl ChapterRevision {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the chapter.
    async fn chapter_id(&self) -> ID {
        to_id(self.0.chapter_id)
    }
    /// The chapter.
    async fn chapter(&self, ctx: &Context<'_>) -> async_graphql::Result<Chapter> {
        let (s, actor) = call(ctx)?;
        s.story
            .chapter(&actor, self.0.chapter_id)
            .await
            .gql()
            .map(Chapter)
    }
    /// The chapter version this revision created (1, 2, ...).
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The full content at that version.
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// Its length (words; CJK: characters).
    async fn word_count(&self) -> i64 {
        self.0.word_count
    }
    /// What produced it.
    async fn source(&self) -> RevisionSource {
        self.0.source.into()
    }
    /// ID of the user who made it, if a user did.
    async fn created_by_id(&self) -> Option<ID> {
        opt_id(self.0.created_by)
    }
    /// ID of the generation job that wrote it, if one did.
    async fn job_id(&self) -> Option<ID> {
        opt_id(self.0.job_id)
    }
    /// Free-form note ("rollback to version 2", the generation instructions, ...).
    async fn note(&self) -> &str {
        &self.0.note
    }
    /// When it was stored.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    ChapterConnection,
    ChapterEdge,
    Chapter,
    m::Chapter,
    "A page of chapters.",
    "A chapter in a page of chapters."
);
connection!(
    ChapterRevisionConnection,
    ChapterRevisionEdge,
    ChapterRevision,
    m::ChapterRevision,
    "A page of chapter revisions.",
    "A revision in a page of chapter revisions."
);
