//! The validator subgraph: continuity checking — `checkDraft` (a draft against the story
//! as of a chapter; writes nothing), `validateChapter` (checks a chapter and stores the
//! report as its current version's) and `Chapter.validation`.
//!
//! The gateway merges [`ValidationQuery`]/[`ValidationMutation`] and serves
//! `Chapter.validation` on the story's `Chapter`. Built alone (see [`SubgraphQuery`]), the
//! subgraph owns `Chapter.validation` as a field of the `Chapter` entity
//! (`@key(fields: "id")`, [`ValidatorChapter`]: a federation router asks it for the field
//! of a chapter story-gen found), and returns chapters as that entity, which the router
//! completes from story-gen. `ValidationReport`, `ValidationIssue`, `IssueSpan` and
//! `RecallHit` are `@shareable`: story-gen's `ChapterIssue` and `GenerationJob.context`
//! and rag-retrieval's `recall` return them too.

mod types;

pub use types::*;

use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::decode;
use crate::graphql::story::Chapter;
use async_graphql::{Context, ID, MergedObject, Object, SimpleObject};
use znovel_domain::model as m;
use znovel_domain::services::CheckDraft;

/// The latest continuity report of a chapter's current version, if it was checked: what
/// `Chapter.validation` resolves to in the gateway and in the validator subgraph.
pub(crate) async fn chapter_validation(
    ctx: &Context<'_>,
    chapter: &m::Chapter,
) -> async_graphql::Result<Option<m::ValidationReport>> {
    let (s, actor) = call(ctx)?;
    let v = s
        .validation
        .chapter_validation(&actor, chapter)
        .await
        .gql()?;
    Ok(v.map(|v| v.report))
}

async fn check_draft(
    ctx: &Context<'_>,
    input: CheckDraftInput,
) -> async_graphql::Result<m::ValidationReport> {
    let (s, actor) = call(ctx)?;
    let req = CheckDraft {
        novel_id: decode(&input.novel_id, "novelId")?,
        text: input.text,
        as_of_chapter: i64::from(input.as_of_chapter),
    };
    s.validation.check_draft(&actor, req).await.gql()
}

/// Validation queries.
#[derive(Default)]
pub struct ValidationQuery;

/// Validation queries.
#[Object]
impl ValidationQuery {
    /// Checks a draft against the story as of a chapter — dead characters acting, places,
    /// travel times, items, injuries, relations, repetition, the content policy — and
    /// reports what contradicts it, quoting the offending text and the earlier record.
    /// Writes nothing.
    async fn check_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The draft, its novel, and the last chapter it is checked against.")]
        input: CheckDraftInput,
    ) -> async_graphql::Result<ValidationReport> {
        check_draft(ctx, input).await.map(ValidationReport::from)
    }
}

/// Result of `validateChapter`.
#[derive(SimpleObject)]
pub struct ValidateChapterPayload {
    /// The chapter checked.
    pub chapter: Chapter,
    /// The report, now the chapter's `validation`.
    pub report: ValidationReport,
}

/// Validation mutations.
#[derive(Default)]
pub struct ValidationMutation;

/// Validation mutations.
#[Object]
impl ValidationMutation {
    /// Checks a chapter's current content against the chapters before it and stores the
    /// report as its current version's (`Chapter.validation`).
    async fn validate_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter to check.")] input: ValidateChapterInput,
    ) -> async_graphql::Result<ValidateChapterPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.chapter_id, "chapterId")?;
        let v = s.validation.validate_chapter(&actor, id).await.gql()?;
        let chapter = s.story.chapter(&actor, id).await.gql()?;
        Ok(ValidateChapterPayload {
            chapter: Chapter(chapter),
            report: v.report.into(),
        })
    }
}

/// The validator subgraph's share of the `Chapter` entity (`@key(fields: "id")`): its
/// `validation`. A federation router resolves the other fields from story-gen.
pub struct ValidatorChapter {
    /// The chapter's global ID.
    pub id: ID,
}

// Described like the story's `Chapter`, so the composed supergraph equals the gateway.
/// A chapter of a novel.
#[Object(name = "Chapter")]
impl ValidatorChapter {
    /// Global ID.
    async fn id(&self) -> &ID {
        &self.id
    }
    /// The latest continuity report of the current version (checked after its memory
    /// is updated, or by `validateChapter`); null until it is checked.
    async fn validation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<ValidatorValidationReport>> {
        let (s, actor) = call(ctx)?;
        let chapter = s
            .story
            .chapter(&actor, decode(&self.id, "id")?)
            .await
            .gql()?;
        Ok(chapter_validation(ctx, &chapter).await?.map(Into::into))
    }
}

// `ValidateChapterPayload` of the validator subgraph built alone: the chapter as the
// validator's `Chapter` entity. (Described like the gateway's.)
/// Result of `validateChapter`.
#[derive(SimpleObject)]
#[graphql(name = "ValidateChapterPayload")]
pub struct ValidatorValidateChapterPayload {
    /// The chapter checked.
    pub chapter: ValidatorChapter,
    /// The report, now the chapter's `validation`.
    pub report: ValidatorValidationReport,
}

/// `checkDraft` of the validator subgraph built alone (its evidence refers to chapters by
/// reference), and the `Chapter` entity resolver a federation router calls.
#[derive(Default)]
pub struct SubgraphValidationQuery;

/// Validation queries.
#[Object]
impl SubgraphValidationQuery {
    /// Checks a draft against the story as of a chapter — dead characters acting, places,
    /// travel times, items, injuries, relations, repetition, the content policy — and
    /// reports what contradicts it, quoting the offending text and the earlier record.
    /// Writes nothing.
    async fn check_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The draft, its novel, and the last chapter it is checked against.")]
        input: CheckDraftInput,
    ) -> async_graphql::Result<ValidatorValidationReport> {
        check_draft(ctx, input)
            .await
            .map(ValidatorValidationReport::from)
    }

    /// Resolves a `Chapter` reference to the validator's share of it (`validation`).
    #[graphql(entity)]
    async fn find_chapter_by_id(
        &self,
        #[graphql(desc = "The chapter's global ID.")] id: ID,
    ) -> async_graphql::Result<ValidatorChapter> {
        decode::<znovel_domain::ids::ChapterId>(&id, "id")?;
        Ok(ValidatorChapter { id })
    }
}

/// `validateChapter` of the validator subgraph built alone (its chapter a reference).
#[derive(Default)]
pub struct SubgraphValidationMutation;

/// Validation mutations.
#[Object]
impl SubgraphValidationMutation {
    /// Checks a chapter's current content against the chapters before it and stores the
    /// report as its current version's (`Chapter.validation`).
    async fn validate_chapter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The chapter to check.")] input: ValidateChapterInput,
    ) -> async_graphql::Result<ValidatorValidateChapterPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.chapter_id, "chapterId")?;
        let v = s.validation.validate_chapter(&actor, id).await.gql()?;
        Ok(ValidatorValidateChapterPayload {
            chapter: ValidatorChapter {
                id: input.chapter_id,
            },
            report: v.report.into(),
        })
    }
}

// Root query type of the validator subgraph built alone.
// (Described like the gateway's, so the composed supergraph equals it.)
/// Every read the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(SubgraphValidationQuery);

// Root mutation type of the validator subgraph built alone.
/// Every change the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct SubgraphMutation(SubgraphValidationMutation);
