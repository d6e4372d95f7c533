//! The prompt builder and length control.
//!
//! A prompt holds the task (kind, target length, instructions, outline, the current text
//! for CONTINUE/REWRITE/POLISH) — always — and, within the token budget, what the story
//! already established, each part with a priority; when the whole does not fit, the
//! least important parts go first:
//!
//! | priority | part |
//! |---|---|
//! | 1 | the states, as of the previous chapter, of the entities the outline names |
//! | 2 | the summaries of the three previous chapters |
//! | 3 | the style guide |
//! | 4 | passages and records recalled for the outline (best first) |
//! | 5 | open foreshadowing threads |
//! | 6 | the world settings |
//! | 7 | the volume's summary |
//! | 8 | older chapters' summaries (nearest first) |
//!
//! Parts are then laid out in reading order (setting, then what happened, then who is
//! where, then the task). [`Built::context`] lists the recalled hits the prompt kept.

use crate::ids::EntityId;
use crate::model::{Chapter, Entity, EntityState, JobKind, Novel, RecallHit, Vital, Volume};
use crate::ports::{ChatMessage, ChatRole};
use crate::text::is_cjk_language;
use std::collections::HashMap;

/// Rough token count of a text: one per CJK character, one per four other characters.
pub fn estimate_tokens(text: &str) -> usize {
    let mut cjk = 0usize;
    let mut other = 0usize;
    for c in text.chars() {
        if (c as u32) >= 0x2E80 {
            cjk += 1;
        } else {
            other += 1;
        }
    }
    cjk + other.div_ceil(4)
}

/// Tokens a model needs for `words` words of prose (CJK: characters), with room for the
/// +15% the length control allows.
pub fn max_tokens_for(words: i64, language: &str) -> u32 {
    let per_word = if is_cjk_language(language) { 1.1 } else { 1.4 };
    let tokens = (words.max(1) as f64 * per_word * 1.15).ceil();
    tokens.clamp(16.0, 32_768.0) as u32
}

/// Whether a text of `words` is long enough for `target` (within -15%).
pub fn is_long_enough(words: i64, target: i64) -> bool {
    words as f64 >= target as f64 * 0.85
}

/// Cuts `text` at the last sentence end that keeps it within `target` + 15% words, when it
/// is longer than that; returns it unchanged otherwise (or when no boundary is found).
pub fn trim_to_length(text: &str, target: i64) -> &str {
    let limit = (target as f64 * 1.15).floor() as i64;
    if crate::text::count_words(text) <= limit {
        return text;
    }
    let mut best = None;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '\n') {
            let end = i + c.len_utf8();
            let candidate = &text[..end];
            if crate::text::count_words(candidate) > limit {
                break;
            }
            best = Some(end);
        }
    }
    match best {
        Some(end) if end > 0 => text[..end].trim_end(),
        _ => text,
    }
}

/// What memory gives a prompt (see `JobRunner::memory_for`).
#[derive(Debug, Clone, Default)]
pub struct Remembered {
    /// Recalled for the outline, best first.
    pub recalled: Vec<RecallHit>,
    /// The entities the outline names, each described with its state as of the
    /// previous chapter.
    pub entities: Vec<String>,
    /// Open threads planted before the chapter.
    pub open_threads: Vec<String>,
}

/// Everything the prompt may draw on.
#[derive(Debug, Clone)]
pub struct PromptContext<'a> {
    /// The novel.
    pub novel: &'a Novel,
    /// The chapter's volume.
    pub volume: Option<&'a Volume>,
    /// The chapter.
    pub chapter: &'a Chapter,
    /// Previous chapters' (seq, title, summary), nearest first.
    pub previous: Vec<(i32, String, String)>,
    /// What to do.
    pub kind: JobKind,
    /// The client's instructions.
    pub instructions: &'a str,
    /// Target length (words; CJK characters).
    pub target_words: i64,
    /// Recalled for the outline, best first.
    pub recalled: Vec<RecallHit>,
    /// The entities the outline names, described with their state.
    pub entities: Vec<String>,
    /// Open threads.
    pub open_threads: Vec<String>,
}

/// A built prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The chat messages.
    pub messages: Vec<ChatMessage>,
    /// The recalled hits it kept (what `GenerationJob.context` shows).
    pub context: Vec<RecallHit>,
}

