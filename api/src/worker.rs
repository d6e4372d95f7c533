//! Job workers: claim deliveries from the queue and run them with the domain's
//! [`JobRunner`], in this process (`znovel serve`) or on their own (`znovel worker`).
//!
//! Each worker task: claims one delivery at a time; keeps it alive (`extend`) while it
//! runs; stops the model as soon as the job's cancellation is announced (job events, from
//! any API process), and reads the job's status every `CANCEL_POLL` for an announcement
//! lost; on shutdown hands the job back (`release`) so another
//! worker resumes it after the chunks already streamed; gives up on a job delivered more
//! than `max_attempts` times (marks it FAILED and moves it to the dead-letter queue).

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use znovel_domain::ids::JobId;
use znovel_domain::model::JobStatus;
use znovel_domain::ports::{Delivery, JobEvents, JobQueue, JobRepository};
use znovel_domain::services::runner::{JobRunner, RunOutcome, StopReason};

/// How often a running job's status is read for a cancellation not heard as it was
/// announced (the announcement lost while a pub/sub connection reconnected, or a lagging
/// listener): a heard one stops the job at once. Keeps the stop within a second.
pub const CANCEL_POLL: Duration = Duration::from_millis(750);

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Concurrent jobs in this process.
    pub concurrency: usize,
    /// Consumer name prefix (unique per process: host + pid).
    pub consumer: String,
    /// Deliveries after which a job is dead-lettered.
    pub max_attempts: u32,
    /// How often a running delivery is kept alive (well within the queue's visibility
    /// timeout: see [`WorkerOptions::for_visibility`]).
    pub keepalive: Duration,
}

impl WorkerOptions {
    /// Options for a queue whose visibility timeout is `secs`: keep-alive three times
    /// per period, so one late keep-alive never loses the job.
    pub fn for_visibility(concurrency: usize, secs: u64) -> Self {
        Self {
            concurrency,
            keepalive: Duration::from_millis(secs.saturating_mul(1000) / 3),
            ..Self::default()
        }
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 2,
            consumer: format!("worker-{}", std::process::id()),
            max_attempts: 5,
            keepalive: Duration::from_secs(10),
        }
    }
}

/// What a worker needs.
#[derive(Clone)]
pub struct WorkerDeps {
    /// The queue.
    pub queue: Arc<dyn JobQueue>,
    /// Job rows.
    pub jobs: Arc<dyn JobRepository>,
    /// Job status announcements: how a running job hears it was cancelled.
    pub events: Arc<dyn JobEvents>,
    /// The runner.
    pub runner: JobRunner,
    /// Where job outcomes are counted, if anywhere.
    pub metrics: Option<crate::metrics::Metrics>,
}

/// Spawns `opts.concurrency` workers that stop when `shutdown` turns true.
pub fn spawn(
    deps: WorkerDeps,
    opts: WorkerOptions,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..opts.concurrency)
        .map(|i| {
            let deps = deps.clone();
            let opts = opts.clone();
            let consumer = format!("{}-{i}", opts.consumer);
            let shutdown = shutdown.clone();
            tokio::spawn(async move { work(deps, opts, consumer, shutdown).await })
        })
        .collect()
}

async fn work(
    deps: WorkerDeps,
    opts: WorkerOptions,
    consumer: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let claimed = tokio::select! {
            r = deps.queue.claim(&consumer, 1, Duration::from_secs(2)) => r,
            _ = shutdown.changed() => return,
        };
        let deliveries = match claimed {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim jobs; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for d in deliveries {
            handle(&deps, &opts, &d, shutdown.clone()).await;
        }
    }
}

#[tracing::instrument(skip_all, fields(job = %d.message.job_id, tenant = %d.message.tenant_id, delivery = d.delivery_count))]
async fn handle(
    deps: &WorkerDeps,
    opts: &WorkerOptions,
    d: &Delivery,
    mut shutdown: watch::Receiver<bool>,
) {
    let (tenant, id) = (d.message.tenant_id, d.message.job_id);
    if d.delivery_count > opts.max_attempts {
        give_up(deps, d, opts.max_attempts).await;
        return;
    }
    let (jobs, events) = (deps.jobs.clone(), deps.events.clone());
    let stop = async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + cancel_poll_offset(id),
            CANCEL_POLL,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The announcements of the job's novel: a cancel made through any process is heard
        // at once. A cancel made before this subscription is found by the first read.
        let mut heard = match jobs.get_job(tenant, id).await {
            Ok(j) if j.status == JobStatus::Cancelled => return StopReason::Cancelled,
            Ok(j) => events.subscribe(tenant, j.novel_id),
            Err(_) => futures_util::stream::pending().boxed(),
        };
        loop {
            tokio::select! {
                Some(event) = heard.next() => {
                    if event.job_id == id && event.status == JobStatus::Cancelled {
                        return StopReason::Cancelled;
                    }
                }
                _ = tick.tick() => {
                    if let Ok(JobStatus::Cancelled) = jobs.job_status(tenant, id).await {
                        return StopReason::Cancelled;
                    }
                }
                _ = shutdown.changed() => return StopReason::Shutdown,
            }
        }
    };
    let run = deps.runner.run(&d.message, stop);
    tokio::pin!(run);
    let mut keepalive = tokio::time::interval(opts.keepalive);
    keepalive.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            _ = keepalive.tick() => {
                if let Err(e) = deps.queue.extend(d).await {
                    tracing::warn!(error = %e, "cannot keep the delivery alive");
                }
            }
        }
    };
    let result = match &outcome {
        RunOutcome::Succeeded
        | RunOutcome::Failed(_)
        | RunOutcome::Cancelled
        | RunOutcome::Skipped => {
            tracing::info!(outcome = ?outcome_label(&outcome), "job done");
            deps.queue.ack(d).await
        }
        RunOutcome::Retry(reason) => {
            tracing::warn!(%reason, "job handed back for another attempt");
            deps.queue.release(d).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot acknowledge the delivery; it will be redelivered");
    }
    // A skipped delivery ran nothing: it is not a job attempt.
    if let Some(m) = &deps.metrics
        && !matches!(outcome, RunOutcome::Skipped)
        && let Ok(job) = deps.jobs.get_job(tenant, id).await
    {
        m.job_finished(&job, outcome_label(&outcome));
    }
}

/// When, within its first [`CANCEL_POLL`], a job's worker first reads its status: spread
/// by the job id's random bits, so a hundred jobs started together do not all read their
/// status in the same instant.
fn cancel_poll_offset(job: JobId) -> Duration {
    let period = CANCEL_POLL.as_micros() as u64;
    Duration::from_micros(job.as_uuid().as_u128() as u64 % period)
}

/// The outcome as logged and as the `outcome` label of the job metrics.
fn outcome_label(o: &RunOutcome) -> &'static str {
    match o {
        RunOutcome::Succeeded => "succeeded",
        RunOutcome::Failed(_) => "failed",
        RunOutcome::Cancelled => "cancelled",
        RunOutcome::Skipped => "skipped",
        RunOutcome::Retry(_) => "retried",
    }
}

/// A job delivered too often (a poison job): FAILED, stream ended, dead-lettered.
async fn give_up(deps: &WorkerDeps, d: &Delivery, max: u32) {
    let reason = format!("gave up after {max} attempts");
    tracing::error!(%reason, "dead-lettering job");
    deps.runner.give_up(&d.message, &reason).await;
    if let Err(e) = deps.queue.dead_letter(d, &reason).await {
        tracing::warn!(error = %e, "cannot dead-letter the delivery");
    }
}
