//! The earlier records an issue contradicts, as recall would return them: the same
//! record ids and texts the memory index holds, so a client can link them.

use super::Story;
use crate::model::{EntityState, MemoryKind, MemoryRecord, RecallHit, Relation, Vital};

/// The hit for an entity's state change.
pub(super) fn state(story: &Story, s: &EntityState) -> RecallHit {
    let mut parts = Vec::new();
    if !s.state.trim().is_empty() {
        parts.push(s.state.trim().to_owned());
    }
    match s.vital {
        Some(Vital::Dead) => parts.push("dead".into()),
        Some(Vital::Alive) => parts.push("alive".into()),
        None => {}
    }
    if let Some(place) = s.location_id.and_then(|id| story.name_of(id)) {
        parts.push(format!("at {place}"));
    }
    if let Some(holder) = s.holder_id.and_then(|id| story.name_of(id)) {
        parts.push(format!("held by {holder}"));
    }
    if s.lost {
        parts.push("lost".into());
    }
    if !s.injuries.is_empty() {
        parts.push(format!("injured: {}", s.injuries.join(", ")));
    }
    parts.dedup();
    let name = story.name_of(s.entity_id).unwrap_or("?");
    RecallHit {
        record_id: MemoryRecord::stable_id(s.id.as_uuid(), MemoryKind::EntityState, 0),
        kind: MemoryKind::EntityState,
        text: format!("{name}: {}", parts.join("; ")),
        score: 1.0,
        chapter_id: s.chapter_id,
        chapter_seq: s
            .chapter_id
            .and_then(|c| story.chapter_seqs.get(&c).copied()),
        start_offset: None,
        end_offset: None,
    }
}

/// The hit for a relation.
pub(super) fn relation(story: &Story, r: &Relation) -> RecallHit {
    let mut text = format!(
        "{} and {}: {}",
        story.name_of(r.source_id).unwrap_or("?"),
        story.name_of(r.target_id).unwrap_or("?"),
        r.kind
    );
    if !r.description.trim().is_empty() {
        text.push_str(&format!(" — {}", r.description.trim()));
    }
    RecallHit {
        record_id: MemoryRecord::stable_id(r.id.as_uuid(), MemoryKind::Relation, 0),
        kind: MemoryKind::Relation,
        text,
        score: 1.0,
        chapter_id: r.since_chapter_id,
        chapter_seq: r
            .since_chapter_id
            .and_then(|c| story.chapter_seqs.get(&c).copied()),
        start_offset: None,
        end_offset: None,
    }
}

/// The hit for an earlier passage.
pub(super) fn passage(p: &super::EarlierPassage) -> RecallHit {
    RecallHit {
        record_id: MemoryRecord::stable_id(p.chapter_id.as_uuid(), MemoryKind::Passage, p.ordinal),
        kind: MemoryKind::Passage,
        text: p.text.clone(),
        score: 1.0,
        chapter_id: Some(p.chapter_id),
        chapter_seq: Some(p.chapter_seq),
        start_offset: Some(p.start),
        end_offset: Some(p.end),
    }
}
