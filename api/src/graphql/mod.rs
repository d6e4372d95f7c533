//! The GraphQL layer: one module per domain service, each an Apollo Federation v2
//! subgraph ([`story`] served as `story-gen`, [`memory`], [`admin`], [`retrieval`] served
//! as `rag-retrieval`, [`validation`] served as `validator`, [`file`]), merged here into
//! the gateway schema.
//!
//! - [`build_schema`] builds the gateway schema the server serves (every subgraph merged,
//!   plus [`root`]'s `node`/`nodes`), with depth and complexity limits.
//! - [`sdl`] prints its public SDL: the contract `schema.graphql` must equal.
//! - [`subgraph_sdl`] prints one subgraph built alone as a federation subgraph, and
//!   [`build_subgraph`] builds it to serve (`znovel serve --role …`).
//!
//! Resolvers stay thin: they decode global IDs ([`ids`]), call a domain service with the
//! request's [`context::actor`], and map errors with [`errors::to_gql`].

pub mod admin;
pub mod connection;
pub mod context;
pub mod errors;
pub mod fanout;
pub mod file;
pub mod ids;
pub mod memory;
pub mod parsed;
pub mod refs;
pub mod retrieval;
pub mod root;
pub mod selections;
pub mod story;
mod subgraph;
#[cfg(test)]
mod tests;
pub mod trusted;
pub mod validation;

pub use subgraph::{
    ADMIN, FILE, MEMORY, RAG_RETRIEVAL, STORY_GEN, SUBGRAPHS, StorySubscription, SubgraphSchema,
    VALIDATOR, build_subgraph, subgraph_sdl,
};

use async_graphql::{Context, MergedObject, MergedSubscription, Schema, SchemaBuilder};
use znovel_domain::auth::Actor;
use znovel_domain::services::Services;

/// The `JSON` scalar: any JSON value (world settings, attributes, audit details).
pub type Json = async_graphql::Json<serde_json::Value>;

/// The gateway schema: every subgraph merged.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

// The story-gen subgraph's generation subscriptions. Named `Subscription` because a
// federation router names the composed root types `Query`/`Mutation`/`Subscription`, and
// the composed supergraph's API schema must equal this one.
/// Every live stream the API offers.
#[derive(MergedSubscription, Default)]
pub struct Subscription(story::GenerationSubscription);

// Every subgraph's queries plus `node`/`nodes`.
/// Every read the API offers.
#[derive(MergedObject, Default)]
pub struct Query(
    root::RootQuery,
    story::StoryQuery,
    story::GenerationQuery,
    memory::MemoryQuery,
    admin::AdminQuery,
    retrieval::RetrievalQuery,
    validation::ValidationQuery,
    story::FileQuery,
);

// Every subgraph's mutations.
/// Every change the API offers.
#[derive(MergedObject, Default)]
pub struct Mutation(
    story::StoryMutation,
    story::GenerationMutation,
    memory::MemoryMutation,
    admin::AdminMutation,
    validation::ValidationMutation,
    story::FileMutation,
);

/// Abuse limits applied to every operation.
///
/// Depth counts nested fields; complexity counts one per selected field, with list
/// fields multiplying their selection by the page size asked for (`first`, default 20;
/// see [`connection::cost`]): `novels(first: 100) { edges { node { id title } } }` costs
/// 400; novels with their chapters (`id title` each) cost 1 680 at the default page size
/// and 10 200 at 50 per page; three nested 100-item lists cost over a million. GraphiQL's
/// introspection query has depth 13 and complexity 181.
#[derive(Clone, Debug)]
pub struct SchemaLimits {
    /// Deepest selection nesting allowed (default 15: a Relay list nests three levels per
    /// list, and GraphiQL's introspection query needs 13).
    pub max_depth: usize,
    /// Largest complexity allowed (default 5 000: two nested lists at the default page
    /// size pass, two nested 50-item lists do not).
    pub max_complexity: usize,
    /// Most field selections one operation may expand to once its fragments are spread
    /// (default 2 000; GraphiQL's introspection query expands to about 250): see
    /// [`selections`].
    pub max_selections: usize,
    /// Which documents may run, and the persisted-query cache (see [`trusted`]).
    pub trusted: trusted::TrustedDocuments,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_complexity: 5_000,
            max_selections: 2_000,
            trusted: trusted::TrustedDocuments::default(),
        }
    }
}

/// Applies the limits to a schema builder (and gives it the shared chunk payloads).
fn limited<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    limits: &SchemaLimits,
) -> SchemaBuilder<Q, M, S> {
    builder
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        // First, so a remembered document skips the other extensions' parse checks
        // (it passed them when it was parsed); one cache per schema (a validation holds
        // only for the schema that ran it).
        .extension(parsed::ParsedDocuments::default())
        .extension(limits.trusted.clone())
        .extension(selections::SelectionLimit {
            max: limits.max_selections,
        })
        // The chunk payloads `chapterStream`'s subscribers share (see [`fanout`]).
        .data(fanout::ChunkPayloads::default())
}

/// Builds the gateway schema over `services` (available to resolvers as schema data).
pub fn build_schema(services: Services, limits: &SchemaLimits) -> AppSchema {
    limited(
        Schema::build(
            Query::default(),
            Mutation::default(),
            Subscription::default(),
        ),
        limits,
    )
    .data(services)
    .finish()
}

/// The public API SDL (no federation directives): what `znovel print-schema` prints and
/// what `schema.graphql` must equal.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}

/// The services and the actor of a resolver call: `UNAUTHENTICATED` when the request is
/// anonymous, `INTERNAL` if the schema was built without services (a wiring bug).
pub(crate) fn call<'a>(ctx: &Context<'a>) -> async_graphql::Result<(&'a Services, Actor)> {
    let actor = context::actor(ctx)?;
    let services = ctx.data::<Services>().map_err(|_| {
        errors::to_gql(znovel_domain::Error::Internal(
            "the schema was built without services".into(),
        ))
    })?;
    Ok((services, actor))
}
