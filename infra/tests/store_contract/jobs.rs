//! Generation jobs: round trip, idempotency keys, pages, the worker's state changes,
//! completing a job (job + chapter + revision + usage in one transaction) and usage sums.

use crate::support::*;
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use std::sync::Arc;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;
use znovel_domain::services::now;

/// A queued job for `c` with every optional field unset.
fn job(n: &Novel, c: Option<&Chapter>) -> GenerationJob {
    GenerationJob {
        id: JobId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        chapter_id: c.map(|c| c.id),
        kind: JobKind::Draft,
        status: JobStatus::Queued,
        priority: 0,
        input: JobInput::default(),
        idempotency_key: None,
        provider: None,
        model: None,
        fallback_used: false,
        prompt_tokens: 0,
        completion_tokens: 0,
        queued_at: now(),
        started_at: None,
        first_token_at: None,
        finished_at: None,
        attempts: 0,
        error: None,
        created_by: None,
        context: Vec::new(),
        progress: None,
    }
}

/// `j` as a worker reports it succeeded at `finished` on `model`.
fn succeeded(
    j: &GenerationJob,
    model: &str,
    tokens: (i64, i64),
    finished: DateTime<Utc>,
) -> GenerationJob {
    let mut j = j.clone();
    j.status = JobStatus::Succeeded;
    j.provider = Some("openai".into());
    j.model = Some(model.to_owned());
    j.fallback_used = true;
    (j.prompt_tokens, j.completion_tokens) = tokens;
    j.first_token_at = Some(finished - TimeDelta::seconds(3));
    j.finished_at = Some(finished);
    j
}

/// `c`'s next content as job `j` writes it, and its revision.
fn generated(c: &Chapter, words: i64, j: &GenerationJob) -> (Chapter, ChapterRevision) {
    let (next, mut rev) = next_content(c, words);
    rev.source = RevisionSource::Generation;
    rev.job_id = Some(j.id);
    rev.note = "generated".into();
    (next, rev)
}

/// A chapter of 10 words (version 1) stored with its first revision.
async fn stored_chapter(s: &znovel_infra::SqlStore, n: &Novel, seq: i32) -> Chapter {
    let c = chapter(n, seq, 10);
    s.insert_chapter(&c, Some(&revision(&c, None)))
        .await
        .unwrap();
    c
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub async fn jobs_round_trip(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "jobs").await;
    let u = user(t.id, "w@x.io");
    s.insert_user(&u).await.unwrap();
    let c = stored_chapter(s, &n, 1).await;

    // Every field set (as a finished job would be).
    let full = GenerationJob {
        kind: JobKind::Rewrite,
        status: JobStatus::Failed,
        priority: -3,
        input: JobInput {
            instructions: "darker, \"quoted\", 中文".into(),
            target_words: Some(2_500),
            chapter_version: None,
            export: None,
            import: None,
            batch: None,
            fix: vec!["“Lord Stark”: he is dead".into()],
        },
        idempotency_key: Some("key-1".into()),
        provider: Some("local".into()),
        model: Some("m-large".into()),
        fallback_used: true,
        prompt_tokens: 1_234,
        completion_tokens: 5_678,
        started_at: Some(at(1)),
        first_token_at: Some(at(2)),
        finished_at: Some(at(3)),
        attempts: 4,
        error: Some("provider timed out".into()),
        created_by: Some(u.id),
        ..job(&n, Some(&c))
    };
    s.insert_job(&full).await.unwrap();
    assert_eq!(s.get_job(t.id, full.id).await.unwrap(), full);
    assert_eq!(
        s.find_job_by_idempotency_key(t.id, "key-1").await.unwrap(),
        full
    );

    // Every optional field unset.
    let bare = job(&n, None);
    s.insert_job(&bare).await.unwrap();
    assert_eq!(s.get_job(t.id, bare.id).await.unwrap(), bare);

    assert_not_found(s.get_job(t.id, JobId::new()).await);
    assert_not_found(s.find_job_by_idempotency_key(t.id, "key-2").await);
    // A job of a novel that does not exist is refused.
    assert_not_found(s.insert_job(&job(&novel(t.id, "ghost"), None)).await);
}

