//! Recall: what the story already established that is relevant to a question, as of a
//! point of the story.
//!
//! 1. The question is embedded (dense) and searched by keywords, with **alias
//!    expansion**: when it names an entity ("the Ferret"), the entity's other names are
//!    searched too.
//! 2. The index fuses both rankings by reciprocal rank (HYBRID), filtered to the
//!    tenant, the novel and the **story time** (`before_seq`: only what chapters before
//!    it established, plus the author's timeless bible).
//! 3. Hits are checked against the chapters as they are now: a passage of a chapter
//!    version that is no longer current, or of a chapter since deleted or renumbered, is
//!    dropped (the index may lag a moment behind an edit; recall never quotes old text).
//! 4. Overlapping passages are deduplicated, the best kept.
//!
//! [`pack`] fits hits into a token budget for a prompt.

use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::{ChapterId, NovelId, TenantId};
use crate::model::{Entity, MemoryKind, RecallHit, RecallMode};
use crate::page::PageRequest;
use crate::ports::{
    EmbedError, EmbedKind, Embedder, EntityFilter, IndexError, IndexQuery, MemoryIndex, Store,
};
use crate::services::prompt::estimate_tokens;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest question `recall` accepts, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
/// Most hits `recall` returns.
pub const MAX_RECALL: i64 = 50;
/// Hits returned when the caller does not say.
pub const DEFAULT_RECALL: i64 = 8;

/// Input of [`RecallService::recall`].
#[derive(Debug, Clone)]
pub struct RecallRequest {
    /// The novel.
    pub novel_id: NovelId,
    /// The question.
    pub query: String,
    /// Only what chapters with a seq below this established (>= 1).
    pub before_chapter: Option<i64>,
    /// How many hits, 1..=50; default 8.
    pub first: Option<i64>,
    /// How to search.
    pub mode: RecallMode,
}

/// What `recall` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct RecallResult {
    /// The hits, best first.
    pub hits: Vec<RecallHit>,
    /// How long the search took.
    pub took: Duration,
}

/// A search without an actor (the job runner searches for the job's tenant).
#[derive(Debug, Clone)]
pub struct Search<'a> {
    /// The tenant.
    pub tenant: TenantId,
    /// The novel.
    pub novel: NovelId,
    /// The question.
    pub query: &'a str,
    /// Story-time filter (see [`IndexQuery::before_seq`]).
    pub before_seq: Option<i32>,
    /// Only these kinds; empty: all.
    pub kinds: Vec<MemoryKind>,
    /// How many hits.
    pub first: usize,
    /// How to search.
    pub mode: RecallMode,
}

impl From<IndexError> for Error {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Unavailable(m) => Error::Unavailable(m),
            IndexError::Invalid(m) => Error::invalid("mode", m),
            IndexError::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<EmbedError> for Error {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Unavailable(m) => Error::Unavailable(format!("embedder: {m}")),
            EmbedError::Rejected(m) | EmbedError::Protocol(m) => {
                Error::Unavailable(format!("embedder: {m}"))
            }
        }
    }
}

