//! Story mutations: create, change, archive or delete novels, volumes and chapters, and
//! roll a chapter back to an earlier revision.

use super::inputs::*;
use super::{Chapter, Novel, Volume};
use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{decode, decode_opt};
use async_graphql::{Context, MaybeUndefined, Object};
use znovel_domain::services as svc;

/// Story mutations.
#[derive(Default)]
pub struct StoryMutation;

/// Story mutations.
#[Object]
impl StoryMutation {
    /// Creates a novel. Needs MEMBER; counts against the tenant's novel quota.
    #[tracing::instrument(skip_all, name = "createNovel")]
    async fn create_novel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new novel.")] input: CreateNovelInput,
    ) -> async_graphql::Result<CreateNovelPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateNovel {
            title: input.title,
            description: input.description,
            genre: input.genre,
            language: input.language,
            target_word_count: input.target_word_count,
            style_guide: input.style_guide,
            world_settings: input.world_settings.map(|j| j.0),
            time_system: input.time_system,
        };
        let novel = s.story.create_novel(&actor, input).await.gql()?;
        Ok(CreateNovelPayload {
            novel: Novel(novel),
        })
    }

    /// Changes a novel. Needs MEMBER.
    #[tracing::instrument(skip_all, name = "updateNovel")]
    async fn update_novel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel and the fields to change.")] input: UpdateNovelInput,
    ) -> async_graphql::Result<UpdateNovelPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateNovel {
            title: input.title,
            description: input.description,
            genre: input.genre,
            language: input.language,
            target_word_count: input.target_word_count,
            style_guide: input.style_guide,
            world_settings: input.world_settings.map(|j| j.0),
            time_system: input.time_system,
            status: input.status.map(Into::into),
        };
        let novel = s.story.update_novel(&actor, id, change).await.gql()?;
        Ok(UpdateNovelPayload {
            novel: Novel(novel),
        })
    }

    /// Archives a novel: status ARCHIVED, hidden from default lists, nothing deleted.
    /// Needs MEMBER.
    #[tracing::instrument(skip_all, name = "archiveNovel")]
    async fn archive_novel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel to archive.")] input: ArchiveNovelInput,
    ) -> async_graphql::Result<ArchiveNovelPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let novel = s.story.archive_novel(&actor, id).await.gql()?;
        Ok(ArchiveNovelPayload {
            novel: Novel(novel),
        })
    }

    /// Adds a volume to a novel. Needs MEMBER.
    #[tracing::instrument(skip_all, name = "createVolume")]
    async fn create_volume(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new volume.")] input: CreateVolumeInput,
    ) -> async_graphql::Result<CreateVolumePayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateVolume {
            novel_id: decode(&input.novel_id, "novelId")?,
            seq: input.seq,
            title: input.title,
            summary: input.summary,
        };
        let volume = s.story.create_volume(&actor, input).await.gql()?;
        Ok(CreateVolumePayload {
            volume: Volume(volume),
        })
    }

    /// Changes a volume. Needs MEMBER.
    #[tracing::instrument(skip_all, name = "updateVolume")]
    async fn update_volume(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The volume and the fields to change.")] input: UpdateVolumeInput,
    ) -> async_graphql::Result<UpdateVolumePayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let change = svc::UpdateVolume {
            seq: input.seq,
            title: input.title,
            summary: input.summary,
        };
        let volume = s.story.update_volume(&actor, id, change).await.gql()?;
        Ok(UpdateVolumePayload {
            volume: Volume(volume),
        })
    }

    /// Deletes a volume; its chapters stay in the novel. Needs MEMBER.
    #[tracing::instrument(skip_all, name = "deleteVolume")]
    async fn delete_volume(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The volume to delete.")] input: DeleteVolumeInput,
    ) -> async_graphql::Result<DeleteVolumePayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let volume = s.story.delete_volume(&actor, id).await.gql()?;
        Ok(DeleteVolumePayload {
            volume: Volume(volume),
        })
    }

    /// Creates a chapter (with revision 1 when content is given). Needs MEMBER; counts
    /// against the chapters-per-novel quota.
    #[tracing::instrument(skip_all, name = "createChapter")]
    async fn create_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new chapter.")] input: CreateChapterInput,
    ) -> async_graphql::Result<CreateChapterPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateChapter {
            novel_id: decode(&input.novel_id, "novelId")?,
            volume_id: decode_opt(input.volume_id.as_ref(), "volumeId")?,
            seq: input.seq,
            title: input.title,
            outline: input.outline,
            content: input.content,
            target_word_count: input.target_word_count,
            story_time_start: input.story_time_start,
            story_time_end: input.story_time_end,
        };
        let chapter = s.story.create_chapter(&actor, input).await.gql()?;
        Ok(CreateChapterPayload {
            chapter: Chapter(chapter),
        })
    }

    /// Changes a chapter. New content is stored as a new revision (checked against
    /// `expectedVersion` when given). Needs MEMBER.
    #[tracing::instrument(skip_all, name = "updateChapter")]
    async fn update_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter and the fields to change.")] input: UpdateChapterInput,
    ) -> async_graphql::Result<UpdateChapterPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let volume_id = match &input.volume_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(decode(v, "volumeId")?)),
        };
        let change = svc::UpdateChapter {
            volume_id,
            seq: input.seq,
            title: input.title,
            outline: input.outline,
            summary: input.summary,
            content: input.content,
            expected_version: input.expected_version,
            target_word_count: input.target_word_count,
            story_time_start: input.story_time_start,
            story_time_end: input.story_time_end,
            status: input.status.map(Into::into),
        };
        let chapter = s.story.update_chapter(&actor, id, change).await.gql()?;
        Ok(UpdateChapterPayload {
            chapter: Chapter(chapter),
        })
    }

    /// Deletes a chapter and its revisions. Needs MEMBER.
    #[tracing::instrument(skip_all, name = "deleteChapter")]
    async fn delete_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter to delete.")] input: DeleteChapterInput,
    ) -> async_graphql::Result<DeleteChapterPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let chapter = s.story.delete_chapter(&actor, id).await.gql()?;
        Ok(DeleteChapterPayload {
            chapter: Chapter(chapter),
        })
    }

    /// Restores the content of an earlier revision, as a new revision. Needs MEMBER.
    #[tracing::instrument(skip_all, name = "rollbackChapter")]
    async fn rollback_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter and the revision to restore.")] input: RollbackChapterInput,
    ) -> async_graphql::Result<RollbackChapterPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.chapter_id, "chapterId")?;
        let revision = decode(&input.revision_id, "revisionId")?;
        let chapter = s.story.rollback_chapter(&actor, id, revision).await.gql()?;
        Ok(RollbackChapterPayload {
            chapter: Chapter(chapter),
        })
    }
}
