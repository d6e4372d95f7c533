//! Extraction: asking the language model what a chapter established, under a JSON schema
//! (a llama.cpp grammar for the embedded model, `response_format` for OpenAI-compatible
//! providers), and turning its answer into story-bible records tied to the chapter and to
//! the span of its text that says so.
//!
//! Names in the answer are matched to the bible through names and aliases; a name the
//! bible does not know becomes a new entity (origin EXTRACTED). A quote the model gives is
//! located in the chapter to set the record's span; a quote that is not in the chapter
//! leaves the span empty (small models paraphrase).

use super::recall::names_in;
use crate::ids::*;
use crate::model::*;
use crate::ports::{ChatMessage, ChatRole};
use serde::Deserialize;
use serde_json::json;

/// Most items of each list the model may return (keeps a small model from looping).
const MAX_ITEMS: usize = 8;
/// Longest string the model may return in one field.
const MAX_FIELD: usize = 300;

/// The JSON schema the answer must follow.
pub fn schema() -> serde_json::Value {
    let s = || json!({ "type": "string", "maxLength": MAX_FIELD });
    let list =
        |item: serde_json::Value| json!({ "type": "array", "items": item, "maxItems": MAX_ITEMS });
    let object = |props: serde_json::Value| {
        let required: Vec<String> = props
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
    };
    object(json!({
        "summary": { "type": "string", "maxLength": 1200 },
        "characters": list(object(json!({
            "name": s(),
            "status": { "type": "string", "enum": ["alive", "dead", "unknown"] },
            "location": s(),
            "injuries": list(s()),
            "state": s(),
            "quote": s(),
        }))),
        "items": list(object(json!({
            "name": s(),
            "holder": s(),
            "lost": { "type": "boolean" },
            "quote": s(),
        }))),
        "events": list(object(json!({
            "title": s(),
            "summary": s(),
            "characters": list(s()),
            "location": s(),
            "quote": s(),
        }))),
        "relations": list(object(json!({
            "source": s(),
            "target": s(),
            "kind": s(),
            "quote": s(),
        }))),
        "planted": list(object(json!({
            "title": s(),
            "description": s(),
            "quote": s(),
        }))),
        "resolved": list(s()),
    }))
}

/// The model's answer, as the schema shapes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Answer {
    /// Summary of the chapter.
    pub summary: String,
    /// Characters' states at the end of the chapter.
    pub characters: Vec<CharacterAnswer>,
    /// Items and who holds them.
    pub items: Vec<ItemAnswer>,
    /// What happens.
    pub events: Vec<EventAnswer>,
    /// Relations shown.
    pub relations: Vec<RelationAnswer>,
    /// Threads planted.
    pub planted: Vec<PlantedAnswer>,
    /// Titles of open threads paid off.
    pub resolved: Vec<String>,
}

/// A character in the answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CharacterAnswer {
    /// Name.
    pub name: String,
    /// alive, dead or unknown.
    pub status: String,
    /// Where they are at the end of the chapter.
    pub location: String,
    /// Injuries.
    pub injuries: Vec<String>,
    /// Their state in words.
    pub state: String,
    /// The sentence that shows it.
    pub quote: String,
}

/// An item in the answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ItemAnswer {
    /// Name.
    pub name: String,
    /// Who holds it at the end of the chapter.
    pub holder: String,
    /// Lost or destroyed.
    pub lost: bool,
    /// The sentence that shows it.
    pub quote: String,
}

/// An event in the answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct EventAnswer {
    /// Title.
    pub title: String,
    /// What happens.
    pub summary: String,
    /// Who takes part.
    pub characters: Vec<String>,
    /// Where.
    pub location: String,
    /// The sentence that tells it.
    pub quote: String,
}

/// A relation in the answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RelationAnswer {
    /// From.
    pub source: String,
    /// To.
    pub target: String,
    /// Kind (friend, enemy, family, lover, ...).
    pub kind: String,
    /// The sentence that shows it.
    pub quote: String,
}

