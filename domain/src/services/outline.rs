//! Outlines drafted from the novel's plan, for the chapters a batch (`generateChapters`)
//! writes without one: the prompt, the answer's JSON schema and its parsing (pure; the
//! batch runner calls the model, `batch_run.rs`).
//!
//! The plan is the novel's premise (its description), genre and world settings, the
//! summary of the chapter's volume, and the chapters around it: the outlines and
//! summaries of up to five before (what the new chapter must follow from) and the outline
//! of the next one planned (what it must lead to). A novel with neither a description nor
//! a volume summary has no plan: a batch that would need an outline is refused before it
//! starts.

use crate::model::{Chapter, Novel, Volume};
use crate::ports::{ChatMessage, ChatRole};
use serde::Deserialize;

/// Chapters before the new one the prompt shows.
pub const CHAPTERS_BEFORE: usize = 5;

/// Completion tokens an outline may take.
pub const MAX_OUTLINE_TOKENS: u32 = 600;

/// The longest text of one plan part the prompt holds (characters).
const MAX_PART_CHARS: usize = 2_000;

/// The longest outline or summary of a neighbouring chapter the prompt holds.
const MAX_NEIGHBOUR_CHARS: usize = 600;

/// Whether the novel has a plan to draft outlines from: a premise or a volume summary.
pub fn has_plan(novel: &Novel, volumes: &[Volume]) -> bool {
    !novel.description.trim().is_empty() || volumes.iter().any(|v| !v.summary.trim().is_empty())
}

/// What an outline is drafted from.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The novel (premise, genre, world settings, language).
    pub novel: &'a Novel,
    /// The chapter's volume, if any.
    pub volume: Option<&'a Volume>,
    /// Up to [`CHAPTERS_BEFORE`] chapters before it, in order (nearest last).
    pub before: &'a [Chapter],
    /// The next chapter after it, if any.
    pub after: Option<&'a Chapter>,
}

/// A drafted outline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drafted {
    /// The chapter's title (used for a chapter the batch creates).
    pub title: String,
    /// The outline: one beat a line, each starting with "- ".
    pub outline: String,
}

#[derive(Deserialize)]
struct Answer {
    title: String,
    beats: Vec<String>,
}

fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The chat messages asking for the outline of chapter `seq` (`title`: the chapter's
/// title when it exists), about `target_words` long once written.
pub fn prompt(
    plan: &Plan<'_>,
    seq: i32,
    title: Option<&str>,
    target_words: i64,
) -> Vec<ChatMessage> {
    let n = plan.novel;
    let mut system = format!("You plan the chapters of the novel \"{}\"", n.title);
    if !n.genre.trim().is_empty() {
        system.push_str(&format!(", a {} novel", n.genre.trim()));
    }
    system.push_str(&format!(
        ", written in {}. You answer with one JSON object and nothing else.",
        n.language
    ));
    let mut user = String::new();
    if !n.description.trim().is_empty() {
        user.push_str(&format!(
            "Premise:\n{}\n\n",
            cut(&n.description, MAX_PART_CHARS)
        ));
    }
    let settings = n.world_settings.to_string();
    if settings != "{}" && settings != "null" {
        user.push_str(&format!(
            "World settings:\n{}\n\n",
            cut(&settings, MAX_PART_CHARS)
        ));
    }
    if let Some(v) = plan.volume.filter(|v| !v.summary.trim().is_empty()) {
        user.push_str(&format!(
            "Volume {} ({}):\n{}\n\n",
            v.seq,
            v.title,
            cut(&v.summary, MAX_PART_CHARS)
        ));
    }
    if !plan.before.is_empty() {
        user.push_str("The chapters before it:\n");
        for c in plan.before {
            user.push_str(&format!("Chapter {} ({})", c.seq, c.title));
            if !c.outline.trim().is_empty() {
                user.push_str(&format!(
                    "\n  outline: {}",
                    cut(&c.outline, MAX_NEIGHBOUR_CHARS)
                ));
            }
            if !c.summary.trim().is_empty() {
                user.push_str(&format!(
                    "\n  what happened: {}",
                    cut(&c.summary, MAX_NEIGHBOUR_CHARS)
                ));
            }
            user.push('\n');
        }
        user.push('\n');
    }
    if let Some(c) = plan.after {
        user.push_str(&format!(
            "The chapter after it: Chapter {} ({})",
            c.seq, c.title
        ));
        if !c.outline.trim().is_empty() {
            user.push_str(&format!(
                "\n  outline: {}",
                cut(&c.outline, MAX_NEIGHBOUR_CHARS)
            ));
        }
        user.push_str("\n\n");
    }
    let named = match title {
        Some(t) => format!("chapter {seq}, \"{t}\""),
        None => format!("chapter {seq}"),
    };
    user.push_str(&format!(
        "Draft the outline of {named}: 3 to 8 beats, one sentence each — what happens, to whom, where. \
         It continues from the chapters before it{} and stays true to the premise. About {target_words} \
         {} will be written from it.\n\
         Answer as JSON: {{\"title\": \"the chapter's title\", \"beats\": [\"...\", \"...\"]}}",
        if plan.after.is_some() {
            " and leads to the chapter after it"
        } else {
            ""
        },
        if crate::text::is_cjk_language(&n.language) {
            "characters"
        } else {
            "words"
        },
    ));
    vec![
        ChatMessage {
            role: ChatRole::System,
            content: system,
        },
        ChatMessage {
            role: ChatRole::User,
            content: user,
        },
    ]
}

/// The JSON schema of the answer (a grammar for the embedded model).
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 120 },
            "beats": {
                "type": "array",
                "items": { "type": "string", "minLength": 1, "maxLength": 400 },
                "minItems": 1,
                "maxItems": 8
            }
        },
        "required": ["title", "beats"],
        "additionalProperties": false
    })
}

