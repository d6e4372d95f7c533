//! Each service's schema built alone as an Apollo Federation v2 subgraph, for a
//! federation router (Hive Router / Hive Gateway) in the distributed deployment.
//!
//! The subgraphs are named after the services (Kubernetes Deployments) that serve them:
//! `story-gen` (the [`story`] module), `memory`, `admin` and `rag-retrieval` (the
//! [`retrieval`] module) — also their `znovel serve --role` names.
//!
//! A subgraph's root types are named `Query`/`Mutation`/`Subscription` and described like
//! the gateway's; story-gen and memory add entity resolvers (`@key(fields: "id")` on every type with a
//! lookup by id: `Novel`, `Volume`, `Chapter`, `ChapterRevision`, `Entity`, `Relation`,
//! `Event`, `Foreshadowing`); each registers its share of the `Node` interface; the
//! admin subgraph also serves `node`/`nodes` (returning references to other subgraphs'
//! objects). So the composed supergraph's API schema equals the gateway's [`sdl`](super::sdl).

use super::{SchemaLimits, admin, limited, memory, retrieval, story};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::registry::SDLExportOptions;
use async_graphql::{
    Data, EmptyMutation, EmptySubscription, Executor, InterfaceType, MergedSubscription,
    ObjectType, Request, Response, Schema, SchemaBuilder, SubscriptionType,
};
use std::sync::Arc;
use znovel_domain::services::Services;

/// The story-gen subgraph's name.
pub const STORY_GEN: &str = "story-gen";
/// The memory subgraph's name.
pub const MEMORY: &str = "memory";
/// The admin subgraph's name.
pub const ADMIN: &str = "admin";
/// The rag-retrieval subgraph's name.
pub const RAG_RETRIEVAL: &str = "rag-retrieval";

/// The subgraphs, by name (also the `--role` names of the services that serve them).
pub const SUBGRAPHS: &[&str] = &[STORY_GEN, MEMORY, ADMIN, RAG_RETRIEVAL];

// Root subscription type of the story-gen subgraph built alone (named and described like
// the gateway's, so the composed supergraph equals it).
/// Every live stream the API offers.
#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct StorySubscription(story::GenerationSubscription);

type Story = Schema<story::SubgraphQuery, story::SubgraphMutation, StorySubscription>;
type Memory = Schema<memory::SubgraphQuery, memory::SubgraphMutation, EmptySubscription>;
type Admin = Schema<admin::SubgraphQuery, admin::SubgraphMutation, EmptySubscription>;
type Retrieval = Schema<retrieval::SubgraphQuery, EmptyMutation, EmptySubscription>;

/// A federation subgraph schema builder with its share of `Node`.
fn builder<Q, M, S, N>(query: Q, mutation: M, subscription: S) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
    N: InterfaceType,
{
    Schema::build(query, mutation, subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .register_output_type::<N>()
}

pub(crate) fn story_builder()
-> SchemaBuilder<story::SubgraphQuery, story::SubgraphMutation, StorySubscription> {
    builder::<_, _, _, story::SubgraphNode>(
        Default::default(),
        Default::default(),
        Default::default(),
    )
}

pub(crate) fn memory_builder()
-> SchemaBuilder<memory::SubgraphQuery, memory::SubgraphMutation, EmptySubscription> {
    builder::<_, _, _, memory::SubgraphNode>(
        Default::default(),
        Default::default(),
        EmptySubscription,
    )
}

pub(crate) fn admin_builder()
-> SchemaBuilder<admin::SubgraphQuery, admin::SubgraphMutation, EmptySubscription> {
    builder::<_, _, _, admin::FederatedNode>(
        Default::default(),
        Default::default(),
        EmptySubscription,
    )
}

pub(crate) fn retrieval_builder()
-> SchemaBuilder<retrieval::SubgraphQuery, EmptyMutation, EmptySubscription> {
    Schema::build(Default::default(), EmptyMutation, EmptySubscription).enable_federation()
}

/// One subgraph's executable schema (each has its own root types, hence the enum).
#[derive(Clone)]
pub enum SubgraphSchema {
    /// The story-gen subgraph.
    Story(Story),
    /// The memory subgraph.
    Memory(Memory),
    /// The admin subgraph.
    Admin(Admin),
    /// The rag-retrieval subgraph.
    Retrieval(Retrieval),
}

impl SubgraphSchema {
    /// Its federation SDL (what `_service { sdl }` returns).
    pub fn sdl(&self) -> String {
        let opts = SDLExportOptions::new().federation().compose_directive();
        match self {
            Self::Story(s) => s.sdl_with_options(opts),
            Self::Memory(s) => s.sdl_with_options(opts),
            Self::Admin(s) => s.sdl_with_options(opts),
            Self::Retrieval(s) => s.sdl_with_options(opts),
        }
    }
}

impl Executor for SubgraphSchema {
    async fn execute(&self, request: Request) -> Response {
        match self {
            Self::Story(s) => s.execute(request).await,
            Self::Memory(s) => s.execute(request).await,
            Self::Admin(s) => s.execute(request).await,
            Self::Retrieval(s) => s.execute(request).await,
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self {
            Self::Story(s) => Executor::execute_stream(s, request, session_data),
            Self::Memory(s) => Executor::execute_stream(s, request, session_data),
            Self::Admin(s) => Executor::execute_stream(s, request, session_data),
            Self::Retrieval(s) => Executor::execute_stream(s, request, session_data),
        }
    }
}

/// Builds the subgraph `name` (one of [`SUBGRAPHS`]) over `services`, to serve alone
/// behind a federation router; `None` for an unknown name.
pub fn build_subgraph(
    name: &str,
    services: Services,
    limits: &SchemaLimits,
) -> Option<SubgraphSchema> {
    Some(match name {
        STORY_GEN => {
            SubgraphSchema::Story(limited(story_builder(), limits).data(services).finish())
        }
        MEMORY => SubgraphSchema::Memory(limited(memory_builder(), limits).data(services).finish()),
        ADMIN => SubgraphSchema::Admin(limited(admin_builder(), limits).data(services).finish()),
        RAG_RETRIEVAL => {
            SubgraphSchema::Retrieval(limited(retrieval_builder(), limits).data(services).finish())
        }
        _ => return None,
    })
}

/// The federation v2 SDL of the subgraph `name` (one of [`SUBGRAPHS`]); `None` for an
/// unknown name.
pub fn subgraph_sdl(name: &str) -> Option<String> {
    let schema = match name {
        STORY_GEN => SubgraphSchema::Story(story_builder().finish()),
        MEMORY => SubgraphSchema::Memory(memory_builder().finish()),
        ADMIN => SubgraphSchema::Admin(admin_builder().finish()),
        RAG_RETRIEVAL => SubgraphSchema::Retrieval(retrieval_builder().finish()),
        _ => return None,
    };
    Some(schema.sdl())
}
