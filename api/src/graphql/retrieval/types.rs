//! Recall's types: `RecallMode`, `MemoryKind`, `RecallResult`, `RecallHit` (with the story's
//! `Chapter` in the gateway and story-gen) and their twins for the rag-retrieval subgraph
//! built alone (`RecallHit.chapter` a reference to the `Chapter` entity); [`recall_hit`]
//! makes the validator subgraph's `RecallHit` too.

use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::to_id;
use crate::graphql::refs::ChapterRef;
use crate::graphql::story::Chapter;
use async_graphql::{Enum, SimpleObject};
use znovel_domain::services::RecallResult as Recalled;

/// How `recall` searches.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::RecallMode")]
pub enum RecallMode {
    /// Meaning (dense vectors) and words (keywords, names), fused by reciprocal rank.
    Hybrid,
    /// Meaning only.
    Dense,
    /// Words only: names, exact terms (BM25-style ranking).
    Keyword,
}

/// What a remembered record is.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::MemoryKind")]
pub enum MemoryKind {
    /// A passage of a chapter's text (with its offsets in the chapter).
    Passage,
    /// A chapter's summary.
    Summary,
    /// A story-bible entity: its names, description and attributes.
    Entity,
    /// A change of an entity's state.
    EntityState,
    /// A timeline event.
    Event,
    /// A relation between two entities.
    Relation,
    /// A foreshadowing thread.
    Foreshadowing,
}

/// Defines a `RecallHit` type (`$hit`, a wrapper of the domain's hit) whose `chapter` is
/// `$chapter`, resolved by `$resolve` (with `$ctx` the resolver's context and `$h` the
/// domain hit): the story's `Chapter` in the gateway and story-gen, a reference in a
/// subgraph built alone. Every instance prints the same `@shareable` type, so the
/// subgraphs that return one compose.
macro_rules! recall_hit {
    ($hit:ident, $chapter:ty, |$ctx:ident, $h:ident| $resolve:expr) => {
        /// A remembered text and why it was found.
        pub struct $hit(pub znovel_domain::model::RecallHit);

        /// A remembered text and why it was found.
        #[async_graphql::Object(name = "RecallHit", shareable)]
        impl $hit {
            /// The text: a chapter passage exactly as written, or a story-bible record
            /// rendered as a sentence.
            async fn text(&self) -> &str {
                &self.0.text
            }
            /// Relevance, higher is better: the fused reciprocal-rank score (HYBRID), the
            /// cosine similarity (DENSE) or the keyword score (KEYWORD).
            async fn score(&self) -> f64 {
                self.0.score
            }
            /// What it is.
            async fn kind(&self) -> $crate::graphql::retrieval::MemoryKind {
                self.0.kind.into()
            }
            /// Seq of the chapter that established it (its story time); null for the
            /// author's timeless story bible.
            async fn chapter_seq(&self) -> Option<i32> {
                self.0.chapter_seq
            }
            /// For a passage: where it starts in the chapter's content, in Unicode code
            /// points.
            async fn start_offset(&self) -> Option<i32> {
                self.0.start_offset
            }
            /// For a passage: where it ends (exclusive).
            async fn end_offset(&self) -> Option<i32> {
                self.0.end_offset
            }
            /// ID of the chapter that established it.
            async fn chapter_id(&self) -> Option<async_graphql::ID> {
                $crate::graphql::ids::opt_id(self.0.chapter_id)
            }
            /// The chapter that established it.
            async fn chapter(
                &self,
                $ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<$chapter>> {
                let $h = &self.0;
                $resolve
            }
        }
    };
}
pub(crate) use recall_hit;

macro_rules! recall_types {
    ($result:ident, $hit:ident, $chapter:ty, |$ctx:ident, $h:ident| $resolve:expr) => {
        /// What `recall` found.
        #[derive(SimpleObject)]
        #[graphql(name = "RecallResult", shareable)]
        pub struct $result {
            /// The hits, best first.
            pub hits: Vec<$hit>,
            /// How long the search took, in milliseconds.
            pub took_ms: f64,
        }

        impl From<Recalled> for $result {
            fn from(r: Recalled) -> Self {
                Self {
                    hits: r.hits.into_iter().map($hit).collect(),
                    took_ms: r.took.as_secs_f64() * 1000.0,
                }
            }
        }

        recall_hit!($hit, $chapter, |$ctx, $h| $resolve);
    };
}

recall_types!(RecallResult, RecallHit, Chapter, |ctx, h| {
    let Some(id) = h.chapter_id else {
        return Ok(None);
    };
    let (s, actor) = call(ctx)?;
    s.story
        .chapter(&actor, id)
        .await
        .gql()
        .map(|c| Some(Chapter(c)))
});

recall_types!(RecallResultRef, RecallHitRef, ChapterRef, |ctx, h| {
    let _ = ctx;
    Ok(h.chapter_id.map(|c| ChapterRef { id: to_id(c) }))
});
