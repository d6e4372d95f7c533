//! Each service's schema built alone as an Apollo Federation v2 subgraph, for a
//! federation router (Hive Router / Hive Gateway) in the distributed deployment.
//!
//! The subgraphs are named after the services (Kubernetes Deployments) that serve them:
//! `story-gen` (the [`story`] module), `memory`, `admin`, `rag-retrieval` (the
//! [`retrieval`] module), `validator` (the [`validation`] module) and `file` — also their
//! `znovel serve --role` names.
//!
//! A subgraph's root types are named `Query`/`Mutation`/`Subscription` and described like
//! the gateway's; story-gen and memory add entity resolvers (`@key(fields: "id")` on every type with a
//! lookup by id: `Novel`, `Volume`, `Chapter`, `ChapterRevision`, `Entity`, `Relation`,
//! `Event`, `Foreshadowing`); each registers its share of the `Node` interface; the
//! admin subgraph also serves `node`/`nodes` (returning references to other subgraphs'
//! objects). The validator contributes `Chapter.validation` to story-gen's `Chapter`
//! entity and the file subgraph `GenerationJob.file` to its `GenerationJob` entity, so
//! story-gen's schema leaves those fields out ([`WithoutFieldsOwnedElsewhere`]). So the
//! composed supergraph's API schema equals the gateway's [`sdl`](super::sdl).

use super::{SchemaLimits, admin, file, limited, memory, retrieval, story, validation};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::Field;
use async_graphql::registry::{MetaType, Registry, SDLExportOptions};
use async_graphql::{
    ContextSelectionSet, Data, EmptyMutation, EmptySubscription, Executor, InterfaceType,
    MergedSubscription, ObjectType, OutputType, Positioned, Request, Response, Schema,
    SchemaBuilder, ServerError, ServerResult, SubscriptionType, Value,
};
use std::borrow::Cow;
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
/// The validator subgraph's name.
pub const VALIDATOR: &str = "validator";
/// The file subgraph's name.
pub const FILE: &str = "file";

/// The subgraphs, by name (also the `--role` names of the services that serve them).
pub const SUBGRAPHS: &[&str] = &[STORY_GEN, MEMORY, ADMIN, RAG_RETRIEVAL, VALIDATOR, FILE];

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
type Validator = Schema<validation::SubgraphQuery, validation::SubgraphMutation, EmptySubscription>;
type File = Schema<file::SubgraphQuery, file::SubgraphMutation, EmptySubscription>;

/// A federation subgraph schema builder with its share of `Node`.
fn builder<Q, M, S, N>(query: Q, mutation: M, subscription: S) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
    N: InterfaceType,
{
    federated::<_, _, _, N>(Schema::build(query, mutation, subscription))
}

/// `builder` made federated, with its share of `Node`.
fn federated<Q, M, S, N>(builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
    N: InterfaceType,
{
    builder
        .enable_federation()
        .enable_subscription_in_federation()
        .register_output_type::<N>()
}

/// The fields of story types that the gateway serves with the story but that another
/// subgraph owns in the federation, by type: `Chapter.validation` is the validator's and
/// `GenerationJob.file` the file subgraph's (an entity field of `Chapter`, of
/// `GenerationJob`, there).
const FIELDS_OWNED_ELSEWHERE: &[(&str, &str)] =
    &[("Chapter", "validation"), ("GenerationJob", "file")];

/// Registered into the story-gen subgraph's schema, it takes [`FIELDS_OWNED_ELSEWHERE`]
/// out of it, and the types only they used (`ValidationReport`, `StoredFile`): the
/// story's `Chapter` and `GenerationJob` types have them for the gateway, and story-gen
/// must neither declare nor serve them (a router would otherwise see two subgraphs resolve
/// `Chapter.validation`). It registers no type of its own; the fields' resolvers stay in
/// the code but no query can select them, since a query is validated against the schema.
pub(crate) struct WithoutFieldsOwnedElsewhere;

impl OutputType for WithoutFieldsOwnedElsewhere {
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("WithoutFieldsOwnedElsewhere")
    }

    fn create_type_info(registry: &mut Registry) -> String {
        for (ty, field) in FIELDS_OWNED_ELSEWHERE {
            if let Some(MetaType::Object { fields, .. }) = registry.types.get_mut(*ty) {
                fields.shift_remove(*field);
            }
        }
        registry.remove_unused_types();
        Self::qualified_type_name()
    }

    async fn resolve(
        &self,
        _ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        Err(ServerError::new(
            "not a GraphQL type: nothing resolves to it",
            Some(field.pos),
        ))
    }
}

pub(crate) fn story_builder()
-> SchemaBuilder<story::SubgraphQuery, story::SubgraphMutation, StorySubscription> {
    // Fields are taken out before `Node` is registered: taking out the types nothing
    // uses any more keeps those registered on purpose only when they come after.
    let builder = Schema::build(
        story::SubgraphQuery::default(),
        story::SubgraphMutation::default(),
        StorySubscription::default(),
    )
    .register_output_type::<WithoutFieldsOwnedElsewhere>();
    federated::<_, _, _, story::SubgraphNode>(builder)
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

pub(crate) fn validator_builder()
-> SchemaBuilder<validation::SubgraphQuery, validation::SubgraphMutation, EmptySubscription> {
    Schema::build(Default::default(), Default::default(), EmptySubscription).enable_federation()
}

pub(crate) fn file_builder()
-> SchemaBuilder<file::SubgraphQuery, file::SubgraphMutation, EmptySubscription> {
    Schema::build(Default::default(), Default::default(), EmptySubscription).enable_federation()
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
    /// The validator subgraph.
    Validator(Validator),
    /// The file subgraph.
    File(File),
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
            Self::Validator(s) => s.sdl_with_options(opts),
            Self::File(s) => s.sdl_with_options(opts),
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
            Self::Validator(s) => s.execute(request).await,
            Self::File(s) => s.execute(request).await,
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
            Self::Validator(s) => Executor::execute_stream(s, request, session_data),
            Self::File(s) => Executor::execute_stream(s, request, session_data),
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
        VALIDATOR => {
            SubgraphSchema::Validator(limited(validator_builder(), limits).data(services).finish())
        }
        FILE => SubgraphSchema::File(limited(file_builder(), limits).data(services).finish()),
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
        VALIDATOR => SubgraphSchema::Validator(validator_builder().finish()),
        FILE => SubgraphSchema::File(file_builder().finish()),
        _ => return None,
    };
    Some(schema.sdl())
}
