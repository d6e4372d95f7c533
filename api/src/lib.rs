//! Z-Novel API server: the GraphQL schema (one module per service subgraph), the axum
//! HTTP/WebSocket server, authentication, configuration, metrics and the `znovel` CLI.

pub mod graphql;
