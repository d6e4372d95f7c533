//! References to entities another subgraph owns: what a subgraph built alone returns
//! for an object of another service (`__typename` + `id`); a federation router fetches
//! the other fields from the owning subgraph through its `@key(fields: "id")` entity
//! resolver. Each is a `@key(fields: "id", resolvable: false)` stub described like the
//! real type, so the composed supergraph equals the gateway's schema.

use async_graphql::{ID, SimpleObject};

macro_rules! references {
    ($($name:ident => $gql:literal, $doc:tt;)*) => {$(
        #[doc = $doc]
        #[derive(SimpleObject)]
        #[graphql(name = $gql, unresolvable = "id")]
        pub struct $name {
            /// Global ID.
            #[graphql(owned)]
            pub id: ID,
        }
    )*};
}

references! {
    NovelRef => "Novel", "A novel: the root of a story and everything established in it.";
    VolumeRef => "Volume", "An ordered part of a novel.";
    ChapterRef => "Chapter", "A chapter of a novel.";
    ChapterRevisionRef => "ChapterRevision", "One stored version of a chapter's content; never changed, so any version can be\ncompared or restored.";
    EntityRef => "Entity", "A story-bible entry: a character, location, item, organization or concept.";
    RelationRef => "Relation", "A directed relation between two entities of the same novel.";
    EventRef => "Event", "A point (or span) on the story's timeline.";
    ForeshadowingRef => "Foreshadowing", "A foreshadowing thread: something planted that must pay off.";
    GenerationJobRef => "GenerationJob", "A generation job: one request to write a chapter, and what happened to it.";
}