pub async fn jobs_idempotency_key_conflict(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "idempotency").await;
    let mut first = job(&n, None);
    first.idempotency_key = Some("same".into());
    s.insert_job(&first).await.unwrap();

    let mut dup = job(&n, None);
    dup.idempotency_key = Some("same".into());
    dup.kind = JobKind::Polish;
    assert_conflict(s.insert_job(&dup).await);
    assert_not_found(s.get_job(t.id, dup.id).await);
    assert_eq!(
        s.find_job_by_idempotency_key(t.id, "same").await.unwrap(),
        first
    );
    assert_eq!(ctx.count("generation_jobs").await, 1, "nothing written");

    // Jobs without a key never conflict; another tenant may use the same key.
    s.insert_job(&job(&n, None)).await.unwrap();
    s.insert_job(&job(&n, None)).await.unwrap();
    let (t2, n2) = tenant_with_novel(s, "idempotency-2").await;
    let mut theirs = job(&n2, None);
    theirs.idempotency_key = Some("same".into());
    s.insert_job(&theirs).await.unwrap();
    assert_eq!(
        s.find_job_by_idempotency_key(t2.id, "same").await.unwrap(),
        theirs
    );
    assert_eq!(
        s.find_job_by_idempotency_key(t.id, "same").await.unwrap(),
        first
    );
}

pub async fn jobs_newest_first(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "job-pages").await;
    let other = novel(t.id, "Other");
    s.insert_novel(&other).await.unwrap();
    let foreign = job(&other, None);
    s.insert_job(&foreign).await.unwrap();

    let mut ids = Vec::new();
    for i in 0..7 {
        let mut j = job(&n, None);
        if i % 2 == 1 {
            j.status = JobStatus::Running;
        }
        s.insert_job(&j).await.unwrap();
        ids.push((j.id, j.status));
    }
    ids.reverse();

    let pages = all_pages(
        3,
        |j: &GenerationJob| j.id.as_uuid(),
        |p| async move { s.list_jobs(t.id, n.id, None, p).await.unwrap() },
    )
    .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let listed: Vec<JobId> = pages.concat().iter().map(|j| j.id).collect();
    assert_eq!(listed, ids.iter().map(|(id, _)| *id).collect::<Vec<_>>());

    let running = all_pages(
        2,
        |j: &GenerationJob| j.id.as_uuid(),
        |p| async move {
            s.list_jobs(t.id, n.id, Some(JobStatus::Running), p)
                .await
                .unwrap()
        },
    )
    .await;
    let listed: Vec<JobId> = running.concat().iter().map(|j| j.id).collect();
    let expected: Vec<JobId> = ids
        .iter()
        .filter(|(_, st)| *st == JobStatus::Running)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(listed.len(), 3);
    let none = s
        .list_jobs(t.id, n.id, Some(JobStatus::Succeeded), page(10, None))
        .await
        .unwrap();
    assert!(none.items.is_empty() && !none.has_next_page);

    // A cursor outside the list (another novel's job, or a QUEUED job under the RUNNING
    // filter) yields an empty page.
    let p = s
        .list_jobs(t.id, n.id, None, page(3, Some(foreign.id.as_uuid())))
        .await
        .unwrap();
    assert!(p.items.is_empty() && !p.has_next_page);
    let queued = ids[0].0;
    let p = s
        .list_jobs(
            t.id,
            n.id,
            Some(JobStatus::Running),
            page(3, Some(queued.as_uuid())),
        )
        .await
        .unwrap();
    assert!(p.items.is_empty() && !p.has_next_page);
}

