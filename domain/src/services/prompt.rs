//! Prompt builder v1 and length control v1.
//!
//! The prompt holds, in order of importance: the task (kind, target length,
//! instructions), the chapter's outline, the novel's style guide and settings, the
//! volume's summary, and the summaries of the previous chapters (nearest first). When the
//! estimate exceeds the budget, the least important parts go first: the oldest previous
//! summaries, then the volume summary, then the world settings, then the style guide.
//! Retrieval and memory plug in here later.

use crate::model::{Chapter, JobKind, Novel, Volume};
use crate::ports::{ChatMessage, ChatRole};
use crate::text::is_cjk_language;

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
}

/// Builds the chat messages for a job within `budget` prompt tokens.
pub fn build_prompt(ctx: &PromptContext<'_>, budget: usize) -> Vec<ChatMessage> {
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
        "{task}\nWrite about {} {unit} in {}. Output only the chapter's prose, no title, no notes.\n\nChapter {}: {}\nOutline:\n{}",
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
    // Optional parts, most important first; dropped from the end when over budget.
    let mut optional: Vec<String> = Vec::new();
    if !n.style_guide.is_empty() {
        optional.push(format!("Style guide:\n{}", n.style_guide));
    }
    let settings = n.world_settings.to_string();
    if settings != "{}" {
        optional.push(format!("World settings:\n{settings}"));
    }
    if let Some(v) = ctx.volume.filter(|v| !v.summary.is_empty()) {
        optional.push(format!(
            "Volume {} ({}) summary:\n{}",
            v.seq, v.title, v.summary
        ));
    }
    for (seq, title, summary) in &ctx.previous {
        if !summary.is_empty() {
            optional.push(format!("Chapter {seq} ({title}) summary:\n{summary}"));
        }
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
    let mut kept = Vec::new();
    for part in optional {
        let t = estimate_tokens(&part);
        if used + t > budget {
            break;
        }
        used += t;
        kept.push(part);
    }
    let mut user = String::new();
    if !kept.is_empty() {
        user.push_str("Background:\n\n");
        user.push_str(&kept.join("\n\n"));
        user.push_str("\n\n---\n\n");
    }
    user.push_str(&essential);
    vec![
        ChatMessage::new(ChatRole::System, system),
        ChatMessage::new(ChatRole::User, user),
    ]
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
}