/// Retrieval over the story's memory.
#[derive(Clone)]
pub struct RecallService {
    store: Arc<dyn Store>,
    index: Arc<dyn MemoryIndex>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl RecallService {
    /// Builds the service. Without an embedder, HYBRID searches keywords only and DENSE
    /// is `UNAVAILABLE`.
    pub fn new(
        store: Arc<dyn Store>,
        index: Arc<dyn MemoryIndex>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Self {
        Self {
            store,
            index,
            embedder,
        }
    }

    /// Answers `recall`: validates the request (the question 1..=2,000 characters,
    /// `beforeChapter` >= 1, `first` 1..=50), checks the novel, searches.
    pub async fn recall(&self, actor: &Actor, req: RecallRequest) -> Result<RecallResult, Error> {
        let started = Instant::now();
        let query = req.query.trim();
        if query.is_empty() {
            return Err(Error::invalid("query", "must not be empty"));
        }
        let n = query.chars().count();
        if n > MAX_QUERY_CHARS {
            return Err(Error::invalid(
                "query",
                format!("must be at most {MAX_QUERY_CHARS} characters, got {n}"),
            ));
        }
        if query.contains('\0') {
            return Err(Error::invalid("query", "must not contain NUL characters"));
        }
        let before_seq = req
            .before_chapter
            .map(|b| crate::text::in_range("beforeChapter", b, 1, i64::from(i32::MAX)))
            .transpose()?
            .map(|b| b as i32);
        let first =
            crate::text::in_range("first", req.first.unwrap_or(DEFAULT_RECALL), 1, MAX_RECALL)?;
        self.store
            .get_novel(actor.tenant_id, req.novel_id)
            .await
            .or_not_found("novel")?;
        let hits = self
            .search(Search {
                tenant: actor.tenant_id,
                novel: req.novel_id,
                query,
                before_seq,
                kinds: Vec::new(),
                first: first as usize,
                mode: req.mode,
            })
            .await?;
        Ok(RecallResult {
            hits,
            took: started.elapsed(),
        })
    }

    /// Searches (see the module documentation); the caller has checked access.
    pub async fn search(&self, s: Search<'_>) -> Result<Vec<RecallHit>, Error> {
        let entities = self.entities(s.tenant, s.novel).await?;
        let expansion = alias_expansion(&entities, s.query);
        let mut text = s.query.to_owned();
        for name in &expansion {
            text.push(' ');
            text.push_str(name);
        }
        let (vector, model) = match (&self.embedder, s.mode) {
            (None, RecallMode::Dense) => {
                return Err(Error::Unavailable(
                    "no embedder is configured: DENSE recall is unavailable".into(),
                ));
            }
            (None, _) | (_, RecallMode::Keyword) => (None, None),
            (Some(e), _) => {
                let v = e.embed(&[s.query.to_owned()], EmbedKind::Query).await?;
                (v.into_iter().next(), Some(e.model().to_owned()))
            }
        };
        let mode = match (s.mode, &vector) {
            (RecallMode::Hybrid, None) => RecallMode::Keyword,
            (m, _) => m,
        };
        let query = IndexQuery {
            tenant: s.tenant,
            novel: s.novel,
            before_seq: s.before_seq,
            kinds: s.kinds.clone(),
            text,
            vector,
            model,
            mode,
            limit: s.first * 3 + 10,
        };
        let found = self.index.search(&query).await?;
        let heads = self.chapter_heads(s.tenant, s.novel).await?;
        let mut hits: Vec<RecallHit> = Vec::new();
        for h in found {
            let r = &h.record;
            if !current(
                r.kind,
                r.chapter_id,
                r.chapter_seq,
                r.chapter_version,
                &heads,
            ) {
                continue;
            }
            if let (Some(before), Some(seq)) = (s.before_seq, r.chapter_seq)
                && seq >= before
            {
                continue;
            }
            let hit = RecallHit::from_record(r, h.score);
            if hits.iter().any(|k| overlaps(k, &hit)) {
                continue;
            }
            hits.push(hit);
            if hits.len() >= s.first {
                break;
            }
        }
        Ok(hits)
    }

    /// Every entity of the novel (for alias expansion).
    async fn entities(&self, tenant: TenantId, novel: NovelId) -> Result<Vec<Entity>, Error> {
        let mut out = Vec::new();
        let mut page = PageRequest::new(Some(crate::page::MAX_PAGE_SIZE as i64), None)?;
        loop {
            let p = self
                .store
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

    async fn chapter_heads(
        &self,
        tenant: TenantId,
        novel: NovelId,
    ) -> Result<HashMap<ChapterId, (i32, i32)>, Error> {
        Ok(self
            .store
            .chapter_heads(tenant, novel)
            .await?
            .into_iter()
            .map(|(id, seq, version)| (id, (seq, version)))
            .collect())
    }
}

/// Whether a record still describes the story as it is: its chapter exists with the
/// same seq and, for passages and summaries, the same version.
fn current(
    kind: MemoryKind,
    chapter: Option<ChapterId>,
    seq: Option<i32>,
    version: Option<i32>,
    heads: &HashMap<ChapterId, (i32, i32)>,
) -> bool {
    let Some(chapter) = chapter else {
        return true;
    };
    let Some(&(now_seq, now_version)) = heads.get(&chapter) else {
        return false;
    };
    if seq.is_some_and(|s| s != now_seq) {
        return false;
    }
    match kind {
        MemoryKind::Passage | MemoryKind::Summary => version == Some(now_version),
        _ => true,
    }
}

/// Whether two hits say the same thing: the same text, or passages of one chapter whose
/// spans overlap.
fn overlaps(a: &RecallHit, b: &RecallHit) -> bool {
    if a.text == b.text {
        return true;
    }
    match (
        a.kind,
        b.kind,
        a.chapter_id,
        b.chapter_id,
        a.start_offset.zip(a.end_offset),
        b.start_offset.zip(b.end_offset),
    ) {
        (
            MemoryKind::Passage,
            MemoryKind::Passage,
            Some(ca),
            Some(cb),
            Some((sa, ea)),
            Some((sb, eb)),
        ) => ca == cb && sa < eb && sb < ea,
        _ => false,
    }
}

/// Whether `name` occurs in `haystack_lower` (already lower-cased) as a word: for
/// names made of letters, not inside a longer word ("Ann" is not in "Anne"); CJK names
/// anywhere.
pub fn names_in(haystack_lower: &str, name: &str) -> bool {
    let needle = name.trim().to_lowercase();
    if needle.is_empty() {
        return false;
    }
    // Letters and digits of scripts written with spaces between words.
    let spaced = |c: char| c.is_alphanumeric() && !crate::text::is_cjk_char(c);
    let mut from = 0;
    while let Some(i) = haystack_lower[from..].find(&needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = haystack_lower[..start].chars().next_back();
        let after = haystack_lower[end..].chars().next();
        let bounded_before =
            !(needle.chars().next().is_some_and(spaced) && before.is_some_and(spaced));
        let bounded_after =
            !(needle.chars().next_back().is_some_and(spaced) && after.is_some_and(spaced));
        if bounded_before && bounded_after {
            return true;
        }
        from = start + needle.len().max(1);
    }
    false
}

/// The entities `text` names, by name or alias.
pub fn named_entities<'a>(entities: &'a [Entity], text: &str) -> Vec<&'a Entity> {
    let lower = text.to_lowercase();
    entities
        .iter()
        .filter(|e| {
            std::iter::once(&e.name)
                .chain(e.aliases.iter())
                .any(|n| names_in(&lower, n))
        })
        .collect()
}

/// The other names of the entities a question names: what its keyword search adds.
fn alias_expansion(entities: &[Entity], query: &str) -> Vec<String> {
    let lower = query.to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for e in named_entities(entities, query) {
        for n in std::iter::once(&e.name).chain(e.aliases.iter()) {
            if !names_in(&lower, n) && !out.contains(n) {
                out.push(n.clone());
            }
        }
    }
    out
}

/// The hits that fit in `budget` tokens, best first (a hit that does not fit is skipped,
/// a shorter one after it may still fit).
pub fn pack(hits: &[RecallHit], budget: usize) -> Vec<RecallHit> {
    let mut used = 0;
    let mut out = Vec::new();
    for h in hits {
        let t = estimate_tokens(&h.text) + 8;
        if used + t <= budget {
            used += t;
            out.push(h.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_words_and_cjk_anywhere() {
        assert!(names_in("where did the ferret go?", "the Ferret"));
        assert!(!names_in("anne smiled", "Ann"));
        assert!(names_in("ann, smiling", "Ann"));
        assert!(names_in("林黛玉进了贾府", "黛玉"));
        assert!(names_in("她看见了黛玉。", "黛玉"));
        assert!(!names_in("nothing here", ""));
    }

    fn hit(
        kind: MemoryKind,
        chapter: Option<ChapterId>,
        span: Option<(i32, i32)>,
        text: &str,
    ) -> RecallHit {
        RecallHit {
            record_id: uuid::Uuid::nil(),
            kind,
            text: text.into(),
            score: 1.0,
            chapter_id: chapter,
            chapter_seq: Some(1),
            start_offset: span.map(|s| s.0),
            end_offset: span.map(|s| s.1),
        }
    }

    #[test]
    fn overlapping_passages_of_one_chapter_are_the_same_hit() {
        let c = ChapterId::new();
        let a = hit(MemoryKind::Passage, Some(c), Some((0, 100)), "a");
        let b = hit(MemoryKind::Passage, Some(c), Some((80, 180)), "b");
        let d = hit(MemoryKind::Passage, Some(c), Some((100, 180)), "d");
        let other = hit(
            MemoryKind::Passage,
            Some(ChapterId::new()),
            Some((0, 100)),
            "e",
        );
        assert!(overlaps(&a, &b));
        assert!(!overlaps(&a, &d));
        assert!(!overlaps(&a, &other));
        assert!(overlaps(&a, &hit(MemoryKind::Event, None, None, "a")));
    }

    #[test]
    fn stale_records_are_not_current() {
        let c = ChapterId::new();
        let heads: HashMap<_, _> = [(c, (3, 2))].into_iter().collect();
        assert!(current(
            MemoryKind::Passage,
            Some(c),
            Some(3),
            Some(2),
            &heads
        ));
        assert!(!current(
            MemoryKind::Passage,
            Some(c),
            Some(3),
            Some(1),
            &heads
        ));
        assert!(!current(
            MemoryKind::Passage,
            Some(c),
            Some(4),
            Some(2),
            &heads
        ));
        assert!(!current(
            MemoryKind::Event,
            Some(ChapterId::new()),
            Some(1),
            None,
            &heads
        ));
        assert!(current(MemoryKind::Entity, None, None, None, &heads));
        assert!(current(MemoryKind::Event, Some(c), Some(3), None, &heads));
    }

    #[test]
    fn packing_keeps_the_best_that_fit() {
        let long = hit(MemoryKind::Passage, None, None, &"word ".repeat(400));
        let short = hit(MemoryKind::Passage, None, None, "short one");
        let packed = pack(&[short.clone(), long, short.clone()], 50);
        assert_eq!(packed.len(), 2);
    }
}
