//! The story subgraph: novels, volumes, chapters and revisions.
//!
//! `StoryQuery`/`StoryMutation` are merged into the gateway's root types; built alone
//! (see [`SubgraphQuery`]) the subgraph also resolves `Novel` and `Chapter` references
//! for a federation router. Continuity checking (`checkDraft`, `validateChapter`,
//! `Chapter.validation`) is the validator subgraph's, not this one's; stored files, import
//! and export (`files`, `previewImport`, `importManuscript`, `exportNovel`, `deleteFile`,
//! `GenerationJob.file`; their types are in this module, for the gateway) are the file
//! subgraph's.

mod chapter;
mod files;
mod generation;
mod import;
mod inputs;
mod live;
mod mutation;
mod query;
mod types;

pub use chapter::*;
pub use files::*;
pub use generation::*;
pub use import::*;
pub use inputs::*;
pub use live::*;
pub use mutation::StoryMutation;
pub use query::{StoryEntities, StoryQuery};
pub use types::*;

use async_graphql::{ID, Interface, MergedObject};

// Root query type of the story subgraph built alone: its queries plus the entity
// resolvers a federation router calls.
// (Described like the gateway's, so the composed supergraph equals it.)
/// Every read the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(StoryQuery, GenerationQuery, StoryEntities);

// Root mutation type of the story subgraph built alone.
/// Every change the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct SubgraphMutation(StoryMutation, GenerationMutation);

// The story subgraph's share of the `Node` interface.
/// An object with a global ID, which `node(id)` fetches again.
#[derive(Interface)]
#[graphql(
    name = "Node",
    field(
        name = "id",
        ty = "ID",
        desc = "Global ID: opaque, stable, unique across types."
    )
)]
pub enum SubgraphNode {
    /// A novel.
    Novel(Novel),
    /// A volume.
    Volume(Volume),
    /// A chapter.
    Chapter(Chapter),
    /// A chapter revision.
    ChapterRevision(ChapterRevision),
    /// A generation job.
    GenerationJob(GenerationJob),
}
