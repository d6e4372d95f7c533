//! The memory job (`EXTRACT_MEMORY`): what a worker does when a chapter's content changed.
//!
//! 1. The chapter is read; a job for a version that is no longer current does nothing (the
//!    job of the current version does the work).
//! 2. Its passages are re-indexed (replacing the old ones) and the version is marked
//!    *indexed*: from now on recall finds its new text — seconds after the change.
//! 3. The entities it names (by name or alias) are recorded: the bible's first/last
//!    chapter and appearance counts follow.
//! 4. With a language model: its summary, entity states, events, relations and
//!    foreshadowing are extracted under a JSON schema, stored in one transaction
//!    (replacing what an earlier version of the chapter established, never a record the
//!    author wrote or edited) and indexed; the version is marked *extracted*.
//!
//! A failure never touches the chapter's content. A transient one (index, embedder or
//! model unavailable) is retried by the queue; the job is idempotent.

use super::extract;
use super::recall::named_entities;
use super::remember::Indexer;
use super::runner::StopReason;
use crate::error::Error;
use crate::ids::{NovelId, TenantId};
use crate::model::*;
use crate::page::PageRequest;
use crate::ports::*;
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// How a memory job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryOutcome {
    /// Done (or nothing to do); the usage of the model, if it was asked.
    Done {
        /// Who served the extraction.
        served: Option<ServedBy>,
        /// Tokens used.
        usage: TokenUsage,
    },
    /// Transient trouble: run it again later.
    Retry(String),
    /// Failed for good.
    Failed(String),
    /// Stopped (cancelled, or the worker shuts down).
    Stopped(StopReason),
}

/// Settings of the memory job.
#[derive(Debug, Clone)]
pub struct MemoryJobConfig {
    /// Most (estimated) tokens of a chapter the extraction prompt holds: the rest of a
    /// longer chapter is not read by extraction (its passages are all indexed).
    pub max_chapter_tokens: usize,
    /// Most tokens the extraction may generate.
    pub max_tokens: u32,
}

impl MemoryJobConfig {
    /// For a model with a small context (the embedded one: 4,096 tokens).
    pub fn small_context() -> Self {
        Self {
            max_chapter_tokens: 1_200,
            max_tokens: 1_000,
        }
    }
}

impl Default for MemoryJobConfig {
    fn default() -> Self {
        Self {
            max_chapter_tokens: 12_000,
            max_tokens: 1_500,
        }
    }
}

/// Runs memory jobs.
#[derive(Clone)]
pub struct MemoryJobs {
    store: Arc<dyn Store>,
    indexer: Indexer,
    llm: Option<Arc<dyn LanguageModel>>,
    config: MemoryJobConfig,
}

type Stop<'a> = Pin<&'a mut (dyn Future<Output = StopReason> + Send)>;

impl MemoryJobs {
    /// Builds the runner; without a model, jobs index passages and appearances only.
    pub fn new(
        store: Arc<dyn Store>,
        indexer: Indexer,
        llm: Option<Arc<dyn LanguageModel>>,
        config: MemoryJobConfig,
    ) -> Self {
        Self {
            store,
            indexer,
            llm,
            config,
        }
    }

