//! Batch generation (`generateChapters`): recording the parent job that writes chapters
//! `fromSeq..=toSeq` in order (the worker's side is in `batch_run.rs`), and estimating
//! one before it starts (`estimateBatch`).
//!
//! The parent job has the chapters' kind (DRAFT, …), no chapter, and `input.batch`; its
//! tokens are the sum of its children's; its progress counts the chapters done.
//!
//! A DRAFT batch may name chapters that do not exist yet, and chapters without an
//! outline: the batch creates them and drafts their outline from the novel's plan
//! (`outline.rs`) before writing them. A REWRITE drafts missing outlines too; CONTINUE
//! and POLISH work on existing text and need existing chapters. Both are checked before
//! anything is recorded: a chapter that would need an outline in a novel without a plan,
//! a CONTINUE of a chapter that does not exist, more chapters than the quota allows.

use super::generation::{
    GenerationService, MAX_IDEMPOTENCY_KEY, announce, enqueue_or_fail, queued_job,
};
use super::{audit, now, outline, prompt};
use crate::StoreError;
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::NovelId;
use crate::model::*;
use crate::page::PageRequest;
use crate::ports::ChapterFilter;
use crate::text;
use std::collections::BTreeMap;

/// The most chapters one batch writes.
pub const MAX_BATCH_CHAPTERS: i32 = 200;

/// Input of [`GenerationService::generate_chapters`].
#[derive(Debug, Clone)]
pub struct GenerateChapters {
    /// The novel.
    pub novel_id: NovelId,
    /// First chapter seq (inclusive).
    pub from_seq: i32,
    /// Last chapter seq (inclusive).
    pub to_seq: i32,
    /// Target length of each chapter.
    pub target_words: Option<i64>,
    /// DRAFT, CONTINUE, REWRITE or POLISH.
    pub kind: JobKind,
    /// Makes the request idempotent: the same key returns the same batch.
    pub idempotency_key: Option<String>,
    /// Whether a failed chapter stops the rest.
    pub stop_on_error: bool,
}

/// How the time of an estimate was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimateBasis {
    /// From the novel's own recent jobs (their speed and memory time).
    History,
    /// From defaults: the novel has no finished jobs to learn from yet.
    Defaults,
}

/// One chapter of a [`BatchEstimate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterEstimate {
    /// Its seq.
    pub seq: i32,
    /// Its title, when it exists.
    pub title: Option<String>,
    /// Whether the chapter exists (else the batch creates it).
    pub exists: bool,
    /// Whether the batch drafts its outline first.
    pub drafts_outline: bool,
    /// Its target length (words; CJK: characters).
    pub target_words: i64,
    /// Prompt tokens of writing it (and of drafting its outline).
    pub prompt_tokens: i64,
    /// Completion tokens of writing it (and of drafting its outline).
    pub completion_tokens: i64,
}

/// What a batch would cost before it starts (`estimateBatch`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEstimate {
    /// Chapters it writes.
    pub chapters: i32,
    /// Chapters it creates (DRAFT of seqs that do not exist yet).
    pub chapters_to_create: i32,
    /// Outlines it drafts from the plan first.
    pub outlines_to_draft: i32,
    /// Prompt tokens of writing the chapters and drafting the outlines.
    pub prompt_tokens: i64,
    /// Completion tokens of the same.
    pub completion_tokens: i64,
    /// Tokens the story memory spends reading the chapters written (extraction).
    pub memory_tokens: i64,
    /// All of the above.
    pub total_tokens: i64,
    /// What the tenant has left of today's token quota.
    pub tokens_left_today: i64,
    /// Whether the total fits in it (a batch that does not fit stops when the quota
    /// runs out).
    pub fits_quota: bool,
    /// Expected wall-clock time, in seconds: writing, drafting and remembering each
    /// chapter in turn.
    pub seconds: f64,
    /// The writing speed assumed (completion tokens a second).
    pub tokens_per_second: f64,
    /// Seconds assumed from a job's start to its first token.
    pub first_token_seconds: f64,
    /// Seconds assumed for remembering one chapter.
    pub memory_seconds: f64,
    /// Where the speeds come from.
    pub basis: EstimateBasis,
    /// How many of the novel's finished jobs they were measured on.
    pub sample_jobs: i32,
    /// Chapter by chapter.
    pub per_chapter: Vec<ChapterEstimate>,
}

