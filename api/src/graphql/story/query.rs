//! Story queries, and the federation entity resolvers of `Novel` and `Chapter`.

use super::chapter::*;
use super::types::*;
use crate::graphql::call;
use crate::graphql::connection::{cost, page_request};
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{decode, decode_opt};
use async_graphql::{Context, ID, Object};
use znovel_domain::ports::{ChapterFilter, NovelFilter};

/// Story queries: novels, volumes, chapters, revisions.
#[derive(Default)]
pub struct StoryQuery;

/// Story queries: novels, volumes, chapters, revisions.
#[Object]
impl StoryQuery {
    /// A novel of the caller's tenant.
    async fn novel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel's ID.")] id: ID,
    ) -> async_graphql::Result<Novel> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story.novel(&actor, id).await.gql().map(Novel)
    }

    /// The tenant's novels, oldest first.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn novels(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only novels with this status; by default every status but ARCHIVED.")]
        status: Option<NovelStatus>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<NovelConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let filter = NovelFilter {
            status: status.map(Into::into),
        };
        let page = s.story.novels(&actor, filter, req).await.gql()?;
        Ok(NovelConnection::new(page, &req))
    }

    /// A volume.
    async fn volume(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The volume's ID.")] id: ID,
    ) -> async_graphql::Result<Volume> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story.volume(&actor, id).await.gql().map(Volume)
    }

    /// A chapter.
    async fn chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter's ID.")] id: ID,
    ) -> async_graphql::Result<Chapter> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story.chapter(&actor, id).await.gql().map(Chapter)
    }

    /// A novel's chapters, by position (seq).
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn chapters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "Only chapters of this volume.")] volume_id: Option<ID>,
        #[graphql(desc = "Only chapters with this status.")] status: Option<ChapterStatus>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ChapterConnection> {
        let (s, actor) = call(ctx)?;
        let novel = decode(&novel_id, "novelId")?;
        let filter = ChapterFilter {
            volume_id: decode_opt(volume_id.as_ref(), "volumeId")?,
            status: status.map(Into::into),
        };
        let req = page_request(first, after.as_deref())?;
        let page = s.story.chapters(&actor, novel, filter, req).await.gql()?;
        Ok(ChapterConnection::new(page, &req))
    }

    /// One stored revision of a chapter's content.
    async fn revision(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The revision's ID.")] id: ID,
    ) -> async_graphql::Result<ChapterRevision> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story
            .revision_by_id(&actor, id)
            .await
            .gql()
            .map(ChapterRevision)
    }
}

/// Federation entity resolvers of the story subgraph (`@key(fields: "id")` on `Novel`,
/// `Chapter`, `Volume`, `ChapterRevision` and `GenerationJob`). Only merged into the story subgraph's root, never into the gateway.
#[derive(Default)]
pub struct StoryEntities;

/// Federation entity resolvers of the story subgraph.
#[Object]
impl StoryEntities {
    /// Resolves a `Novel` reference.
    #[graphql(entity)]
    async fn find_novel_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel's global ID.")] id: ID,
    ) -> async_graphql::Result<Novel> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story.novel(&actor, id).await.gql().map(Novel)
    }

    /// Resolves a `Chapter` reference.
    #[graphql(entity)]
    async fn find_chapter_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter's global ID.")] id: ID,
    ) -> async_graphql::Result<Chapter> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story.chapter(&actor, id).await.gql().map(Chapter)
    }

    /// Resolves a `Volume` reference.
    #[graphql(entity)]
    async fn find_volume_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The volume's global ID.")] id: ID,
    ) -> async_graphql::Result<Volume> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story.volume(&actor, id).await.gql().map(Volume)
    }

    /// Resolves a `ChapterRevision` reference.
    #[graphql(entity)]
    async fn find_chapter_revision_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The revision's global ID.")] id: ID,
    ) -> async_graphql::Result<ChapterRevision> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.story
            .revision_by_id(&actor, id)
            .await
            .gql()
            .map(ChapterRevision)
    }

    /// Resolves a `GenerationJob` reference.
    #[graphql(entity)]
    async fn find_generation_job_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's global ID.")] id: ID,
    ) -> async_graphql::Result<super::GenerationJob> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.generation()
            .map_err(crate::graphql::errors::to_gql)?
            .job(&actor, id)
            .await
            .gql()
            .map(super::GenerationJob)
    }
}
