//! Remembering: turning the story into index records — a chapter's passages and summary,
//! and every story-bible record rendered as one sentence of text — embedding them and
//! writing them to the memory index. Each record carries its story time: the seq of the
//! chapter that established it (`None` for the author's timeless bible).
//!
//! The relational database is the record; the index can always be rebuilt from it.

use crate::chunk;
use crate::error::Error;
use crate::ids::{ChapterId, EntityId, NovelId, TenantId};
use crate::model::*;
use crate::ports::{EmbedKind, Embedder, MemoryIndex, Store};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// A record before it is embedded.
#[derive(Debug, Clone)]
struct Draft {
    kind: MemoryKind,
    ordinal: i32,
    chapter_id: Option<ChapterId>,
    chapter_seq: Option<i32>,
    chapter_version: Option<i32>,
    text: String,
    span: Option<(i32, i32)>,
}

/// Writes records to the memory index.
#[derive(Clone)]
pub struct Indexer {
    store: Arc<dyn Store>,
    index: Arc<dyn MemoryIndex>,
    embedder: Option<Arc<dyn Embedder>>,
}

/// Names of a novel's entities and seqs of its chapters, for rendering records.
struct Lookup {
    names: HashMap<EntityId, String>,
    seqs: HashMap<ChapterId, i32>,
}

impl Lookup {
    fn name(&self, id: Option<EntityId>) -> Option<&str> {
        id.and_then(|id| self.names.get(&id)).map(String::as_str)
    }

    fn seq(&self, chapter: Option<ChapterId>) -> Option<i32> {
        chapter.and_then(|c| self.seqs.get(&c).copied())
    }
}

impl Indexer {
    /// Builds the indexer. Without an embedder, records are indexed for keyword search
    /// only.
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

    /// The index written to.
    pub fn index(&self) -> &Arc<dyn MemoryIndex> {
        &self.index
    }

    /// Embeds drafts and replaces the records of `source` of `kinds` with them.
    async fn write(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
        kinds: &[MemoryKind],
        drafts: Vec<Draft>,
    ) -> Result<(), Error> {
        let (vectors, model) = match (&self.embedder, drafts.is_empty()) {
            (Some(e), false) => {
                let texts: Vec<String> = drafts.iter().map(|d| d.text.clone()).collect();
                let v = e.embed(&texts, EmbedKind::Passage).await?;
                if v.len() != drafts.len() {
                    return Err(Error::Internal(format!(
                        "the embedder returned {} vectors for {} texts",
                        v.len(),
                        drafts.len()
                    )));
                }
                (
                    v.into_iter().map(Some).collect(),
                    Some(e.model().to_owned()),
                )
            }
            _ => (vec![None; drafts.len()], None),
        };
        let records = drafts
            .into_iter()
            .zip(vectors)
            .map(|(d, vector)| MemoryRecord {
                id: MemoryRecord::stable_id(source, d.kind, d.ordinal),
                tenant_id: tenant,
                novel_id: novel,
                kind: d.kind,
                source_id: source,
                ordinal: d.ordinal,
                chapter_id: d.chapter_id,
                chapter_seq: d.chapter_seq,
                chapter_version: d.chapter_version,
                text: d.text,
                start_offset: d.span.map(|s| s.0),
                end_offset: d.span.map(|s| s.1),
                model: vector.as_ref().and(model.clone()),
                vector,
            })
            .collect();
        self.index
            .replace(tenant, novel, source, kinds, records)
            .await
            .map_err(Error::from)
    }

    /// Indexes a chapter's current passages (replacing the old ones).
    pub async fn chapter_passages(&self, c: &Chapter) -> Result<(), Error> {
        let drafts = chunk::passages(&c.content)
            .into_iter()
            .enumerate()
            .map(|(i, p)| Draft {
                kind: MemoryKind::Passage,
                ordinal: i as i32,
                chapter_id: Some(c.id),
                chapter_seq: Some(c.seq),
                chapter_version: Some(c.version),
                text: p.text,
                span: Some((p.start as i32, p.end as i32)),
            })
            .collect();
        self.write(
            c.tenant_id,
            c.novel_id,
            c.id.as_uuid(),
            &[MemoryKind::Passage],
            drafts,
        )
        .await
    }

