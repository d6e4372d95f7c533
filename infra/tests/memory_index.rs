//! The memory index contract suite: every test body is written once against
//! `dyn MemoryIndex` and instantiated for every adapter — the SQL index on SQLite and on
//! PostgreSQL, Qdrant, and PostgreSQL mirrored to Qdrant (see `memory_index/support.rs`
//! for how each is set up; a real Qdrant server is started per test). `mirror.rs` stops
//! Qdrant mid-run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `index_test!(name)` → `mod name { sqlite, postgres, qdrant, mirrored }`.
macro_rules! index_test {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                let ctx = crate::support::Ctx::sql(znovel_infra::DbBackend::Sqlite).await;
                crate::contract::$name(&ctx).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                let ctx = crate::support::Ctx::sql(znovel_infra::DbBackend::Postgres).await;
                crate::contract::$name(&ctx).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn qdrant() {
                let Some(ctx) = crate::support::Ctx::qdrant().await else {
                    return;
                };
                crate::contract::$name(&ctx).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn mirrored() {
                let Some(ctx) = crate::support::Ctx::mirrored().await else {
                    return;
                };
                crate::contract::$name(&ctx).await;
            }
        }
    )*};
}

#[path = "memory_index/contract.rs"]
mod contract;
#[path = "memory_index/mirror.rs"]
mod mirror;
#[path = "memory_index/support.rs"]
mod support;

index_test!(
    replace_swaps_a_sources_records,
    keyword_search_finds_names_in_both_languages,
    story_time_filter_is_strict,
    kinds_filter,
    dense_ranks_by_similarity_within_the_model,
    hybrid_fuses_both_rankings,
    forget_and_forget_chapter,
    tenants_and_novels_never_mix,
    limit_and_empty_queries,
);
