//! Continuity checking: `checkDraft` (a draft against the story as of a chapter; writes
//! nothing), `validateChapter` (checks a chapter and stores the report as its current
//! version's) and `Chapter.validation` — served with the story (the story-gen subgraph).

mod types;

pub use types::*;

use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::decode;
use crate::graphql::story::Chapter;
use async_graphql::{Context, Object, SimpleObject};
use znovel_domain::model as m;
use znovel_domain::services::CheckDraft;

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
