//! The repository contract suite: every test body is written once, as an async fn taking
//! a [`support::Ctx`] (a fresh, migrated database and its store), and `contract_test!`
//! instantiates it for SQLite and PostgreSQL, each run on its own database — so both
//! backends must pass the same assertions and the tests run in parallel.
//!
//! PostgreSQL comes from `ZNOVEL_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `contract_test!(module::test_fn)` → `mod test_fn { sqlite, postgres }`.
macro_rules! contract_test {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                let ctx = crate::support::Ctx::new(znovel_infra::DbBackend::Sqlite).await;
                crate::$module::$name(&ctx).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                let ctx = crate::support::Ctx::new(znovel_infra::DbBackend::Postgres).await;
                crate::$module::$name(&ctx).await;
            }
        }
    )*};
}

#[path = "store_contract/support.rs"]
mod support;

#[path = "store_contract/admin.rs"]
mod admin;
#[path = "store_contract/cascades.rs"]
mod cascades;
#[path = "store_contract/chapters.rs"]
mod chapters;
#[path = "store_contract/files.rs"]
mod files;
#[path = "store_contract/isolation.rs"]
mod isolation;
#[path = "store_contract/jobs.rs"]
mod jobs;
#[path = "store_contract/memory.rs"]
mod memory;
#[path = "store_contract/novels.rs"]
mod novels;
#[path = "store_contract/operations.rs"]
mod operations;
#[path = "store_contract/postgres_only.rs"]
mod postgres_only;
#[path = "store_contract/shown.rs"]
mod shown;
#[path = "store_contract/timeline.rs"]
mod timeline;

contract_test!(
    chapters::reads_do_not_wait_for_a_writer,
    shown::a_shown_chapter_follows_every_write_of_its_store,
    shown::a_shown_chapter_follows_writes_of_other_processes,
    admin::tenant_round_trip,
    admin::tenant_slug_conflict,
    admin::users,
    admin::api_keys,
    admin::audit_log_newest_first,
    admin::trusted_documents,
    novels::novel_round_trip_and_filters,
    novels::novel_pages,
    novels::volumes,
    chapters::chapter_round_trip,
    chapters::chapter_seq_conflicts,
    chapters::chapter_pages_by_seq,
    chapters::revisions_newest_first,
    chapters::save_content_version_conflict,
    chapters::word_count_maintenance,
    chapters::concurrent_chapter_writes,
    cascades::chapter_delete_cascades,
    cascades::novel_delete_cascades,
    memory::entity_round_trip_and_conflicts,
    memory::entity_search_and_pages,
    memory::entity_states,
    memory::entity_delete_cascades,
    memory::relations,
    timeline::events_timeline,
    timeline::foreshadowing,
    isolation::tenant_isolation,
    files::files_round_trip,
    files::files_of_jobs_isolation_and_cascade,
    jobs::jobs_round_trip,
    jobs::jobs_idempotency_key_conflict,
    jobs::jobs_newest_first,
    jobs::jobs_start_and_reclaim,
    jobs::jobs_concurrent_start_and_complete,
    jobs::jobs_complete_stores_everything_once,
    jobs::jobs_complete_after_cancel,
    jobs::jobs_complete_with_stale_version,
    jobs::jobs_tokens_used_per_day,
    jobs::jobs_tenant_isolation,
    operations::store_basics,
    operations::migrate_twice_is_a_no_op,
    operations::concurrent_migrations,
    operations::corrupt_rows_are_internal_errors,
);
