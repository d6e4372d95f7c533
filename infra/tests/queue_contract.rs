//! The job queue and token stream contract suite: every test body is written once, as an
//! async fn taking a [`support::Ctx`], and `contract_test!` runs it against the
//! in-process adapters and against Redis — each Redis test under its own random key
//! prefix (deleted afterwards), so the tests run in parallel.
//!
//! Redis comes from `ZNOVEL_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`); a few
//! Redis-only tests start private `redis-server`s (on PATH) to kill and restart them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `contract_test!(module::test_fn)` → `mod test_fn { memory, redis }`.
macro_rules! contract_test {
    ($($module:ident :: $name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let ctx = crate::support::Ctx::new(crate::support::Backend::Memory).await;
                crate::$module::$name(&ctx).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let ctx = crate::support::Ctx::new(crate::support::Backend::Redis).await;
                crate::$module::$name(&ctx).await;
            }
        }
    )*};
}

#[path = "queue_contract/support.rs"]
mod support;

#[path = "queue_contract/memory_only.rs"]
mod memory_only;
#[path = "queue_contract/queue.rs"]
mod queue;
#[path = "queue_contract/redis_only.rs"]
mod redis_only;
#[path = "queue_contract/streams.rs"]
mod streams;

contract_test!(
    queue::fifo_enqueue_claim_ack,
    queue::max_zero_and_bad_receipts,
    queue::no_double_delivery,
    queue::dead_consumer_is_reclaimed,
    queue::extend_keeps_delivery,
    queue::release_redelivers_at_once,
    queue::stale_delivery_cannot_extend_or_release,
    queue::dead_letter_is_final,
    queue::stats_counts,
    queue::claim_wakes_on_enqueue,
    queue::claim_waits_then_returns_empty,
    streams::read_from_any_point,
    streams::missing_stream_reads_empty,
    streams::blocked_reader_wakes,
    streams::end_ends_stream,
    streams::duplicate_append_ignored,
    streams::seq_zero_rejected,
    streams::tenant_isolation,
    streams::expire_removes_stream,
    streams::peers_share_streams,
    streams::many_live_readers,
    streams::reader_outlives_its_stream,
    streams::cap_limits_stream,
);
