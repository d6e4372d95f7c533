//! Black-box API tests: each test starts the real server on port 0 (in this process,
//! with its own fresh database) and talks HTTP and WebSocket to it like a client would.
//! Every test runs twice: on a SQLite file and on the real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod helpers;

mod auth;
mod bad_input;
mod batch;
mod binary;
mod crash;
mod dense_recall;
mod faults;
mod files;
mod fuzz;
mod generation;
mod hardening;
mod import;
mod live_credentials;
mod memory;
mod multipart;
mod operations;
mod playground;
mod rate_limits;
mod reindex;
mod roles;
mod scale_out;
mod schema;
mod story;
mod tenancy;
mod trusted;
mod validation;
mod websocket;