pub async fn jobs_start_and_reclaim(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "start").await;
    let j = job(&n, None);
    s.insert_job(&j).await.unwrap();
    assert_eq!(s.job_status(t.id, j.id).await.unwrap(), JobStatus::Queued);

    let started = at(1);
    let first = s.start_job(t.id, j.id, started).await.unwrap();
    let expected = GenerationJob {
        status: JobStatus::Running,
        attempts: 1,
        started_at: Some(started),
        ..j.clone()
    };
    assert_eq!(first, expected);
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), first);
    assert_eq!(s.job_status(t.id, j.id).await.unwrap(), JobStatus::Running);

    // A second worker reclaims the running job (e.g. after the first one died).
    let later = at(60);
    let second = s.start_job(t.id, j.id, later).await.unwrap();
    assert_eq!(second.status, JobStatus::Running);
    assert_eq!(second.attempts, 2);
    assert_eq!(second.started_at, Some(later));
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), second);

    // mark_first_token only sets it once.
    let token = at(61);
    s.mark_first_token(t.id, j.id, token).await.unwrap();
    s.mark_first_token(t.id, j.id, at(90)).await.unwrap();
    assert_eq!(
        s.get_job(t.id, j.id).await.unwrap().first_token_at,
        Some(token)
    );

    // A final job cannot be started.
    let mut failed = second.clone();
    failed.status = JobStatus::Failed;
    failed.error = Some("boom".into());
    failed.finished_at = Some(at(70));
    assert!(s.finish_job(&failed).await.unwrap());
    assert_conflict(s.start_job(t.id, j.id, at(80)).await);
    let stored = s.get_job(t.id, j.id).await.unwrap();
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!(stored.attempts, 2, "a refused start changes nothing");
    assert_eq!(s.job_status(t.id, j.id).await.unwrap(), JobStatus::Failed);
    // Only in its tenant, like the whole row.
    let (other, _) = tenant_with_novel(s, "start-other").await;
    assert_not_found(s.job_status(other.id, j.id).await);
    assert_not_found(s.job_status(t.id, JobId::new()).await);

    assert_not_found(s.start_job(t.id, JobId::new(), at(1)).await);
    assert_not_found(s.mark_first_token(t.id, JobId::new(), at(1)).await);
}