/// Speeds assumed when the novel has no history (a hosted model's typical figures).
const DEFAULT_TOKENS_PER_SECOND: f64 = 40.0;
const DEFAULT_FIRST_TOKEN_SECONDS: f64 = 1.5;
const DEFAULT_MEMORY_SECONDS: f64 = 15.0;
/// Tokens a chapter's summary adds to later prompts (its text is not known yet).
const SUMMARY_TOKENS: usize = 120;
/// Tokens of recalled passages and entity states a prompt is given, at most.
const RECALL_TOKENS: usize = 1_200;
/// Tokens of the extraction instructions and the entities list, besides the chapter.
const EXTRACTION_PROMPT_TOKENS: i64 = 1_000;
/// Completion tokens of one extraction answer (a typical one, under its maximum).
const EXTRACTION_COMPLETION_TOKENS: i64 = 600;
/// The recent finished jobs an estimate learns from.
const HISTORY_JOBS: i64 = 100;

/// A checked batch: its spec and what each chapter needs.
struct Planned {
    spec: BatchSpec,
    key: Option<String>,
    novel: Novel,
    /// The range's chapters that exist, by seq.
    existing: BTreeMap<i32, Chapter>,
    /// Seqs whose outline the batch drafts first.
    drafts: Vec<i32>,
    volumes: Vec<Volume>,
}

