//! `cargo bench -p znovel-domain --bench continuity`
//!
//! Continuity rules on a bilingual fixture (`benches/fixtures/continuity_cases.json`: an
//! English and a Chinese story bible — dead characters, injuries, items, a route with its
//! travel time, enmities, earlier passages, banned terms — and candidate chapters, two
//! thirds with one planted contradiction, the rest near misses that must pass).
//!
//! Reports, per issue kind: precision and recall (a case with a planted contradiction is
//! found when an issue of its kind is reported; any issue on a near miss, or of another
//! kind, is a false positive) and span localisation (found issues whose span covers the
//! planted text). Then the time of the rules alone: preparing a story of 300 chapters
//! (about 900,000 words of earlier passages, 300 entities) and checking a 3,000-word
//! chapter against it, median of 30 runs.
//!
//! Then rules + the language-model reviewer, scripted: each case's `review` is what a
//! plausible reviewer answers; played back through the real reviewer code (prompt,
//! evidence, parsing, the drops, the merge), it shows the wiring and what the merge keeps.
//! The reviewer with the embedded model: `cargo bench -p znovel --bench continuity_reviewer`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "continuity/common.rs"]
mod common;

use common::{Fixture, build, entity};
use std::time::{Duration, Instant};
use znovel_domain::ids::{ChapterId, NovelId, TenantId};
use znovel_domain::model::EntityKind;
use znovel_domain::services::validate::{Checker, EarlierPassage};

/// A deterministic pseudo-prose generator (a linear congruential walk over a word list).
fn prose(seed: u64, words: usize, vocabulary: &[&str]) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = String::new();
    for i in 0..words {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(vocabulary[(x >> 33) as usize % vocabulary.len()]);
        out.push(if i % 14 == 13 { '.' } else { ' ' });
        if i % 14 == 13 {
            out.push(if i % 98 == 97 { '\n' } else { ' ' });
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timing(fixture: &Fixture) {
    const VOCAB: &[&str] = &[
        "the", "river", "ran", "cold", "under", "grey", "sky", "and", "she", "he", "walked",
        "slowly", "toward", "old", "keep", "where", "ravens", "waited", "in", "silence", "a",
        "horn", "sounded", "far", "away", "snow", "fell", "on", "wall", "they", "spoke", "of",
        "war", "bread", "fire", "night", "long", "road", "north", "south", "gate",
    ];
    let en = &fixture.stories[0];
    let mut story = build(en, 300);
    let chapters: Vec<(ChapterId, i32)> = {
        let mut v: Vec<_> = story.chapter_seqs.iter().map(|(c, s)| (*c, *s)).collect();
        v.sort_by_key(|x| x.1);
        v
    };
    let (tenant, novel) = (TenantId::new(), NovelId::new());
    for i in 0..286 {
        let mut e = entity(
            tenant,
            novel,
            &format!("Minor Character {i}"),
            EntityKind::Character,
        );
        e.aliases = vec![format!("Nick{i}")];
        story.entities.push(e);
    }
    for (c, seq) in &chapters {
        let text = prose(*seq as u64, 3_000, VOCAB);
        for (o, p) in znovel_domain::chunk::passages(&text)
            .into_iter()
            .enumerate()
        {
            story.passages.push(EarlierPassage {
                chapter_id: *c,
                chapter_seq: *seq,
                ordinal: o as i32,
                start: p.start as i32,
                end: p.end as i32,
                text: p.text,
            });
        }
    }
    let words: usize = story
        .passages
        .iter()
        .map(|p| p.text.split(' ').count())
        .sum();
    let mut chapter = String::new();
    let cases: Vec<&str> = en.cases.iter().map(|c| c.text.as_str()).collect();
    let mut i = 0;
    while znovel_domain::text::count_words(&chapter) < 3_000 {
        chapter.push_str(&prose(10_000 + i as u64, 60, VOCAB));
        chapter.push_str("\n\n");
        chapter.push_str(cases[i % cases.len()]);
        chapter.push_str("\n\n");
        i += 1;
    }
    let mut prepare = Vec::new();
    let mut check = Vec::new();
    let mut issues = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let checker = Checker::new(&story);
        prepare.push(t.elapsed());
        let t = Instant::now();
        issues = checker.check(&chapter).len();
        check.push(t.elapsed());
    }
    // While a chapter streams, the text so far is checked at every sentence end.
    let ends: Vec<usize> = chapter
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '…' | '\n'))
        .map(|(i, c)| i + c.len_utf8())
        .collect();
    let checker = Checker::new(&story);
    let t = Instant::now();
    for &e in &ends {
        std::hint::black_box(checker.check(&chapter[..e]));
    }
    let live = t.elapsed();
    println!(
        "\nstory: {} chapters, {} passages (~{} words), {} entities; chapter: {} words, {} issues",
        chapters.len(),
        story.passages.len(),
        words,
        story.entities.len(),
        znovel_domain::text::count_words(&chapter),
        issues
    );
    println!(
        "prepare (names + repetition index): median {:.1} ms; check: median {:.1} ms",
        median(prepare).as_secs_f64() * 1e3,
        median(check).as_secs_f64() * 1e3
    );
    println!(
        "live (the text so far checked at each of its {} sentence ends): {:.0} ms in all, {:.2} ms per check",
        ends.len(),
        live.as_secs_f64() * 1e3,
        live.as_secs_f64() * 1e3 / ends.len().max(1) as f64
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fixture = common::load();
    println!("## rules alone\n");
    common::quality(&fixture, |_| None).await;
    println!("\n## rules + the scripted reviewer (each case's `review`)\n");
    common::quality(&fixture, |c| Some(common::scripted(c))).await;
    timing(&fixture);
}
