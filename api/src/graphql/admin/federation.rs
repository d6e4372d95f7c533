//! `node`/`nodes` for the federated deployment, served by the admin subgraph.
//!
//! In the gateway, `node(id)` returns the object itself. Behind a federation router, the
//! admin subgraph answers `node`/`nodes`: it checks the object exists and is visible
//! (the same lookup as the gateway's), and returns admin objects whole and any other
//! object as a reference (`__typename` + `id`), whose other fields the router fetches
//! from the owning subgraph through its `@key(fields: "id")` entity resolver. The
//! reference types below are `@key(fields: "id", resolvable: false)` stubs whose
//! descriptions equal the real types', so the composed supergraph equals the gateway's
//! schema. `EntityState` is not an entity (no lookup by id), so it has no reference.

use super::types::{ApiKey, AuditEntry, Tenant, User};
use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::refs::*;
use crate::graphql::root::{self, Node};
use async_graphql::{Context, ID, Interface, Object};
use znovel_domain::Error;

// The admin subgraph's share of the `Node` interface: its own types plus references.
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
pub enum FederatedNode {
    /// A tenant.
    Tenant(Tenant),
    /// A user.
    User(User),
    /// An API key.
    ApiKey(ApiKey),
    /// An audit-log entry.
    AuditEntry(AuditEntry),
    /// A novel reference.
    Novel(NovelRef),
    /// A volume reference.
    Volume(VolumeRef),
    /// A chapter reference.
    Chapter(ChapterRef),
    /// A chapter revision reference.
    ChapterRevision(ChapterRevisionRef),
    /// An entity reference.
    Entity(EntityRef),
    /// A relation reference.
    Relation(RelationRef),
    /// An event reference.
    Event(EventRef),
    /// A foreshadowing thread reference.
    Foreshadowing(ForeshadowingRef),
    /// A generation job reference.
    GenerationJob(GenerationJobRef),
}

impl TryFrom<Node> for FederatedNode {
    type Error = Error;

    fn try_from(node: Node) -> Result<Self, Error> {
        use crate::graphql::ids::to_id;
        Ok(match node {
            Node::Tenant(t) => Self::Tenant(t),
            Node::User(u) => Self::User(u),
            Node::ApiKey(k) => Self::ApiKey(k),
            Node::AuditEntry(a) => Self::AuditEntry(a),
            Node::Novel(n) => Self::Novel(NovelRef { id: to_id(n.0.id) }),
            Node::Volume(v) => Self::Volume(VolumeRef { id: to_id(v.0.id) }),
            Node::Chapter(c) => Self::Chapter(ChapterRef { id: to_id(c.0.id) }),
            Node::ChapterRevision(r) => {
                Self::ChapterRevision(ChapterRevisionRef { id: to_id(r.0.id) })
            }
            Node::Entity(e) => Self::Entity(EntityRef { id: to_id(e.0.id) }),
            Node::Relation(r) => Self::Relation(RelationRef { id: to_id(r.0.id) }),
            Node::Event(e) => Self::Event(EventRef { id: to_id(e.0.id) }),
            Node::Foreshadowing(f) => Self::Foreshadowing(ForeshadowingRef { id: to_id(f.0.id) }),
            Node::GenerationJob(j) => Self::GenerationJob(GenerationJobRef { id: to_id(j.0.id) }),
            Node::EntityState(_) => {
                return Err(Error::invalid(
                    "id",
                    "EntityState objects cannot be fetched by ID yet",
                ));
            }
        })
    }
}

/// `node`/`nodes` of the admin subgraph (federated deployment only).
#[derive(Default)]
pub struct FederatedNodeQuery;

/// `node`/`nodes` of the admin subgraph (federated deployment only).
#[Object]
impl FederatedNodeQuery {
    /// Any object by its global ID.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID, as returned in any `id` field.")] id: ID,
    ) -> async_graphql::Result<FederatedNode> {
        let (s, actor) = call(ctx)?;
        let node = root::node(s, &actor, &id).await?;
        FederatedNode::try_from(node).gql()
    }

    /// Several objects by their global IDs, in the same order; `null` for those that do
    /// not exist or are not visible to the caller. At most 100 IDs.
    #[graphql(complexity = "ids.len().max(1).saturating_mul(child_complexity)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global IDs, at most 100.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<FederatedNode>>> {
        let (s, actor) = call(ctx)?;
        let nodes = root::nodes(s, &actor, &ids).await?;
        nodes
            .into_iter()
            .map(|n| n.map(FederatedNode::try_from).transpose())
            .collect::<Result<_, _>>()
            .gql()
    }
}