impl GenerationService {
    /// Checks a batch request against the novel: the range, the kind, the chapters that
    /// exist, the outlines to draft (and the plan they need), the chapter quota.
    async fn plan_batch(&self, actor: &Actor, input: &GenerateChapters) -> Result<Planned, Error> {
        if !matches!(
            input.kind,
            JobKind::Draft | JobKind::Continue | JobKind::Rewrite | JobKind::Polish
        ) {
            return Err(Error::invalid(
                "kind",
                "must be DRAFT, CONTINUE, REWRITE or POLISH",
            ));
        }
        if input.from_seq < 1 {
            return Err(Error::invalid("fromSeq", "must be at least 1"));
        }
        if input.to_seq < input.from_seq {
            return Err(Error::invalid("toSeq", "must not be less than fromSeq"));
        }
        if input.to_seq - input.from_seq >= MAX_BATCH_CHAPTERS {
            return Err(Error::invalid(
                "toSeq",
                format!("a batch writes at most {MAX_BATCH_CHAPTERS} chapters"),
            ));
        }
        if let Some(n) = input.target_words {
            text::in_range("targetWords", n, 50, super::story::MAX_CHAPTER_WORDS)?;
        }
        let key = input
            .idempotency_key
            .as_deref()
            .map(|k| text::required("idempotencyKey", k, MAX_IDEMPOTENCY_KEY))
            .transpose()?;
        let spec = spec_of(input);
        let novel = self
            .store
            .get_novel(actor.tenant_id, input.novel_id)
            .await
            .or_not_found("novel")?;
        let t = actor.tenant_id;
        let mut existing = BTreeMap::new();
        for seq in spec.from_seq..=spec.to_seq {
            match self.store.find_chapter_by_seq(t, novel.id, seq).await {
                Ok(c) => {
                    existing.insert(seq, c);
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut drafts = Vec::new();
        let mut missing = 0i64;
        for seq in spec.from_seq..=spec.to_seq {
            match existing.get(&seq) {
                Some(c)
                    if matches!(spec.kind, JobKind::Draft | JobKind::Rewrite)
                        && c.outline.trim().is_empty() =>
                {
                    drafts.push(seq)
                }
                Some(_) => {}
                None if spec.kind == JobKind::Draft => {
                    missing += 1;
                    drafts.push(seq);
                }
                None => {
                    return Err(Error::invalid(
                        "fromSeq",
                        format!(
                            "chapter {seq} does not exist; {} works on a chapter's text (only DRAFT creates chapters)",
                            spec.kind
                        ),
                    ));
                }
            }
        }
        let volumes = self
            .store
            .list_volumes(t, novel.id, PageRequest::new(Some(100), None)?)
            .await?
            .items;
        if let Some(first) = drafts.first()
            && !outline::has_plan(&novel, &volumes)
        {
            return Err(Error::invalid(
                "fromSeq",
                format!(
                    "chapter {first} has no outline and the novel has no plan to draft one from: \
                     give the novel a description (its premise) or a volume a summary, or write the outlines"
                ),
            ));
        }
        if missing > 0 {
            let tenant = self.store.get_tenant(t).await.or_not_found("tenant")?;
            let max = tenant.quota.max_chapters_per_novel;
            let count = self.store.count_chapters(t, novel.id).await?;
            if count + missing > max {
                return Err(Error::QuotaExceeded(format!(
                    "a novel may hold at most {max} chapters; it has {count} and the batch would create {missing}"
                )));
            }
        }
        Ok(Planned {
            spec,
            key,
            novel,
            existing,
            drafts,
            volumes,
        })
    }

    /// Records the parent job of a batch and queues it; returns at once. Needs MEMBER.
    /// A DRAFT may name chapters that do not exist and chapters without an outline (the
    /// batch drafts them from the novel's plan); see the module documentation for what
    /// is refused.
    pub async fn generate_chapters(
        &self,
        actor: &Actor,
        input: GenerateChapters,
    ) -> Result<GenerationJob, Error> {
        actor.require_write()?;
        if let Some(k) = &input.idempotency_key {
            match self
                .jobs
                .find_job_by_idempotency_key(actor.tenant_id, k)
                .await
            {
                Ok(existing) => {
                    return same_batch(existing, input.novel_id, spec_of(&input));
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let Planned {
            spec, key, novel, ..
        } = self.plan_batch(actor, &input).await?;
        let tenant = self
            .store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")?;
        let used = self
            .jobs
            .tokens_used(actor.tenant_id, now().date_naive())
            .await?;
        if used >= tenant.quota.max_tokens_per_day {
            return Err(Error::QuotaExceeded(format!(
                "the tenant used its {} LLM tokens for today",
                tenant.quota.max_tokens_per_day
            )));
        }
        let job = GenerationJob {
            progress: Some(JobProgress {
                done: 0,
                total: spec.to_seq - spec.from_seq + 1,
            }),
            ..queued_job(
                actor.tenant_id,
                novel.id,
                None,
                spec.kind,
                JobInput {
                    target_words: spec.target_words,
                    batch: Some(spec),
                    ..JobInput::default()
                },
                key.clone(),
                Some(actor.user_id),
            )
        };
        match self.jobs.insert_job(&job).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) if key.is_some() => {
                let existing = self
                    .jobs
                    .find_job_by_idempotency_key(
                        actor.tenant_id,
                        key.as_deref().unwrap_or_default(),
                    )
                    .await
                    .or_not_found("job")?;
                return same_batch(existing, input.novel_id, spec);
            }
            Err(e) => return Err(e.into()),
        }
        enqueue_or_fail(&*self.jobs, &*self.queue, &job).await?;
        announce(&*self.events, &job, JobStatus::Queued).await;
        audit(&*self.store, actor, "job.batch", "GenerationJob", job.id).await;
        Ok(job)
    }

    /// What a batch would cost — tokens, time, chapters created and outlines drafted —
    /// without starting it; refuses what `generate_chapters` would refuse. Needs MEMBER.
    ///
    /// Tokens: each prompt as the prompt builder would fill it (the task, the outline,
    /// the current text for CONTINUE/REWRITE/POLISH, the story so far up to the prompt
    /// budget), each answer at the target length. Time: the novel's recent jobs' speed
    /// (completion tokens a second after the first token, time to the first token, time
    /// to remember a chapter), or defaults when it has none ([`EstimateBasis`]).
    pub async fn estimate_batch(
        &self,
        actor: &Actor,
        input: GenerateChapters,
    ) -> Result<BatchEstimate, Error> {
        actor.require_write()?;
        let plan = self.plan_batch(actor, &input).await?;
        let t = actor.tenant_id;
        let tenant = self.store.get_tenant(t).await.or_not_found("tenant")?;
        let used = self.jobs.tokens_used(t, now().date_naive()).await?;
        let speed = self.speed(actor, plan.novel.id).await?;
        let n = &plan.novel;
        let budget = super::runner::RunnerConfig::default().prompt_budget;
        let per_word = if text::is_cjk_language(&n.language) {
            1.1
        } else {
            1.4
        };
        // What every prompt holds: the system line, style guide, world settings.
        let fixed = prompt::estimate_tokens(&n.description)
            + prompt::estimate_tokens(&n.style_guide)
            + prompt::estimate_tokens(&n.world_settings.to_string())
            + 60;
        // Summaries of the chapters before each one (the builder keeps up to 20).
        let all = all_chapters(&*self.store, t, plan.novel.id).await?;
        let mut summaries: BTreeMap<i32, usize> = all
            .iter()
            .map(|c| (c.seq, prompt::estimate_tokens(&c.summary).max(1)))
            .collect();
        let mut per_chapter = Vec::new();
        let mut est = BatchEstimate {
            chapters: plan.spec.to_seq - plan.spec.from_seq + 1,
            chapters_to_create: 0,
            outlines_to_draft: plan.drafts.len() as i32,
            prompt_tokens: 0,
            completion_tokens: 0,
            memory_tokens: 0,
            total_tokens: 0,
            tokens_left_today: (tenant.quota.max_tokens_per_day - used).max(0),
            fits_quota: false,
            seconds: 0.0,
            tokens_per_second: speed.tokens_per_second,
            first_token_seconds: speed.first_token_seconds,
            memory_seconds: speed.memory_seconds,
            basis: speed.basis,
            sample_jobs: speed.samples,
            per_chapter: Vec::new(),
        };
        for seq in plan.spec.from_seq..=plan.spec.to_seq {
            let existing = plan.existing.get(&seq);
            let drafts = plan.drafts.contains(&seq);
            let target = plan
                .spec
                .target_words
                .or(existing.and_then(|c| c.target_word_count))
                .unwrap_or(super::generation::DEFAULT_TARGET_WORDS);
            let completion = (target as f64 * per_word).ceil() as i64;
            let mut essential = 80
                + existing
                    .map(|c| {
                        prompt::estimate_tokens(&c.outline) + prompt::estimate_tokens(&c.title)
                    })
                    .unwrap_or(0);
            if drafts {
                essential += 150; // the drafted outline
            }
            if let Some(c) = existing
                && matches!(
                    plan.spec.kind,
                    JobKind::Continue | JobKind::Rewrite | JobKind::Polish
                )
            {
                essential += prompt::estimate_tokens(&c.content);
            }
            let story: usize = summaries
                .range(..seq)
                .rev()
                .take(20)
                .map(|(_, n)| n)
                .sum::<usize>()
                + volume_tokens(&plan, &all, existing)
                + RECALL_TOKENS;
            let prompt_tokens =
                (fixed + essential + story).min(budget.max(fixed + essential)) as i64;
            let (mut p, mut c) = (prompt_tokens, completion);
            if drafts {
                // The outline prompt: the plan and five neighbours; its answer.
                let before: usize = summaries
                    .range(..seq)
                    .rev()
                    .take(5)
                    .map(|(_, n)| n + 60)
                    .sum();
                p += (fixed + before + volume_tokens(&plan, &all, existing) + 200) as i64;
                c += 250;
            }
            if existing.is_none() {
                est.chapters_to_create += 1;
            }
            summaries.insert(seq, SUMMARY_TOKENS);
            // The story memory reads what was written: CONTINUE keeps the old text too.
            let chapter_tokens = completion
                + match (plan.spec.kind, existing) {
                    (JobKind::Continue, Some(c)) => prompt::estimate_tokens(&c.content) as i64,
                    _ => 0,
                };
            est.memory_tokens +=
                EXTRACTION_PROMPT_TOKENS + chapter_tokens.min(6_000) + EXTRACTION_COMPLETION_TOKENS;
            est.prompt_tokens += p;
            est.completion_tokens += c;
            est.seconds += speed.first_token_seconds * if drafts { 2.0 } else { 1.0 }
                + c as f64 / speed.tokens_per_second
                + speed.memory_seconds;
            per_chapter.push(ChapterEstimate {
                seq,
                title: existing.map(|c| c.title.clone()),
                exists: existing.is_some(),
                drafts_outline: drafts,
                target_words: target,
                prompt_tokens: p,
                completion_tokens: c,
            });
        }
        est.total_tokens = est.prompt_tokens + est.completion_tokens + est.memory_tokens;
        est.fits_quota = est.total_tokens <= est.tokens_left_today;
        est.per_chapter = per_chapter;
        Ok(est)
    }

    /// How fast the novel's recent jobs ran: writing speed after the first token, time
    /// to the first token, time to remember a chapter.
    async fn speed(&self, actor: &Actor, novel: NovelId) -> Result<Speed, Error> {
        let jobs = self
            .jobs
            .list_jobs(
                actor.tenant_id,
                novel,
                Some(JobStatus::Succeeded),
                PageRequest::new(Some(HISTORY_JOBS), None)?,
            )
            .await?
            .items;
        let secs = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
            (b - a).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6
        };
        let (mut tokens, mut writing, mut first, mut written) = (0i64, 0.0, 0.0, 0i32);
        let (mut memory, mut remembered) = (0.0, 0i32);
        for j in &jobs {
            match (j.kind, j.started_at, j.first_token_at, j.finished_at) {
                (JobKind::ExtractMemory, Some(s), _, Some(f)) => {
                    memory += secs(s, f);
                    remembered += 1;
                }
                (k, Some(s), Some(ft), Some(f))
                    if matches!(
                        k,
                        JobKind::Draft | JobKind::Continue | JobKind::Rewrite | JobKind::Polish
                    ) && j.input.batch.is_none()
                        && j.completion_tokens > 0 =>
                {
                    tokens += j.completion_tokens;
                    writing += secs(ft, f);
                    first += secs(s, ft);
                    written += 1;
                }
                _ => {}
            }
        }
        let samples = written + remembered;
        let basis = if written > 0 && writing > 0.0 {
            EstimateBasis::History
        } else {
            EstimateBasis::Defaults
        };
        Ok(Speed {
            tokens_per_second: if basis == EstimateBasis::History {
                (tokens as f64 / writing).max(0.1)
            } else {
                DEFAULT_TOKENS_PER_SECOND
            },
            first_token_seconds: if written > 0 {
                first / f64::from(written)
            } else {
                DEFAULT_FIRST_TOKEN_SECONDS
            },
            memory_seconds: if remembered > 0 {
                memory / f64::from(remembered)
            } else {
                DEFAULT_MEMORY_SECONDS
            },
            basis,
            samples,
        })
    }
}

struct Speed {
    tokens_per_second: f64,
    first_token_seconds: f64,
    memory_seconds: f64,
    basis: EstimateBasis,
    samples: i32,
}

/// Tokens of the summary of the chapter's volume (a chapter the batch creates joins the
/// volume of the chapter before it).
fn volume_tokens(plan: &Planned, all: &[Chapter], chapter: Option<&Chapter>) -> usize {
    let volume = chapter.and_then(|c| c.volume_id).or_else(|| {
        all.iter()
            .rfind(|c| c.seq < plan.spec.from_seq)
            .and_then(|c| c.volume_id)
    });
    volume
        .and_then(|v| plan.volumes.iter().find(|x| x.id == v))
        .map(|v| prompt::estimate_tokens(&v.summary))
        .unwrap_or(0)
}

/// Every chapter of a novel, by seq.
pub(super) async fn all_chapters(
    store: &dyn crate::ports::Store,
    t: crate::ids::TenantId,
    novel: NovelId,
) -> Result<Vec<Chapter>, Error> {
    let mut out = Vec::new();
    let mut page = PageRequest::new(Some(100), None)?;
    loop {
        let p = store
            .list_chapters(t, novel, &ChapterFilter::default(), page)
            .await?;
        let last = p.items.last().map(|c| c.id.as_uuid());
        let more = p.has_next_page;
        out.extend(p.items);
        match (more, last) {
            (true, Some(after)) => page = PageRequest::new(Some(100), Some(after))?,
            _ => break,
        }
    }
    Ok(out)
}

/// The spec a request stands for (to compare with an existing batch's).
fn spec_of(input: &GenerateChapters) -> BatchSpec {
    BatchSpec {
        from_seq: input.from_seq,
        to_seq: input.to_seq,
        kind: input.kind,
        target_words: input.target_words,
        stop_on_error: input.stop_on_error,
    }
}

fn same_batch(
    existing: GenerationJob,
    novel: NovelId,
    spec: BatchSpec,
) -> Result<GenerationJob, Error> {
    if existing.novel_id == novel && existing.input.batch == Some(spec) {
        Ok(existing)
    } else {
        Err(Error::Conflict(
            "this idempotencyKey was used for a different request".into(),
        ))
    }
}