    /// Runs one memory job (see the module documentation).
    pub async fn run(&self, job: &GenerationJob, mut stop: Stop<'_>) -> MemoryOutcome {
        let t = job.tenant_id;
        let Some(chapter_id) = job.chapter_id else {
            return done();
        };
        let chapter = match self.store.get_chapter(t, chapter_id).await {
            Ok(c) => c,
            // Deleted since: its memory went with it.
            Err(crate::StoreError::NotFound) => return done(),
            Err(e) => return MemoryOutcome::Retry(e.to_string()),
        };
        if job
            .input
            .chapter_version
            .is_some_and(|v| v != chapter.version)
        {
            return done();
        }
        match self.index_chapter(&chapter).await {
            Ok(()) => {}
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                return MemoryOutcome::Retry(e.to_string());
            }
            Err(e) => return self.failed(&chapter, e.to_string()).await,
        }
        let Some(llm) = self.llm.clone() else {
            return done();
        };
        match self.extract(&chapter, llm, stop.as_mut()).await {
            Ok(outcome) => outcome,
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                MemoryOutcome::Retry(e.to_string())
            }
            Err(e) => self.failed(&chapter, e.to_string()).await,
        }
    }

    /// Records that the chapter's memory job failed for good (after the queue gave up,
    /// or for a reason retrying cannot fix).
    pub async fn give_up(&self, tenant: TenantId, job: &GenerationJob, reason: &str) {
        if let (Some(c), Some(v)) = (job.chapter_id, job.input.chapter_version) {
            let _ = self
                .store
                .mark_chapter_memory(tenant, c, v, MemoryMark::Failed(reason.to_owned()))
                .await;
        }
    }

    async fn failed(&self, c: &Chapter, reason: String) -> MemoryOutcome {
        let _ = self
            .store
            .mark_chapter_memory(
                c.tenant_id,
                c.id,
                c.version,
                MemoryMark::Failed(reason.clone()),
            )
            .await;
        MemoryOutcome::Failed(reason)
    }

    /// Steps 2 and 3: passages, summary, appearances; marks the version indexed.
    async fn index_chapter(&self, c: &Chapter) -> Result<(), Error> {
        self.indexer.chapter_passages(c).await?;
        self.indexer.chapter_summary(c).await?;
        let entities = all_entities(&*self.store, c.tenant_id, c.novel_id).await?;
        let named = named_entities(&entities, &c.content)
            .into_iter()
            .map(|e| e.id)
            .collect();
        self.store
            .replace_appearances(&ChapterAppearances {
                tenant_id: c.tenant_id,
                chapter_id: c.id,
                entities: named,
            })
            .await?;
        self.store
            .mark_chapter_memory(c.tenant_id, c.id, c.version, MemoryMark::Indexed)
            .await?;
        Ok(())
    }

    /// Step 4.
    async fn extract(
        &self,
        c: &Chapter,
        llm: Arc<dyn LanguageModel>,
        mut stop: Stop<'_>,
    ) -> Result<MemoryOutcome, Error> {
        let t = c.tenant_id;
        let novel = self.store.get_novel(t, c.novel_id).await?;
        let entities = all_entities(&*self.store, t, c.novel_id).await?;
        let open = open_threads(&*self.store, t, c.novel_id).await?;
        let request = CompletionRequest {
            messages: extract::prompt(&novel, c, &entities, &open, self.config.max_chapter_tokens),
            max_tokens: self.config.max_tokens,
            temperature: 0.0,
            seed: Some(7),
            json_schema: Some(extract::schema()),
        };
        let mut served = None;
        let mut usage = TokenUsage::default();
        let mut text = String::new();
        let opened = select(Box::pin(llm.stream(request)), stop.as_mut()).await;
        let mut stream = match opened {
            Either::Left((Ok(s), _)) => s,
            Either::Left((Err(e), _)) => return Err(model_error(e)),
            Either::Right((reason, _)) => return Ok(MemoryOutcome::Stopped(reason)),
        };
        loop {
            match select(stream.next(), stop.as_mut()).await {
                Either::Right((reason, _)) => return Ok(MemoryOutcome::Stopped(reason)),
                Either::Left((None, _)) => break,
                Either::Left((Some(Err(e)), _)) => return Err(model_error(e)),
                Either::Left((Some(Ok(ev)), _)) => match ev {
                    CompletionEvent::Started(s) => served = Some(s),
                    CompletionEvent::Delta(d) => text.push_str(&d),
                    CompletionEvent::Usage(u) => usage = u,
                    CompletionEvent::Finished(_) => break,
                },
            }
        }
        let answer = match extract::parse(&text) {
            Ok(a) => a,
            Err(why) => return Err(Error::invalid("extraction", why)),
        };
        let memory = extract::to_memory(&answer, c, &entities, &open);
        let Some(removed) = self.store.replace_extracted(&memory).await? else {
            // The chapter changed meanwhile: the newer version's job does the work.
            return Ok(MemoryOutcome::Done { served, usage });
        };
        for id in removed {
            self.indexer.forget(t, c.novel_id, id).await?;
        }
        self.index_extracted(c, &memory).await?;
        self.store
            .mark_chapter_memory(t, c.id, c.version, MemoryMark::Extracted)
            .await?;
        Ok(MemoryOutcome::Done { served, usage })
    }

    async fn index_extracted(&self, c: &Chapter, m: &ExtractedMemory) -> Result<(), Error> {
        let t = c.tenant_id;
        let fresh = self.store.get_chapter(t, c.id).await?;
        self.indexer.chapter_summary(&fresh).await?;
        for e in &m.new_entities {
            if let Ok(e) = self.store.get_entity(t, e.id).await {
                self.indexer.entity(&e).await?;
            }
        }
        for s in &m.states {
            let entity = self.store.get_entity(t, s.entity_id).await?;
            self.indexer.entity_state(s, &entity).await?;
        }
        for ev in &m.events {
            self.indexer.event(ev).await?;
        }
        for r in &m.relations {
            // Existing relations were kept as they were (and are indexed already).
            if self.store.get_relation(t, r.id).await.is_ok() {
                self.indexer.relation(r).await?;
            }
        }
        for f in &m.planted {
            self.indexer.foreshadowing(f).await?;
        }
        for id in &m.resolved {
            if let Ok(f) = self.store.get_foreshadowing(t, *id).await {
                self.indexer.foreshadowing(&f).await?;
            }
        }
        Ok(())
    }
}

/// A model failure: worth retrying later (rate limit, server error, timeout), or not
/// (the request itself was refused).
fn model_error(e: LlmError) -> Error {
    if e.falls_back() {
        Error::Unavailable(format!("model: {e}"))
    } else {
        Error::invalid("extraction", format!("the model refused the request: {e}"))
    }
}

fn done() -> MemoryOutcome {
    MemoryOutcome::Done {
        served: None,
        usage: TokenUsage::default(),
    }
}

/// Every entity of a novel.
pub(crate) async fn all_entities(
    store: &dyn Store,
    tenant: TenantId,
    novel: NovelId,
) -> Result<Vec<Entity>, Error> {
    let mut out = Vec::new();
    let mut page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), None)?;
    loop {
        let p = store
            .list_entities(tenant, novel, &EntityFilter::default(), page)
            .await?;
        let last = p.items.last().map(|e| e.id.as_uuid());
        let more = p.has_next_page;
        out.extend(p.items);
        match (more, last) {
            (true, Some(after)) => {
                page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), Some(after))?
            }
            _ => return Ok(out),
        }
    }
}

/// A novel's OPEN foreshadowing threads.
pub(crate) async fn open_threads(
    store: &dyn Store,
    tenant: TenantId,
    novel: NovelId,
) -> Result<Vec<Foreshadowing>, Error> {
    let mut out = Vec::new();
    let mut page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), None)?;
    loop {
        let p = store
            .list_foreshadowing(tenant, novel, Some(ForeshadowingStatus::Open), page)
            .await?;
        let last = p.items.last().map(|f| f.id.as_uuid());
        let more = p.has_next_page;
        out.extend(p.items);
        match (more, last) {
            (true, Some(after)) => {
                page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), Some(after))?
            }
            _ => return Ok(out),
        }
    }
}
