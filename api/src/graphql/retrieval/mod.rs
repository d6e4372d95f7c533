//! The rag-retrieval subgraph: `recall`, what the story's memory holds that is relevant to
//! a question, as of a point of the story (`beforeChapter`), by meaning and by name.
//!
//! `RecallHit` is shared with the story-gen subgraph (`GenerationJob.context`) and the
//! validator's evidence, so it is `@shareable`; its `chapter` is the story's `Chapter`
//! (served here as a reference that a federation router completes from story-gen).

mod types;

pub use types::*;

use crate::graphql::call;
use crate::graphql::errors::{ResultExt, to_gql};
use crate::graphql::ids::decode;
use async_graphql::{Context, ID, MergedObject, Object};
use znovel_domain::services::{RecallRequest, Services};

fn recall_service(s: &Services) -> async_graphql::Result<&znovel_domain::services::RecallService> {
    s.recall().map_err(to_gql)
}

/// Runs `recall` for a resolver; `wrap` builds the result type of the schema at hand.
async fn run_recall(
    ctx: &Context<'_>,
    novel_id: ID,
    query: String,
    before_chapter: Option<i32>,
    first: Option<i32>,
    mode: Option<RecallMode>,
) -> async_graphql::Result<znovel_domain::services::RecallResult> {
    let (s, actor) = call(ctx)?;
    let req = RecallRequest {
        novel_id: decode(&novel_id, "novelId")?,
        query,
        before_chapter: before_chapter.map(i64::from),
        first: first.map(i64::from),
        mode: mode.unwrap_or(RecallMode::Hybrid).into(),
    };
    recall_service(s)?.recall(&actor, req).await.gql()
}

/// Retrieval queries.
#[derive(Default)]
pub struct RetrievalQuery;

/// Retrieval queries.
#[Object]
impl RetrievalQuery {
    /// What the story's memory holds that is relevant to `query`: chapter passages (with
    /// their offsets in the chapter), summaries and story-bible records, best first.
    /// Names and aliases count (a question about "the Ferret" finds what is told of the
    /// entity under its other names). With `beforeChapter`, only what chapters before it
    /// established (and the author's timeless bible) is searched — never a later chapter.
    async fn recall(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "The question, 1 to 2,000 characters.")] query: String,
        #[graphql(desc = "Only what chapters with a seq below this established (1 or more).")]
        before_chapter: Option<i32>,
        #[graphql(desc = "How many hits, 1 to 50.", default = 8)] first: Option<i32>,
        #[graphql(desc = "How to search.", default_with = "Some(RecallMode::Hybrid)")] mode: Option<
            RecallMode,
        >,
    ) -> async_graphql::Result<RecallResult> {
        let r = run_recall(ctx, novel_id, query, before_chapter, first, mode).await?;
        Ok(RecallResult::from(r))
    }
}

/// `recall` of the rag-retrieval subgraph built alone: hits refer to chapters by
/// reference.
#[derive(Default)]
pub struct SubgraphRetrievalQuery;

/// Retrieval queries.
#[Object]
impl SubgraphRetrievalQuery {
    /// What the story's memory holds that is relevant to `query`: chapter passages (with
    /// their offsets in the chapter), summaries and story-bible records, best first.
    /// Names and aliases count (a question about "the Ferret" finds what is told of the
    /// entity under its other names). With `beforeChapter`, only what chapters before it
    /// established (and the author's timeless bible) is searched — never a later chapter.
    async fn recall(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The novel.")] novel_id: ID,
        #[graphql(desc = "The question, 1 to 2,000 characters.")] query: String,
        #[graphql(desc = "Only what chapters with a seq below this established (1 or more).")]
        before_chapter: Option<i32>,
        #[graphql(desc = "How many hits, 1 to 50.", default = 8)] first: Option<i32>,
        #[graphql(desc = "How to search.", default_with = "Some(RecallMode::Hybrid)")] mode: Option<
            RecallMode,
        >,
    ) -> async_graphql::Result<RecallResultRef> {
        let r = run_recall(ctx, novel_id, query, before_chapter, first, mode).await?;
        Ok(RecallResultRef::from(r))
    }
}

// Root query type of the rag-retrieval subgraph built alone.
// (Described like the gateway's, so the composed supergraph equals it.)
/// Every read the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(SubgraphRetrievalQuery);
