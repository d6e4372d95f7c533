//! Z-Novel domain: the story model, its rules, the ports adapters implement, and the
//! use-case services the API calls.
//!
//! This crate is pure Rust: no database, HTTP, GraphQL or queue crates are in its
//! dependency tree (`tests/no_io_deps.rs` proves it). Adapters live in `znovel-infra`,
//! the GraphQL layer in `znovel`.

pub mod auth;
pub mod book;
pub mod chunk;
pub mod error;
pub mod ids;
pub mod model;
pub mod page;
pub mod ports;
pub mod services;
pub mod text;

pub use error::{Error, StoreError};
