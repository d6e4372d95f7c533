//! Continuity checking on demand: a draft against the story as of a chapter
//! (`checkDraft`, writes nothing) and a chapter against the chapters before it.
//!
//! The story is read from the store — every entity of the novel (names and aliases),
//! the latest state as of the chapter of each entity the text names and of the places
//! and holders those states point to, the relations of the named entities, and the
//! passages of the earlier chapters — then the rules of [`super::validate`] run over it.
//! Only the named entities' records are read: the rules look at nothing else.
//!
//! After the rules, when the service has one, the language-model reviewer
//! ([`super::validate::review`]) looks for what rules cannot see. A review that fails
//! (model down, timeout, an answer off the schema) leaves the rules' report standing,
//! marked incomplete: it never blocks or loses a chapter.
//!
//! The tenant's content policy is read from its settings:
//! `{"contentPolicy": {"bannedTerms": ["..."]}}`, and what happens to a generated chapter
//! with an ERROR issue: `{"validation": {"failMode": "OPEN" | "CLOSED"}}`.

use super::validate::{Checker, EarlierPassage, Policy, Story, review};
use crate::auth::Actor;
use crate::chunk;
use crate::error::{Error, StoreResultExt};
use crate::ids::{ChapterId, EntityId, NovelId, TenantId};
use crate::model::{Chapter, ChapterValidation, Entity, ValidationFailMode, ValidationReport};
use crate::page::{MAX_PAGE_SIZE, PageRequest};
use crate::ports::{
    ChapterFilter, CompletionEvent, CompletionRequest, EntityFilter, LanguageModel, Store,
};
use crate::text::{self, MAX_CONTENT};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Input of [`ValidationService::check_draft`].
#[derive(Debug, Clone)]
pub struct CheckDraft {
    /// The novel.
    pub novel_id: NovelId,
    /// The draft (at most 500,000 characters, like a chapter).
    pub text: String,
    /// The draft is checked against chapters `1..=as_of_chapter` (0: the bible only).
    pub as_of_chapter: i64,
}

/// The language-model reviewer a [`ValidationService`] asks after the rules.
#[derive(Clone)]
pub struct Reviewer {
    /// The model (a fallback chain over the provider's models, or the embedded model).
    pub llm: Arc<dyn LanguageModel>,
    /// Longest a review may take, from the request to its last token.
    pub timeout: Duration,
    /// Most tokens of the answer.
    pub max_tokens: u32,
    /// The checked text is cut to about this many tokens.
    pub max_text_tokens: usize,
}

impl Reviewer {
    /// A reviewer over `llm` with the default limits: 60 s, 1,024 answer tokens, texts
    /// cut at 6,000 tokens.
    pub fn new(llm: Arc<dyn LanguageModel>) -> Self {
        Self {
            llm,
            timeout: Duration::from_secs(60),
            max_tokens: 1024,
            max_text_tokens: 6000,
        }
    }

    /// Asks the model about `text` checked against `story`, given the rules' issues;
    /// `Err` says why the review is missing (the report is then incomplete).
    pub async fn review(
        &self,
        story: &Story,
        text: &str,
        rule_issues: &[crate::model::ValidationIssue],
    ) -> Result<review::Review, String> {
        let evidence = review::evidence(story, text);
        let request = CompletionRequest {
            messages: review::prompt(text, &evidence, rule_issues, self.max_text_tokens),
            max_tokens: self.max_tokens,
            temperature: 0.0,
            seed: Some(7),
            json_schema: Some(review::schema()),
        };
        let answer = tokio::time::timeout(self.timeout, async {
            let mut stream = self
                .llm
                .stream(request)
                .await
                .map_err(|e| format!("the reviewer model: {e}"))?;
            let mut answer = String::new();
            while let Some(ev) = stream.next().await {
                match ev.map_err(|e| format!("the reviewer model: {e}"))? {
                    CompletionEvent::Delta(d) => answer.push_str(&d),
                    CompletionEvent::Finished(_) => break,
                    CompletionEvent::Started(_) | CompletionEvent::Usage(_) => {}
                }
            }
            Ok::<_, String>(answer)
        })
        .await
        .map_err(|_| format!("the reviewer did not answer within {:?}", self.timeout))??;
        review::parse(&answer, text, &evidence, rule_issues)
    }
}

/// Whether and how a [`ValidationService`] reviews after the rules.
#[derive(Clone, Default)]
enum Review {
    /// Rules only (the reviewer is switched off).
    #[default]
    Off,
    /// Rules, then the reviewer.
    On(Reviewer),
    /// The reviewer is switched on but this process has no model: every report is
    /// incomplete, and says why in the log.
    Unavailable(String),
}