/// A planted thread in the answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PlantedAnswer {
    /// Title.
    pub title: String,
    /// What was planted.
    pub description: String,
    /// The sentence that plants it.
    pub quote: String,
}

/// The prompt asking for the answer: the known bible names (so the model reuses them)
/// and the open threads, then the chapter (cut to about `max_tokens` tokens).
pub fn prompt(
    novel: &Novel,
    chapter: &Chapter,
    entities: &[Entity],
    open_threads: &[Foreshadowing],
    max_tokens: usize,
) -> Vec<ChatMessage> {
    let names: Vec<String> = entities
        .iter()
        .take(80)
        .map(|e| {
            if e.aliases.is_empty() {
                format!("{} ({})", e.name, e.kind.as_str().to_lowercase())
            } else {
                format!(
                    "{} ({}; also {})",
                    e.name,
                    e.kind.as_str().to_lowercase(),
                    e.aliases.join(", ")
                )
            }
        })
        .collect();
    let threads: Vec<String> = open_threads
        .iter()
        .take(30)
        .map(|f| f.title.clone())
        .collect();
    let text = excerpt(&chapter.content, max_tokens);
    let system = "You read a chapter of a novel and record, as JSON, only what the chapter \
        itself states: a short summary; each character's status (alive/dead), location and \
        injuries at the end of the chapter; who holds which item; the events; relations \
        shown; mysteries or promises planted for later; which open threads it pays off. \
        Use the names already known when they refer to the same person, place or thing. \
        For each record, copy the sentence of the chapter that shows it as `quote`.";
    let user = format!(
        "Novel: {} ({})\nKnown names: {}\nOpen threads: {}\n\nChapter {}: {}\n\n{}",
        novel.title,
        if novel.language.is_empty() {
            "en"
        } else {
            &novel.language
        },
        if names.is_empty() {
            "(none)".into()
        } else {
            names.join("; ")
        },
        if threads.is_empty() {
            "(none)".into()
        } else {
            threads.join("; ")
        },
        chapter.seq,
        chapter.title,
        text
    );
    vec![
        ChatMessage::new(ChatRole::System, system),
        ChatMessage::new(ChatRole::User, user),
    ]
}

/// The beginning of `text` that holds about `max_tokens` tokens (cut at a character).
pub(crate) fn excerpt(text: &str, max_tokens: usize) -> &str {
    if super::prompt::estimate_tokens(text) <= max_tokens {
        return text;
    }
    let (mut cjk, mut other) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        if (c as u32) >= 0x2E80 {
            cjk += 1;
        } else {
            other += 1;
        }
        if cjk + other.div_ceil(4) > max_tokens {
            return &text[..i];
        }
    }
    text
}

/// Parses the model's answer (tolerating text around the JSON object).
pub fn parse(text: &str) -> Result<Answer, String> {
    parse_json_answer(text)
}

/// Parses a model's answer as `T`, tolerating text around its JSON object (small models
/// and some providers wrap it in prose or a code fence).
pub(crate) fn parse_json_answer<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let start = text.find('{').ok_or("the answer holds no JSON object")?;
    let end = text.rfind('}').ok_or("the answer holds no JSON object")?;
    if end < start {
        return Err("the answer holds no JSON object".into());
    }
    serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the answer is not the expected JSON: {e}"))
}

/// Where `quote` is in `content`, as code-point offsets (exact, then case-insensitive).
pub fn locate(content: &str, quote: &str) -> Option<(i32, i32)> {
    let q = quote
        .trim()
        .trim_matches(|c| c == '"' || c == '“' || c == '”');
    if q.chars().count() < 4 {
        return None;
    }
    let byte = content.find(q).or_else(|| {
        let lower = content.to_lowercase();
        // Lower-casing can change byte lengths; only use it when it does not.
        (lower.len() == content.len())
            .then(|| lower.find(&q.to_lowercase()))
            .flatten()
    })?;
    let start = content[..byte].chars().count();
    let end = start + q.chars().count();
    Some((start as i32, end as i32))
}

