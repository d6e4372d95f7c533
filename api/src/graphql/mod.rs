//! The GraphQL layer (placeholder; being built).
pub mod context;
pub mod errors;