pub async fn jobs_concurrent_start_and_complete(ctx: &Ctx) {
    let store = Arc::new(ctx.store.clone());
    let (t, n) = tenant_with_novel(&store, "concurrent-starts").await;
    let c = stored_chapter(&store, &n, 1).await;
    let j = job(&n, Some(&c));
    store.insert_job(&j).await.unwrap();
    let (tenant, id) = (t.id, j.id);
    // Both workers get the job (the later one reclaims it); no increment is lost.
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.start_job(tenant, id, now()).await })
        })
        .collect();
    let mut attempts = Vec::new();
    for task in tasks {
        attempts.push(task.await.unwrap().unwrap().attempts);
    }
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2]);
    let stored = store.get_job(t.id, j.id).await.unwrap();
    assert_eq!((stored.status, stored.attempts), (JobStatus::Running, 2));

    // Both workers finish and race to store their result: exactly one wins, and the
    // chapter is stored once.
    let tasks: Vec<_> = [30, 40]
        .into_iter()
        .map(|words| {
            let (store, c) = (store.clone(), c.clone());
            let done = succeeded(&stored, &format!("m-{words}"), (words, words), now());
            tokio::spawn(async move {
                let (next, rev) = generated(&c, words, &done);
                let r = store.complete_job(&done, &next, c.version, &rev).await;
                (r, done, next, rev)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (r, done, next, rev) = task.await.unwrap();
        match r {
            Ok(()) => winners.push((done, next, rev)),
            Err(e) => assert!(
                matches!(e, znovel_domain::StoreError::Conflict(_)),
                "expected Conflict, got {e:?}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one completion wins");
    let (done, next, rev) = winners.remove(0);
    assert_eq!(store.get_job(t.id, j.id).await.unwrap(), done);
    assert_eq!(store.get_chapter(t.id, c.id).await.unwrap(), next);
    assert_eq!(store.get_revision(t.id, rev.id).await.unwrap(), rev);
    let revs = store.list_revisions(t.id, c.id, page(10, None)).await;
    assert_eq!(revs.unwrap().items.len(), 2);
    assert_eq!(ctx.count("usage_records").await, 1);
    assert_eq!(
        store.tokens_used(t.id, now().date_naive()).await.unwrap()
            + store
                .tokens_used(t.id, now().date_naive().pred_opt().unwrap())
                .await
                .unwrap(),
        done.prompt_tokens * 2
    );
}

pub async fn jobs_complete_stores_everything_once(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "complete").await;
    let c = stored_chapter(s, &n, 1).await;
    let other = stored_chapter(s, &n, 2).await;
    let j = job(&n, Some(&c));
    s.insert_job(&j).await.unwrap();
    let running = s.start_job(t.id, j.id, at(1)).await.unwrap();
    let finished = at(5);
    let done = succeeded(&running, "m-1", (100, 250), finished);
    let (next, rev) = generated(&c, 42, &done);

    s.complete_job(&done, &next, c.version, &rev).await.unwrap();
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), done);
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), next);
    let stored_rev = s.get_revision(t.id, rev.id).await.unwrap();
    assert_eq!(stored_rev, rev);
    assert_eq!(stored_rev.job_id, Some(j.id));
    assert_eq!(
        s.get_novel(t.id, n.id).await.unwrap().word_count,
        42 + other.word_count
    );
    let today = finished.date_naive();
    assert_eq!(s.tokens_used(t.id, today).await.unwrap(), 350);

    // A second completion of the same job (another worker, a retry) is refused and
    // writes nothing: the chapter is stored once.
    let again = succeeded(&running, "m-1", (7, 7), at(6));
    let (twice, twice_rev) = generated(&next, 99, &again);
    assert_conflict(
        s.complete_job(&again, &twice, next.version, &twice_rev)
            .await,
    );
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), done);
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), next);
    assert_not_found(s.get_revision(t.id, twice_rev.id).await);
    let revs = s.list_revisions(t.id, c.id, page(10, None)).await.unwrap();
    assert_eq!(
        revs.items.iter().map(|r| r.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(s.tokens_used(t.id, today).await.unwrap(), 350);
    assert_eq!(ctx.count("usage_records").await, 1);
    // And a finished job cannot be finished again.
    let mut cancel = done.clone();
    cancel.status = JobStatus::Cancelled;
    assert!(!s.finish_job(&cancel).await.unwrap());
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), done);

    // A job that was never started cannot complete either.
    let queued = job(&n, Some(&other));
    s.insert_job(&queued).await.unwrap();
    let (o2, o2_rev) = generated(&other, 5, &queued);
    assert_conflict(
        s.complete_job(&succeeded(&queued, "m-1", (1, 1), at(7)), &o2, 1, &o2_rev)
            .await,
    );
    assert_eq!(s.get_chapter(t.id, other.id).await.unwrap(), other);
    assert_eq!(s.get_job(t.id, queued.id).await.unwrap(), queued);
    assert_not_found(
        s.complete_job(
            &succeeded(&job(&n, None), "m", (1, 1), at(8)),
            &o2,
            1,
            &o2_rev,
        )
        .await,
    );
    assert_eq!(s.get_chapter(t.id, other.id).await.unwrap(), other);
}