    /// Indexes a chapter's summary (none when it is empty).
    pub async fn chapter_summary(&self, c: &Chapter) -> Result<(), Error> {
        let drafts = if c.summary.trim().is_empty() {
            Vec::new()
        } else {
            vec![Draft {
                kind: MemoryKind::Summary,
                ordinal: 0,
                chapter_id: Some(c.id),
                chapter_seq: Some(c.seq),
                chapter_version: Some(c.version),
                text: format!("Chapter {} ({}): {}", c.seq, c.title, c.summary.trim()),
                span: None,
            }]
        };
        self.write(
            c.tenant_id,
            c.novel_id,
            c.id.as_uuid(),
            &[MemoryKind::Summary],
            drafts,
        )
        .await
    }

    /// Forgets everything recorded from a source (a deleted chapter or bible record).
    pub async fn forget(
        &self,
        tenant: TenantId,
        novel: NovelId,
        source: Uuid,
    ) -> Result<(), Error> {
        self.index
            .forget(tenant, novel, source)
            .await
            .map_err(Error::from)
    }

    /// Forgets everything a deleted chapter established.
    pub async fn forget_chapter(&self, c: &Chapter) -> Result<(), Error> {
        self.index
            .forget_chapter(c.tenant_id, c.novel_id, c.id)
            .await
            .map_err(Error::from)
    }

    async fn lookup(
        &self,
        tenant: TenantId,
        novel: NovelId,
        ids: &[EntityId],
    ) -> Result<Lookup, Error> {
        let seqs = self
            .store
            .chapter_heads(tenant, novel)
            .await?
            .into_iter()
            .map(|(id, seq, _)| (id, seq))
            .collect();
        let mut names = HashMap::new();
        for id in ids {
            if names.contains_key(id) {
                continue;
            }
            if let Ok(e) = self.store.get_entity(tenant, *id).await {
                names.insert(*id, e.name);
            }
        }
        Ok(Lookup { names, seqs })
    }

    /// Indexes an entity: its names, kind, description and state.
    pub async fn entity(&self, e: &Entity) -> Result<(), Error> {
        let look = self.lookup(e.tenant_id, e.novel_id, &[]).await?;
        let mut text = e.name.clone();
        if !e.aliases.is_empty() {
            text.push_str(&format!(" (also called {})", e.aliases.join(", ")));
        }
        text.push_str(&format!(", {}", e.kind.as_str().to_lowercase()));
        if !e.description.trim().is_empty() {
            text.push_str(&format!(": {}", e.description.trim()));
        }
        // An entity extraction discovered is known from the chapter that introduced it;
        // the author's bible entries are known from the start.
        let chapter = match e.provenance.origin {
            Origin::Extracted => e.provenance.chapter_id,
            Origin::Author => None,
        };
        let draft = Draft {
            kind: MemoryKind::Entity,
            ordinal: 0,
            chapter_id: chapter,
            chapter_seq: look.seq(chapter),
            chapter_version: None,
            text,
            span: None,
        };
        self.write(
            e.tenant_id,
            e.novel_id,
            e.id.as_uuid(),
            &[MemoryKind::Entity],
            vec![draft],
        )
        .await
    }