/// One entity for the prompt: names, kind, description, and its state.
pub fn describe_entity(
    e: &Entity,
    state: Option<&EntityState>,
    names: &HashMap<EntityId, String>,
) -> String {
    let mut out = e.name.clone();
    if !e.aliases.is_empty() {
        out.push_str(&format!(" (also {})", e.aliases.join(", ")));
    }
    out.push_str(&format!(" [{}]", e.kind.as_str().to_lowercase()));
    if !e.description.trim().is_empty() {
        out.push_str(&format!(": {}", e.description.trim()));
    }
    let mut now = Vec::new();
    if let Some(s) = state {
        if s.vital == Some(Vital::Dead) {
            now.push("DEAD".to_owned());
        }
        if let Some(place) = s.location_id.and_then(|id| names.get(&id)) {
            now.push(format!("at {place}"));
        }
        if let Some(holder) = s.holder_id.and_then(|id| names.get(&id)) {
            now.push(format!("held by {holder}"));
        }
        if s.lost {
            now.push("lost".into());
        }
        if !s.injuries.is_empty() {
            now.push(format!("injuries: {}", s.injuries.join(", ")));
        }
        if !s.state.trim().is_empty() {
            now.push(s.state.trim().to_owned());
        }
    } else if !e.current_state.trim().is_empty() {
        now.push(e.current_state.trim().to_owned());
    }
    if !now.is_empty() {
        out.push_str(&format!(" — now: {}", now.join("; ")));
    }
    out
}

/// What to put between a text and the next piece written after it: nothing when one of
/// them has whitespace at the joint or the text is Chinese/Japanese, a space between a
/// sentence end and the next sentence (`…the world." The storm…`), else nothing (the model
/// may be finishing a word).
pub fn boundary(before: &str, next: &str) -> &'static str {
    let (Some(last), Some(first)) = (before.chars().next_back(), next.chars().next()) else {
        return "";
    };
    if last.is_whitespace() || first.is_whitespace() {
        return "";
    }
    let cjk = |c: char| {
        crate::text::is_cjk_char(c)
            || ('\u{3000}'..='\u{303F}').contains(&c)
            || ('\u{FF00}'..='\u{FFEF}').contains(&c)
    };
    if cjk(last) || cjk(first) {
        return "";
    }
    let ends_clause = matches!(
        last,
        '.' | '!' | '?' | '…' | '"' | '\'' | '”' | '’' | ',' | ';' | ':' | ')' | '—'
    );
    if ends_clause && (first.is_alphanumeric() || matches!(first, '"' | '“' | '\'' | '‘' | '('))
    {
        " "
    } else {
        ""
    }
}

/// A part of the prompt that may be dropped.
struct Part {
    priority: u8,
    /// Where it goes in the prompt (reading order).
    place: u8,
    text: String,
    /// The recalled hit it shows, if any.
    hit: Option<RecallHit>,
}

