//! The memory subgraph: the story bible (entities and their state history, relations,
//! timeline events, foreshadowing threads).
//!
//! `MemoryQuery`/`MemoryMutation` are merged into the gateway's root types; built alone
//! (see [`SubgraphQuery`]) the subgraph also resolves `Entity` references for a
//! federation router. Its types refer to story objects by ID only.

mod inputs;
mod mutation;
mod query;
mod timeline;
mod types;

pub use inputs::*;
pub use mutation::MemoryMutation;
pub use query::{MemoryEntities, MemoryQuery};
pub use timeline::*;
pub use types::*;

use async_graphql::{ID, Interface, MergedObject};

// Root query type of the memory subgraph built alone: its queries plus the entity
// resolver a federation router calls.
// (Described like the gateway's, so the composed supergraph equals it.)
/// Every read the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(MemoryQuery, MemoryEntities);

// Root mutation type of the memory subgraph built alone.
/// Every change the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct SubgraphMutation(MemoryMutation);

// The memory subgraph's share of the `Node` interface.
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
    /// A story-bible entity.
    Entity(Entity),
    /// An entity state change.
    EntityState(EntityState),
    /// A relation.
    Relation(Relation),
    /// A timeline event.
    Event(Event),
    /// A foreshadowing thread.
    Foreshadowing(Foreshadowing),
}