/// Continuity checks of drafts and chapters.
#[derive(Clone)]
pub struct ValidationService {
    store: Arc<dyn Store>,
    review: Review,
}

fn page(after: Option<uuid::Uuid>) -> Result<PageRequest, Error> {
    PageRequest::new(Some(MAX_PAGE_SIZE as i64), after)
}

impl ValidationService {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            review: Review::Off,
        }
    }

    /// The same service asking `reviewer` after the rules.
    pub fn with_reviewer(mut self, reviewer: Reviewer) -> Self {
        self.review = Review::On(reviewer);
        self
    }

    /// The same service with the reviewer switched on but no model to ask (`why`): its
    /// reports say they are incomplete.
    pub fn with_reviewer_unavailable(mut self, why: impl Into<String>) -> Self {
        self.review = Review::Unavailable(why.into());
        self
    }

    /// Checks a draft against the story as of chapter `as_of_chapter`; writes nothing.
    /// `INVALID_INPUT` for an empty or oversized text or a chapter past the novel's last;
    /// `NOT_FOUND` for a novel the actor's tenant does not have.
    pub async fn check_draft(
        &self,
        actor: &Actor,
        input: CheckDraft,
    ) -> Result<ValidationReport, Error> {
        // Validated, not trimmed: spans are offsets in the text as sent.
        text::required("text", &input.text, MAX_CONTENT)?;
        let novel = self
            .store
            .get_novel(actor.tenant_id, input.novel_id)
            .await
            .or_not_found("novel")?;
        let last = self
            .store
            .max_chapter_seq(actor.tenant_id, novel.id)
            .await?
            .unwrap_or(0);
        let as_of = text::in_range("asOfChapter", input.as_of_chapter, 0, i64::from(i32::MAX))?;
        if as_of > i64::from(last) {
            return Err(Error::invalid(
                "asOfChapter",
                format!("the novel's last chapter is {last}, got {as_of}"),
            ));
        }
        self.check(actor.tenant_id, novel.id, &input.text, as_of as i32, None)
            .await
    }

    /// Checks a chapter's current content against the chapters before it and stores the
    /// report as its current version's (`validateChapter`). Needs write access;
    /// `NOT_FOUND` for a chapter the actor's tenant does not have.
    pub async fn validate_chapter(
        &self,
        actor: &Actor,
        chapter: ChapterId,
    ) -> Result<ChapterValidation, Error> {
        actor.require_write()?;
        let c = self
            .store
            .get_chapter(actor.tenant_id, chapter)
            .await
            .or_not_found("chapter")?;
        self.validate_version(&c).await
    }

    /// The latest stored report of a chapter's current version, if it was checked.
    pub async fn chapter_validation(
        &self,
        actor: &Actor,
        chapter: &Chapter,
    ) -> Result<Option<ChapterValidation>, Error> {
        if chapter.tenant_id != actor.tenant_id {
            return Err(Error::NotFound {
                resource: "chapter",
            });
        }
        Ok(self
            .store
            .get_validation(chapter.tenant_id, chapter.id, chapter.version)
            .await?)
    }

    /// Checks `c` as it is and stores the report of its version (the caller has checked
    /// access). A check that cannot read the story still stores a report, marked
    /// incomplete: validation never blocks a chapter.
    pub async fn validate_version(&self, c: &Chapter) -> Result<ChapterValidation, Error> {
        let report = match self
            .check(
                c.tenant_id,
                c.novel_id,
                &c.content,
                c.seq - 1,
                c.target_word_count,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(chapter = %c.id, error = %e, "validation incomplete");
                ValidationReport {
                    issues: Vec::new(),
                    complete: false,
                }
            }
        };
        let v = ChapterValidation {
            id: uuid::Uuid::now_v7(),
            tenant_id: c.tenant_id,
            chapter_id: c.id,
            chapter_version: c.version,
            report,
            created_at: super::now(),
        };
        self.store
            .save_validation(&v)
            .await
            .or_not_found("chapter")?;
        Ok(v)
    }

    async fn check(
        &self,
        tenant: TenantId,
        novel: NovelId,
        text: &str,
        as_of: i32,
        target_words: Option<i64>,
    ) -> Result<ValidationReport, Error> {
        let story = self
            .story(tenant, novel, Some(text), as_of, target_words)
            .await?;
        let mut issues = Checker::new(&story).check(text);
        let complete = match &self.review {
            Review::Off => true,
            Review::Unavailable(why) => {
                tracing::warn!(%novel, why, "continuity review skipped: no reviewer model");
                false
            }
            Review::On(reviewer) => match reviewer.review(&story, text, &issues).await {
                Ok(r) => {
                    issues.extend(r.issues);
                    super::validate::in_text_order(&mut issues);
                    true
                }
                Err(why) => {
                    tracing::warn!(%novel, why, "continuity review incomplete");
                    false
                }
            },
        };
        Ok(ValidationReport { issues, complete })
    }

    /// The story a chapter being written is checked against while it streams: as of
    /// the chapter before it, with every entity's state (the text is not known yet).
    pub async fn story_before(&self, c: &Chapter, target_words: i64) -> Result<Story, Error> {
        self.story(c.tenant_id, c.novel_id, None, c.seq - 1, Some(target_words))
            .await
    }

    /// The story as of chapter `as_of`, as far as `text` needs it (all of it without a
    /// text).
    async fn story(
        &self,
        tenant: TenantId,
        novel: NovelId,
        text: Option<&str>,
        as_of: i32,
        target_words: Option<i64>,
    ) -> Result<Story, Error> {
        let entities = self.entities(tenant, novel).await?;
        let named: Vec<EntityId> = match text {
            Some(text) => super::recall::named_entities(&entities, text)
                .into_iter()
                .map(|e| e.id)
                .collect(),
            None => entities.iter().map(|e| e.id).collect(),
        };
        let mut states = self
            .store
            .entity_states_as_of(tenant, &named, as_of)
            .await?;
        // The places and holders those states name: their names are matched too.
        let pointed: Vec<EntityId> = states
            .iter()
            .flat_map(|s| s.location_id.into_iter().chain(s.holder_id))
            .filter(|id| !named.contains(id))
            .collect();
        if !pointed.is_empty() {
            states.extend(
                self.store
                    .entity_states_as_of(tenant, &pointed, as_of)
                    .await?,
            );
        }
        let chapters = self.chapters(tenant, novel).await?;
        let chapter_seqs = chapters.iter().map(|c| (c.id, c.seq)).collect();
        let mut relations = Vec::new();
        let mut seen = HashSet::new();
        for id in &named {
            let mut after = None;
            loop {
                let p = self.store.list_relations(tenant, *id, page(after)?).await?;
                after = p.items.last().map(|r| r.id.as_uuid());
                for r in p.items {
                    if seen.insert(r.id) {
                        relations.push(r);
                    }
                }
                if !p.has_next_page {
                    break;
                }
            }
        }
        let seq_of = |c: Option<ChapterId>| -> i32 {
            c.and_then(|c| chapters.iter().find(|x| x.id == c).map(|x| x.seq))
                .unwrap_or(0)
        };
        relations.retain(|r| seq_of(r.since_chapter_id) <= as_of);
        let passages = chapters
            .iter()
            .filter(|c| c.seq <= as_of)
            .flat_map(|c| {
                chunk::passages(&c.content)
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| EarlierPassage {
                        chapter_id: c.id,
                        chapter_seq: c.seq,
                        ordinal: i as i32,
                        start: p.start as i32,
                        end: p.end as i32,
                        text: p.text,
                    })
            })
            .collect();
        let tenant_row = self.store.get_tenant(tenant).await?;
        Ok(Story {
            entities,
            states,
            relations,
            chapter_seqs,
            passages,
            policy: Policy {
                banned_terms: banned_terms(&tenant_row.settings),
                target_words,
            },
        })
    }

    async fn entities(&self, tenant: TenantId, novel: NovelId) -> Result<Vec<Entity>, Error> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let p = self
                .store
                .list_entities(tenant, novel, &EntityFilter::default(), page(after)?)
                .await?;
            after = p.items.last().map(|e| e.id.as_uuid());
            out.extend(p.items);
            if !p.has_next_page {
                return Ok(out);
            }
        }
    }

    async fn chapters(&self, tenant: TenantId, novel: NovelId) -> Result<Vec<Chapter>, Error> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let p = self
                .store
                .list_chapters(tenant, novel, &ChapterFilter::default(), page(after)?)
                .await?;
            after = p.items.last().map(|c| c.id.as_uuid());
            out.extend(p.items);
            if !p.has_next_page {
                return Ok(out);
            }
        }
    }
}

/// Whether a tenant keeps a generated chapter with an ERROR issue as a draft
/// (`validation.failMode` of its settings: `CLOSED`; anything else is `OPEN`).
pub fn fail_mode(settings: &serde_json::Value) -> ValidationFailMode {
    match settings
        .pointer("/validation/failMode")
        .and_then(serde_json::Value::as_str)
    {
        Some("CLOSED") => ValidationFailMode::Closed,
        _ => ValidationFailMode::Open,
    }
}

/// The banned terms of a tenant's settings (`contentPolicy.bannedTerms`).
pub fn banned_terms(settings: &serde_json::Value) -> Vec<String> {
    settings
        .pointer("/contentPolicy/bannedTerms")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