/// Builds the chat messages for a job within `budget` prompt tokens (see the module
/// documentation for what is kept).
pub fn build_prompt(ctx: &PromptContext<'_>, budget: usize) -> Built {
    let n = ctx.novel;
    let unit = if is_cjk_language(&n.language) {
        "characters"
    } else {
        "words"
    };
    let task = match ctx.kind {
        JobKind::Continue => "Continue the chapter from where its current text ends.",
        JobKind::Rewrite => "Rewrite the chapter from scratch, following the outline.",
        JobKind::Polish => "Polish the chapter's prose without changing what happens.",
        _ => "Write the chapter, following the outline.",
    };
    let mut essential = format!(
        "{task}\nWrite about {} {unit} in {}. Output only the chapter's prose, no title, no notes. \
         Stay consistent with what the story established above.\n\nChapter {}: {}\nOutline:\n{}",
        ctx.target_words,
        n.language,
        ctx.chapter.seq,
        ctx.chapter.title,
        if ctx.chapter.outline.is_empty() {
            "(none)"
        } else {
            &ctx.chapter.outline
        },
    );
    if !ctx.instructions.trim().is_empty() {
        essential.push_str(&format!(
            "\n\nInstructions from the author:\n{}",
            ctx.instructions
        ));
    }
    if matches!(
        ctx.kind,
        JobKind::Polish | JobKind::Rewrite | JobKind::Continue
    ) && !ctx.chapter.content.is_empty()
    {
        essential.push_str(&format!(
            "\n\nCurrent text of the chapter:\n{}",
            ctx.chapter.content
        ));
    }
    let mut parts: Vec<Part> = Vec::new();
    let part = |priority, place, text: String| Part {
        priority,
        place,
        text,
        hit: None,
    };
    if !n.style_guide.is_empty() {
        parts.push(part(3, 0, format!("Style guide:\n{}", n.style_guide)));
    }
    let settings = n.world_settings.to_string();
    if settings != "{}" {
        parts.push(part(6, 1, format!("World settings:\n{settings}")));
    }
    if let Some(v) = ctx.volume.filter(|v| !v.summary.is_empty()) {
        parts.push(part(
            7,
            2,
            format!("Volume {} ({}) summary:\n{}", v.seq, v.title, v.summary),
        ));
    }
    // Older summaries first in reading order (place 3 + distance, reversed below).
    for (i, (seq, title, summary)) in ctx.previous.iter().enumerate() {
        if !summary.is_empty() {
            let priority = if i < 3 { 2 } else { 8 };
            parts.push(part(
                priority,
                40u8.saturating_sub(i.min(30) as u8),
                format!("Chapter {seq} ({title}) summary:\n{summary}"),
            ));
        }
    }
    for h in &ctx.recalled {
        let from = match h.chapter_seq {
            Some(seq) => format!("from chapter {seq}"),
            None => "from the story bible".to_owned(),
        };
        parts.push(Part {
            priority: 4,
            place: 50,
            text: format!("- ({from}, {}) {}", h.kind.as_str().to_lowercase(), h.text),
            hit: Some(h.clone()),
        });
    }
    if !ctx.open_threads.is_empty() {
        for t in &ctx.open_threads {
            parts.push(part(5, 60, format!("- open thread: {t}")));
        }
    }
    for e in &ctx.entities {
        parts.push(part(1, 70, format!("- {e}")));
    }
    let system = format!(
        "You are a novelist writing \"{}\"{}. {}",
        n.title,
        if n.genre.is_empty() {
            String::new()
        } else {
            format!(", a {} novel", n.genre)
        },
        if n.description.is_empty() {
            ""
        } else {
            &n.description
        }
    );
    let mut used = estimate_tokens(&system) + estimate_tokens(&essential);
    // Keep parts by priority (stable: earlier parts of one priority first) while they fit.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| parts[i].priority);
    let mut keep = vec![false; parts.len()];
    for i in order {
        let t = estimate_tokens(&parts[i].text) + 1;
        if used + t <= budget {
            used += t;
            keep[i] = true;
        }
    }
    let mut kept: Vec<&Part> = parts
        .iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect();
    kept.sort_by_key(|p| p.place);
    let mut user = String::new();
    let mut section = None;
    for p in &kept {
        let heading = match p.place {
            50 => Some("What the story established (recalled):"),
            60 => Some("Open foreshadowing threads:"),
            70 => Some("Who and what this chapter involves, as of the previous chapter:"),
            _ => None,
        };
        if heading != section {
            if let Some(h) = heading {
                user.push_str(h);
                user.push('\n');
            }
            section = heading;
        }
        user.push_str(&p.text);
        user.push_str(if heading.is_some() { "\n" } else { "\n\n" });
    }
    if !user.is_empty() {
        user = format!("Background:\n\n{}\n---\n\n", user.trim_end());
    }
    user.push_str(&essential);
    let context = kept.iter().filter_map(|p| p.hit.clone()).collect();
    Built {
        messages: vec![
            ChatMessage::new(ChatRole::System, system),
            ChatMessage::new(ChatRole::User, user),
        ],
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimates_and_limits() {
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("林黛玉"), 3);
        assert!(max_tokens_for(1000, "en") >= 1600);
        assert!(max_tokens_for(1000, "zh") < max_tokens_for(1000, "en"));
        assert!(is_long_enough(85, 100));
        assert!(!is_long_enough(84, 100));
    }

    #[test]
    fn trims_long_text_at_a_sentence_end() {
        let text = "One two three. Four five six. Seven eight nine ten eleven.";
        assert_eq!(trim_to_length(text, 6), "One two three. Four five six.");
        assert_eq!(trim_to_length(text, 5), "One two three.");
        assert_eq!(trim_to_length(text, 100), text);
        let zh = "他走了。她笑了。风停了。";
        assert_eq!(trim_to_length(zh, 5), "他走了。");
    }

    #[test]
    fn continuations_join_at_a_boundary() {
        assert_eq!(boundary("…the world.\"", "The storm raged on"), " ");
        assert_eq!(boundary("He ran.", "\"Wait!\""), " ");
        assert_eq!(boundary("He ran. ", "Then"), "");
        assert_eq!(boundary("He ran.", " Then"), "");
        assert_eq!(boundary("the wor", "ld"), "");
        assert_eq!(boundary("他走了。", "她笑了"), "");
        assert_eq!(boundary("", "Then"), "");
    }
}