/// Reads the model's answer: `Err` says why it is not an outline.
pub fn parse(answer: &str) -> Result<Drafted, String> {
    let a: Answer = super::extract::parse_json_answer(answer)?;
    let beats: Vec<String> = a
        .beats
        .iter()
        .map(|b| b.trim().trim_start_matches(['-', '*', '•']).trim())
        .filter(|b| !b.is_empty())
        .map(|b| format!("- {b}"))
        .collect();
    if beats.is_empty() {
        return Err("the drafted outline has no beats".into());
    }
    let outline = beats.join("\n");
    if outline.chars().count() > crate::text::MAX_TEXT {
        return Err("the drafted outline is too long".into());
    }
    let title: String = a
        .title
        .trim()
        .chars()
        .take(crate::text::MAX_TITLE)
        .collect();
    Ok(Drafted { title, outline })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{NovelId, TenantId};
    use crate::model::NovelStatus;

    fn novel(description: &str) -> Novel {
        let t = chrono::Utc::now();
        Novel {
            id: NovelId::new(),
            tenant_id: TenantId::new(),
            title: "The Salt Road".into(),
            description: description.into(),
            genre: "fantasy".into(),
            language: "en".into(),
            target_word_count: None,
            style_guide: String::new(),
            world_settings: serde_json::json!({}),
            time_system: String::new(),
            status: NovelStatus::Draft,
            word_count: 0,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn a_plan_is_a_premise_or_a_volume_summary() {
        assert!(!has_plan(&novel("  "), &[]));
        assert!(has_plan(&novel("A smuggler crosses the salt flats."), &[]));
    }

    #[test]
    fn the_prompt_holds_the_premise_and_the_neighbours() {
        let n = novel("A smuggler crosses the salt flats.");
        let m = prompt(
            &Plan {
                novel: &n,
                volume: None,
                before: &[],
                after: None,
            },
            4,
            None,
            1500,
        );
        assert!(
            m[1].content
                .contains("Premise:\nA smuggler crosses the salt flats.")
        );
        assert!(m[1].content.contains("chapter 4: 3 to 8 beats"));
        assert!(m[1].content.contains("About 1500 words"));
        assert!(!m[1].content.contains("leads to the chapter after"));
    }

    #[test]
    fn answers_become_beats_or_say_why_not() {
        let d = parse(
            "Sure! {\"title\": \" The Well \", \"beats\": [\"- Mara finds the well.\", \"\", \"She drinks.\"]}",
        )
        .unwrap();
        assert_eq!(d.title, "The Well");
        assert_eq!(d.outline, "- Mara finds the well.\n- She drinks.");
        assert!(parse("{\"title\": \"x\", \"beats\": [\" \"]}").is_err());
        assert!(parse("no json here").is_err());
    }
}
