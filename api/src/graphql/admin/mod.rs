//! The admin subgraph: the caller (`viewer`), its tenant and quota, users, API keys and
//! the audit log.

mod federation;
mod inputs;
mod mutation;
mod query;
mod types;

pub use federation::{FederatedNode, FederatedNodeQuery};
pub use inputs::*;
pub use mutation::AdminMutation;
pub use query::AdminQuery;
pub use types::*;

use async_graphql::MergedObject;

// Root query type of the admin subgraph built alone: its queries plus `node`/`nodes`
// for the federated deployment (see [`federation`]).
// (Described like the gateway's, so the composed supergraph equals it.)
/// Every read the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(AdminQuery, FederatedNodeQuery);

// Root mutation type of the admin subgraph built alone.
/// Every change the API offers.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct SubgraphMutation(AdminMutation);