/// Resolves names in an answer to entities, creating the missing ones.
struct Resolver<'a> {
    chapter: &'a Chapter,
    known: Vec<Entity>,
    created: Vec<Entity>,
}

impl Resolver<'_> {
    fn find(&self, name: &str) -> Option<&Entity> {
        let n = name.trim();
        if n.is_empty() {
            return None;
        }
        let lower = n.to_lowercase();
        self.known.iter().chain(self.created.iter()).find(|e| {
            e.name.to_lowercase() == lower || e.aliases.iter().any(|a| a.to_lowercase() == lower)
        })
    }

    /// The entity named `name`, created with `kind` when unknown; `None` for an empty
    /// or placeholder name.
    fn entity(&mut self, name: &str, kind: EntityKind) -> Option<EntityId> {
        let n = name.trim();
        if n.is_empty()
            || matches!(
                n.to_lowercase().as_str(),
                "unknown" | "none" | "n/a" | "nobody" | "-"
            )
        {
            return None;
        }
        if let Some(e) = self.find(n) {
            return Some(e.id);
        }
        let n: String = n.chars().take(crate::text::MAX_NAME).collect();
        let t = crate::services::now();
        let e = Entity {
            id: EntityId::new(),
            tenant_id: self.chapter.tenant_id,
            novel_id: self.chapter.novel_id,
            name: n,
            aliases: Vec::new(),
            kind,
            description: String::new(),
            attributes: json!({}),
            importance: 30,
            current_state: String::new(),
            first_chapter_seq: Some(self.chapter.seq),
            last_chapter_seq: Some(self.chapter.seq),
            appearance_count: 1,
            provenance: Provenance::extracted(self.chapter.id, None),
            created_at: t,
            updated_at: t,
        };
        let id = e.id;
        self.created.push(e);
        Some(id)
    }
}

