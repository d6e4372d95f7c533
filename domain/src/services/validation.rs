//! Continuity checking on demand: a draft against the story as of a chapter
//! (`checkDraft`, writes nothing) and a chapter against the chapters before it.
//!
//! The story is read from the store — every entity of the novel (names and aliases),
//! the latest state as of the chapter of each entity the text names and of the places
//! and holders those states point to, the relations of the named entities, and the
//! passages of the earlier chapters — then the rules of [`super::validate`] run over it.
//! Only the named entities' records are read: the rules look at nothing else.
//!
//! The tenant's content policy is read from its settings:
//! `{"contentPolicy": {"bannedTerms": ["..."]}}`, and what happens to a generated chapter
//! with an ERROR issue: `{"validation": {"failMode": "OPEN" | "CLOSED"}}`.

use super::validate::{Checker, EarlierPassage, Policy, Story};
use crate::auth::Actor;
use crate::chunk;
use crate::error::{Error, StoreResultExt};
use crate::ids::{ChapterId, EntityId, NovelId, TenantId};
use crate::model::{Chapter, ChapterValidation, Entity, ValidationFailMode, ValidationReport};
use crate::page::{MAX_PAGE_SIZE, PageRequest};
use crate::ports::{ChapterFilter, EntityFilter, Store};
use crate::text::{self, MAX_CONTENT};
use std::collections::HashSet;
use std::sync::Arc;

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

/// Continuity checks of drafts and chapters.
#[derive(Clone)]
pub struct ValidationService {
    store: Arc<dyn Store>,
}

fn page(after: Option<uuid::Uuid>) -> Result<PageRequest, Error> {
    PageRequest::new(Some(MAX_PAGE_SIZE as i64), after)
}

impl ValidationService {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
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
        let issues = Checker::new(&story).check(text);
        Ok(ValidationReport {
            issues,
            complete: true,
        })
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