pub async fn jobs_complete_after_cancel(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "cancel").await;
    let c = stored_chapter(s, &n, 1).await;
    let j = job(&n, Some(&c));
    s.insert_job(&j).await.unwrap();
    let running = s.start_job(t.id, j.id, at(1)).await.unwrap();
    let token = at(2);
    s.mark_first_token(t.id, j.id, token).await.unwrap();

    // A user cancels (from a job value read before the first token).
    let mut cancelled = running.clone();
    cancelled.status = JobStatus::Cancelled;
    cancelled.error = Some("cancelled".into());
    cancelled.finished_at = Some(at(3));
    assert!(s.finish_job(&cancelled).await.unwrap());
    // finish_job keeps the first token time the worker recorded.
    cancelled.first_token_at = Some(token);
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), cancelled);

    // The worker, unaware, tries to store its result: refused, nothing written.
    let done = succeeded(&running, "m-1", (10, 20), at(4));
    let (next, rev) = generated(&c, 50, &done);
    assert_conflict(s.complete_job(&done, &next, c.version, &rev).await);
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), cancelled);
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), c);
    assert_not_found(s.get_revision(t.id, rev.id).await);
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap().word_count, 10);
    assert_eq!(s.tokens_used(t.id, at(4).date_naive()).await.unwrap(), 0);
    assert_eq!(ctx.count("usage_records").await, 0);

    // finish_job on a final job: false, unchanged.
    let mut fail = cancelled.clone();
    fail.status = JobStatus::Failed;
    fail.error = Some("late".into());
    assert!(!s.finish_job(&fail).await.unwrap());
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), cancelled);
    let mut ghost = job(&n, None);
    ghost.status = JobStatus::Cancelled;
    assert_not_found(s.finish_job(&ghost).await);
    // Only FAILED or CANCELLED end a job this way.
    assert!(matches!(
        s.finish_job(&running).await,
        Err(znovel_domain::StoreError::Internal(_))
    ));

    // A queued job can be cancelled too, with every model field written.
    let q = job(&n, None);
    s.insert_job(&q).await.unwrap();
    let mut qc = q.clone();
    qc.status = JobStatus::Failed;
    qc.error = Some("could not be queued".into());
    qc.finished_at = Some(at(9));
    qc.provider = Some("p".into());
    qc.model = Some("m".into());
    qc.prompt_tokens = 3;
    qc.completion_tokens = 4;
    qc.attempts = 1;
    assert!(s.finish_job(&qc).await.unwrap());
    assert_eq!(s.get_job(t.id, q.id).await.unwrap(), qc);
}

pub async fn jobs_complete_with_stale_version(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "stale").await;
    let c = stored_chapter(s, &n, 1).await;
    let j = job(&n, Some(&c));
    s.insert_job(&j).await.unwrap();
    let running = s.start_job(t.id, j.id, at(1)).await.unwrap();

    // The author saved meanwhile: the chapter is at version 2.
    let (edited, edited_rev) = next_content(&c, 30);
    s.save_chapter_content(&edited, c.version, &edited_rev)
        .await
        .unwrap();

    let done = succeeded(&running, "m-1", (10, 20), at(4));
    let (next, rev) = generated(&c, 50, &done);
    assert_conflict(s.complete_job(&done, &next, c.version, &rev).await);
    assert_eq!(
        s.get_job(t.id, j.id).await.unwrap(),
        running,
        "the job stays RUNNING"
    );
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), edited);
    assert_not_found(s.get_revision(t.id, rev.id).await);
    assert_eq!(s.get_novel(t.id, n.id).await.unwrap().word_count, 30);
    assert_eq!(ctx.count("usage_records").await, 0);

    // Nothing was left behind: the worker can retry on the current version.
    let (next, rev) = generated(&edited, 50, &done);
    s.complete_job(&done, &next, edited.version, &rev)
        .await
        .unwrap();
    assert_eq!(s.get_chapter(t.id, c.id).await.unwrap(), next);
    assert_eq!(s.get_job(t.id, j.id).await.unwrap(), done);
    assert_eq!(s.tokens_used(t.id, at(4).date_naive()).await.unwrap(), 30);
}