fn short(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

/// Turns an answer into the records to store for `chapter`.
pub fn to_memory(
    answer: &Answer,
    chapter: &Chapter,
    entities: &[Entity],
    open_threads: &[Foreshadowing],
) -> ExtractedMemory {
    let t = crate::services::now();
    let mut r = Resolver {
        chapter,
        known: entities.to_vec(),
        created: Vec::new(),
    };
    let span = |quote: &str| locate(&chapter.content, quote);
    let story_time = chapter.story_time_start.unwrap_or(i64::from(chapter.seq));
    let mut states = Vec::new();
    for c in &answer.characters {
        let Some(entity_id) = r.entity(&c.name, EntityKind::Character) else {
            continue;
        };
        let location_id = r.entity(&c.location, EntityKind::Location);
        let vital = match c.status.as_str() {
            "alive" => Some(Vital::Alive),
            "dead" => Some(Vital::Dead),
            _ => None,
        };
        let injuries: Vec<String> = c
            .injuries
            .iter()
            .map(|i| short(i, 200))
            .filter(|i| !i.is_empty())
            .collect();
        if vital.is_none()
            && location_id.is_none()
            && injuries.is_empty()
            && c.state.trim().is_empty()
        {
            continue;
        }
        states.push(EntityState {
            id: EntityStateId::new(),
            tenant_id: chapter.tenant_id,
            entity_id,
            chapter_id: Some(chapter.id),
            story_time: Some(story_time),
            state: short(&c.state, crate::text::MAX_TEXT),
            attribute_changes: json!({}),
            vital,
            location_id,
            holder_id: None,
            lost: false,
            injuries,
            provenance: Provenance::extracted(chapter.id, span(&c.quote)),
            created_at: t,
        });
    }
    for i in &answer.items {
        let Some(entity_id) = r.entity(&i.name, EntityKind::Item) else {
            continue;
        };
        let holder_id = r.entity(&i.holder, EntityKind::Character);
        if holder_id.is_none() && !i.lost {
            continue;
        }
        let holder_name = r.find(&i.holder).map(|e| e.name.clone());
        states.push(EntityState {
            id: EntityStateId::new(),
            tenant_id: chapter.tenant_id,
            entity_id,
            chapter_id: Some(chapter.id),
            story_time: Some(story_time),
            state: match (&holder_name, i.lost) {
                (_, true) => "lost".into(),
                (Some(h), false) => format!("held by {h}"),
                (None, false) => String::new(),
            },
            attribute_changes: json!({}),
            vital: None,
            location_id: None,
            holder_id: if i.lost { None } else { holder_id },
            lost: i.lost,
            injuries: Vec::new(),
            provenance: Provenance::extracted(chapter.id, span(&i.quote)),
            created_at: t,
        });
    }
    let mut events = Vec::new();
    for e in &answer.events {
        if e.title.trim().is_empty() {
            continue;
        }
        let mut involved = Vec::new();
        for c in &e.characters {
            if let Some(id) = r.entity(c, EntityKind::Character)
                && !involved.contains(&id)
            {
                involved.push(id);
            }
        }
        let location_id = r.entity(&e.location, EntityKind::Location);
        events.push(Event {
            id: EventId::new(),
            tenant_id: chapter.tenant_id,
            novel_id: chapter.novel_id,
            chapter_id: Some(chapter.id),
            title: short(&e.title, crate::text::MAX_TITLE),
            summary: short(&e.summary, crate::text::MAX_TEXT),
            story_time_start: story_time,
            story_time_end: None,
            location_id,
            involved,
            importance: 50,
            provenance: Provenance::extracted(chapter.id, span(&e.quote)),
            created_at: t,
            updated_at: t,
        });
    }
    let mut relations: Vec<Relation> = Vec::new();
    for rel in &answer.relations {
        let kind = rel.kind.trim().to_lowercase();
        if kind.is_empty() || kind.chars().count() > 50 {
            continue;
        }
        let (Some(source_id), Some(target_id)) = (
            r.entity(&rel.source, EntityKind::Character),
            r.entity(&rel.target, EntityKind::Character),
        ) else {
            continue;
        };
        if source_id == target_id
            || relations
                .iter()
                .any(|x| x.source_id == source_id && x.target_id == target_id && x.kind == kind)
        {
            continue;
        }
        relations.push(Relation {
            id: RelationId::new(),
            tenant_id: chapter.tenant_id,
            novel_id: chapter.novel_id,
            source_id,
            target_id,
            kind,
            strength: 0.5,
            description: String::new(),
            since_chapter_id: Some(chapter.id),
            provenance: Provenance::extracted(chapter.id, span(&rel.quote)),
            created_at: t,
            updated_at: t,
        });
    }
    let planted = answer
        .planted
        .iter()
        .filter(|p| !p.title.trim().is_empty())
        .map(|p| Foreshadowing {
            id: ForeshadowingId::new(),
            tenant_id: chapter.tenant_id,
            novel_id: chapter.novel_id,
            title: short(&p.title, crate::text::MAX_TITLE),
            description: short(&p.description, crate::text::MAX_TEXT),
            planted_chapter_id: Some(chapter.id),
            expected_payoff: String::new(),
            resolved_chapter_id: None,
            status: ForeshadowingStatus::Open,
            provenance: Provenance::extracted(chapter.id, span(&p.quote)),
            created_at: t,
            updated_at: t,
        })
        .collect();
    let resolved = answer
        .resolved
        .iter()
        .filter_map(|title| {
            let lower = title.trim().to_lowercase();
            open_threads.iter().find(|f| {
                !lower.is_empty() && (f.title.to_lowercase() == lower || names_in(&lower, &f.title))
            })
        })
        .map(|f| f.id)
        .collect();
    let summary = Some(short(&answer.summary, crate::text::MAX_TEXT)).filter(|s| !s.is_empty());
    ExtractedMemory {
        tenant_id: chapter.tenant_id,
        chapter_id: chapter.id,
        chapter_version: chapter.version,
        summary,
        new_entities: r.created,
        states,
        events,
        relations,
        planted,
        resolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chapter(content: &str) -> Chapter {
        let t = crate::services::now();
        Chapter {
            id: ChapterId::new(),
            tenant_id: TenantId::new(),
            novel_id: NovelId::new(),
            volume_id: None,
            seq: 4,
            title: "The Bridge".into(),
            outline: String::new(),
            content: content.into(),
            summary: String::new(),
            summary_origin: Origin::Author,
            story_time_start: None,
            story_time_end: None,
            word_count: 0,
            target_word_count: None,
            status: ChapterStatus::Draft,
            version: 2,
            created_at: t,
            updated_at: t,
        }
    }

    fn entity(c: &Chapter, name: &str, aliases: &[&str], kind: EntityKind) -> Entity {
        let t = crate::services::now();
        Entity {
            id: EntityId::new(),
            tenant_id: c.tenant_id,
            novel_id: c.novel_id,
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            kind,
            description: String::new(),
            attributes: json!({}),
            importance: 50,
            current_state: String::new(),
            first_chapter_seq: None,
            last_chapter_seq: None,
            appearance_count: 0,
            provenance: Provenance::default(),
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn an_answer_becomes_records_tied_to_names_and_spans() {
        let c = chapter("Tomas fell from the bridge and did not rise. Mara took the silver key.");
        let tomas = entity(
            &c,
            "Tomas Vell",
            &["Tomas", "the Ferret"],
            EntityKind::Character,
        );
        let answer = parse(
            r#"Here: {"summary":"Tomas dies.","characters":[{"name":"the Ferret","status":"dead","location":"","injuries":[],"state":"dead","quote":"Tomas fell from the bridge and did not rise."}],
            "items":[{"name":"silver key","holder":"Mara","lost":false,"quote":"Mara took the silver key."}],
            "events":[{"title":"The fall","summary":"Tomas falls.","characters":["Tomas","Mara"],"location":"the bridge","quote":"nowhere in the text"}],
            "relations":[],"planted":[],"resolved":[]}"#,
        )
        .unwrap();
        let m = to_memory(&answer, &c, std::slice::from_ref(&tomas), &[]);
        assert_eq!(m.summary.as_deref(), Some("Tomas dies."));
        assert_eq!(m.states.len(), 2);
        assert_eq!(m.states[0].entity_id, tomas.id);
        assert_eq!(m.states[0].vital, Some(Vital::Dead));
        assert_eq!(m.states[0].provenance.span_start, Some(0));
        let names: Vec<&str> = m.new_entities.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["silver key", "Mara", "the bridge"]);
        let mara = m.new_entities.iter().find(|e| e.name == "Mara").unwrap();
        assert_eq!(m.states[1].holder_id, Some(mara.id));
        assert_eq!(m.events[0].involved, vec![tomas.id, mara.id]);
        assert_eq!(m.events[0].provenance.span_start, None);
        assert!(
            m.new_entities
                .iter()
                .all(|e| e.provenance.origin == Origin::Extracted)
        );
    }

    #[test]
    fn quotes_are_located_by_code_points() {
        assert_eq!(
            locate("林黛玉进了贾府。她笑了。", "她笑了。"),
            Some((8, 12))
        );
        assert_eq!(locate("The Storm came.", "the storm came"), Some((0, 14)));
        assert_eq!(locate("abc", "zzzz"), None);
        assert!(parse("no json").is_err());
    }

    #[test]
    fn the_schema_lists_every_field_as_required() {
        let s = schema();
        let required = s["required"].as_array().unwrap();
        assert_eq!(required.len(), s["properties"].as_object().unwrap().len());
    }
}
