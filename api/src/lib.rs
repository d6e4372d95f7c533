//! Z-Novel API server: the GraphQL schema (one module per service subgraph), the axum
//! HTTP/WebSocket server, authentication, configuration, metrics and the `znovel` CLI.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod documents;
pub mod embedding;
pub mod graphql;
pub mod live_auth;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod reindex;
pub mod role;
pub mod server;
pub mod telemetry;
pub mod worker;