    /// Indexes a state change of `entity`.
    pub async fn entity_state(&self, s: &EntityState, entity: &Entity) -> Result<(), Error> {
        let ids: Vec<EntityId> = s.location_id.into_iter().chain(s.holder_id).collect();
        let look = self.lookup(s.tenant_id, entity.novel_id, &ids).await?;
        let mut parts = Vec::new();
        if !s.state.trim().is_empty() {
            parts.push(s.state.trim().to_owned());
        }
        match s.vital {
            Some(Vital::Dead) => parts.push("dead".into()),
            Some(Vital::Alive) => parts.push("alive".into()),
            None => {}
        }
        if let Some(place) = look.name(s.location_id) {
            parts.push(format!("at {place}"));
        }
        if let Some(holder) = look.name(s.holder_id) {
            parts.push(format!("held by {holder}"));
        }
        if s.lost {
            parts.push("lost".into());
        }
        if !s.injuries.is_empty() {
            parts.push(format!("injured: {}", s.injuries.join(", ")));
        }
        parts.dedup();
        let draft = Draft {
            kind: MemoryKind::EntityState,
            ordinal: 0,
            chapter_id: s.chapter_id,
            chapter_seq: look.seq(s.chapter_id),
            chapter_version: None,
            text: format!("{}: {}", entity.name, parts.join("; ")),
            span: None,
        };
        self.write(
            s.tenant_id,
            entity.novel_id,
            s.id.as_uuid(),
            &[MemoryKind::EntityState],
            vec![draft],
        )
        .await
    }

    /// Indexes a timeline event.
    pub async fn event(&self, ev: &Event) -> Result<(), Error> {
        let ids: Vec<EntityId> = ev.involved.iter().copied().chain(ev.location_id).collect();
        let look = self.lookup(ev.tenant_id, ev.novel_id, &ids).await?;
        let mut text = ev.title.trim().to_owned();
        if !ev.summary.trim().is_empty() {
            text.push_str(&format!(": {}", ev.summary.trim()));
        }
        let who: Vec<&str> = ev
            .involved
            .iter()
            .filter_map(|id| look.name(Some(*id)))
            .collect();
        if !who.is_empty() {
            text.push_str(&format!(" (with {})", who.join(", ")));
        }
        if let Some(place) = look.name(ev.location_id) {
            text.push_str(&format!(" at {place}"));
        }
        let draft = Draft {
            kind: MemoryKind::Event,
            ordinal: 0,
            chapter_id: ev.chapter_id,
            chapter_seq: look.seq(ev.chapter_id),
            chapter_version: None,
            text,
            span: None,
        };
        self.write(
            ev.tenant_id,
            ev.novel_id,
            ev.id.as_uuid(),
            &[MemoryKind::Event],
            vec![draft],
        )
        .await
    }

    /// Indexes a relation.
    pub async fn relation(&self, r: &Relation) -> Result<(), Error> {
        let look = self
            .lookup(r.tenant_id, r.novel_id, &[r.source_id, r.target_id])
            .await?;
        let mut text = format!(
            "{} and {}: {}",
            look.name(Some(r.source_id)).unwrap_or("?"),
            look.name(Some(r.target_id)).unwrap_or("?"),
            r.kind
        );
        if !r.description.trim().is_empty() {
            text.push_str(&format!(" — {}", r.description.trim()));
        }
        let draft = Draft {
            kind: MemoryKind::Relation,
            ordinal: 0,
            chapter_id: r.since_chapter_id,
            chapter_seq: look.seq(r.since_chapter_id),
            chapter_version: None,
            text,
            span: None,
        };
        self.write(
            r.tenant_id,
            r.novel_id,
            r.id.as_uuid(),
            &[MemoryKind::Relation],
            vec![draft],
        )
        .await
    }

    /// Indexes a foreshadowing thread.
    pub async fn foreshadowing(&self, f: &Foreshadowing) -> Result<(), Error> {
        let look = self.lookup(f.tenant_id, f.novel_id, &[]).await?;
        let mut text = f.title.trim().to_owned();
        if !f.description.trim().is_empty() {
            text.push_str(&format!(": {}", f.description.trim()));
        }
        if !f.expected_payoff.trim().is_empty() {
            text.push_str(&format!(" (to pay off: {})", f.expected_payoff.trim()));
        }
        let draft = Draft {
            kind: MemoryKind::Foreshadowing,
            ordinal: 0,
            chapter_id: f.planted_chapter_id,
            chapter_seq: look.seq(f.planted_chapter_id),
            chapter_version: None,
            text,
            span: None,
        };
        self.write(
            f.tenant_id,
            f.novel_id,
            f.id.as_uuid(),
            &[MemoryKind::Foreshadowing],
            vec![draft],
        )
        .await
    }
}