pub async fn jobs_tokens_used_per_day(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "usage").await;
    let (t2, n2) = tenant_with_novel(s, "usage-2").await;
    let late = Utc
        .with_ymd_and_hms(2026, 3, 1, 23, 59, 59)
        .unwrap()
        .checked_add_signed(TimeDelta::microseconds(999_999))
        .unwrap();
    let midnight = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();

    // (novel, model, tokens, finished)
    let runs = [
        (&n, "m-1", (100, 10), late),
        (&n, "m-1", (200, 20), late - TimeDelta::hours(5)),
        (&n, "m-2", (1_000, 1), late),
        (&n, "m-1", (7, 3), midnight),
        (&n2, "m-1", (50_000, 5), late),
    ];
    for (seq, (novel, model, tokens, finished)) in (1..).zip(runs) {
        let c = stored_chapter(s, novel, seq).await;
        let j = job(novel, Some(&c));
        s.insert_job(&j).await.unwrap();
        let running = s.start_job(novel.tenant_id, j.id, now()).await.unwrap();
        let done = succeeded(&running, model, tokens, finished);
        let (next, rev) = generated(&c, 5, &done);
        s.complete_job(&done, &next, c.version, &rev).await.unwrap();
    }
    assert_eq!(
        s.tokens_used(t.id, day(2026, 3, 1)).await.unwrap(),
        110 + 220 + 1_001
    );
    assert_eq!(s.tokens_used(t.id, day(2026, 3, 2)).await.unwrap(), 10);
    assert_eq!(s.tokens_used(t.id, day(2026, 2, 28)).await.unwrap(), 0);
    assert_eq!(s.tokens_used(t2.id, day(2026, 3, 1)).await.unwrap(), 50_005);
    // One record per (tenant, day, model).
    assert_eq!(ctx.count("usage_records").await, 4);
}

pub async fn jobs_tenant_isolation(ctx: &Ctx) {
    let s = &ctx.store;
    let (a, n) = tenant_with_novel(s, "jobs-a").await;
    let (b, bn) = tenant_with_novel(s, "jobs-b").await;
    let c = stored_chapter(s, &n, 1).await;
    let mut j = job(&n, Some(&c));
    j.idempotency_key = Some("k".into());
    s.insert_job(&j).await.unwrap();
    let running = s.start_job(a.id, j.id, at(1)).await.unwrap();
    let done = succeeded(&running, "m-1", (5, 5), at(2));
    let (next, rev) = generated(&c, 20, &done);
    s.complete_job(&done, &next, c.version, &rev).await.unwrap();
    let other = job(&n, Some(&c));
    s.insert_job(&other).await.unwrap();

    // Tenant B sees none of it.
    assert_not_found(s.get_job(b.id, j.id).await);
    assert_not_found(s.find_job_by_idempotency_key(b.id, "k").await);
    let p = s.list_jobs(b.id, n.id, None, page(10, None)).await.unwrap();
    assert!(p.items.is_empty());
    let p = s
        .list_jobs(b.id, bn.id, None, page(10, None))
        .await
        .unwrap();
    assert!(p.items.is_empty());
    assert_not_found(s.start_job(b.id, other.id, at(3)).await);
    assert_not_found(s.mark_first_token(b.id, other.id, at(3)).await);
    assert_eq!(s.tokens_used(b.id, at(2).date_naive()).await.unwrap(), 0);

    // Tenant B's values naming tenant A's rows.
    let mut forged = other.clone();
    forged.tenant_id = b.id;
    forged.status = JobStatus::Cancelled;
    assert_not_found(s.finish_job(&forged).await);
    forged.status = JobStatus::Succeeded;
    let mut forged_chapter = next.clone();
    forged_chapter.tenant_id = b.id;
    let (fc, mut frev) = generated(&forged_chapter, 1, &forged);
    frev.tenant_id = b.id;
    assert_not_found(s.complete_job(&forged, &fc, next.version, &frev).await);
    // Nothing of tenant A changed.
    assert_eq!(s.get_job(a.id, other.id).await.unwrap(), other);
    assert_eq!(s.get_job(a.id, j.id).await.unwrap(), done);
    assert_eq!(s.get_chapter(a.id, c.id).await.unwrap(), next);
    assert_eq!(s.tokens_used(a.id, at(2).date_naive()).await.unwrap(), 10);
}
