//! The continuity fixture (`benches/fixtures/continuity_cases.json`) and its scoring,
//! shared by the rules' benchmark (`continuity`, this crate) and the reviewer's with the
//! embedded model (`continuity_reviewer`, crate `znovel`).
//!
//! A case with a planted contradiction is found when an issue of its kind is reported;
//! any issue on a near miss, or of another kind, is a false positive; a found issue is
//! localised when its span quotes the text exactly and overlaps the planted words. A case
//! may carry `review`: what a plausible reviewer answers about it (the scripted reviewer
//! plays it back; a case without one gets an empty review).
#![allow(dead_code)]

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use znovel_domain::ids::{ChapterId, EntityId, EntityStateId, NovelId, RelationId, TenantId};
use znovel_domain::model::{
    Entity, EntityKind, EntityState, IssueSource, Provenance, Relation, Span, Vital,
};
use znovel_domain::ports::{
    CompletionEvent, CompletionRequest, CompletionStream, FinishReason, LanguageModel, LlmError,
    ServedBy,
};
use znovel_domain::services::Reviewer;
use znovel_domain::services::validate::{Checker, EarlierPassage, Policy, Story};

#[derive(Deserialize)]
pub struct Fixture {
    pub stories: Vec<StoryIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoryIn {
    pub language: String,
    pub entities: Vec<EntityIn>,
    pub states: Vec<StateIn>,
    pub relations: Vec<RelationIn>,
    pub passages: Vec<PassageIn>,
    pub banned_terms: Vec<String>,
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
pub struct EntityIn {
    pub name: String,
    pub kind: String,
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StateIn {
    pub entity: String,
    pub chapter: i32,
    pub vital: Option<String>,
    pub state: String,
    pub location: Option<String>,
    pub holder: Option<String>,
    pub lost: bool,
    pub injuries: Vec<String>,
}

#[derive(Deserialize)]
pub struct RelationIn {
    pub a: String,
    pub b: String,
    pub kind: String,
    pub description: String,
    pub chapter: i32,
}

#[derive(Deserialize)]
pub struct PassageIn {
    pub chapter: i32,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub target_words: Option<i64>,
    pub expect: Option<Expect>,
    /// What a plausible reviewer answers about this case.
    #[serde(default)]
    pub review: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub struct Expect {
    pub kind: String,
    pub quote: Option<String>,
}

pub fn entity(tenant: TenantId, novel: NovelId, name: &str, kind: EntityKind) -> Entity {
    Entity {
        id: EntityId::new(),
        tenant_id: tenant,
        novel_id: novel,
        name: name.into(),
        aliases: Vec::new(),
        kind,
        description: String::new(),
        attributes: serde_json::json!({}),
        importance: 50,
        current_state: String::new(),
        first_chapter_seq: None,
        last_chapter_seq: None,
        appearance_count: 0,
        provenance: Provenance::default(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

pub fn state(tenant: TenantId, entity: EntityId, chapter: ChapterId) -> EntityState {
    EntityState {
        id: EntityStateId::new(),
        tenant_id: tenant,
        entity_id: entity,
        chapter_id: Some(chapter),
        story_time: None,
        state: String::new(),
        attribute_changes: serde_json::json!({}),
        vital: None,
        location_id: None,
        holder_id: None,
        lost: false,
        injuries: Vec::new(),
        provenance: Provenance::default(),
        created_at: chrono::Utc::now(),
    }
}

pub fn build(s: &StoryIn, chapters: usize) -> Story {
    let (tenant, novel) = (TenantId::new(), NovelId::new());
    let ids: Vec<ChapterId> = (0..chapters).map(|_| ChapterId::new()).collect();
    let mut story = Story::default();
    for (i, c) in ids.iter().enumerate() {
        story.chapter_seqs.insert(*c, i as i32 + 1);
    }
    for e in &s.entities {
        let mut x = entity(tenant, novel, &e.name, EntityKind::parse(&e.kind).unwrap());
        x.aliases = e.aliases.clone();
        x.description = e.description.clone();
        story.entities.push(x);
    }
    let id = |story: &Story, name: &str| {
        story
            .entities
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no entity {name}"))
            .id
    };
    for st in &s.states {
        let mut x = state(tenant, id(&story, &st.entity), ids[st.chapter as usize - 1]);
        x.vital = st.vital.as_deref().and_then(Vital::parse);
        x.state = st.state.clone();
        x.location_id = st.location.as_deref().map(|n| id(&story, n));
        x.holder_id = st.holder.as_deref().map(|n| id(&story, n));
        x.lost = st.lost;
        x.injuries = st.injuries.clone();
        story.states.push(x);
    }
    for r in &s.relations {
        story.relations.push(Relation {
            id: RelationId::new(),
            tenant_id: tenant,
            novel_id: novel,
            source_id: id(&story, &r.a),
            target_id: id(&story, &r.b),
            kind: r.kind.clone(),
            strength: 0.8,
            description: r.description.clone(),
            since_chapter_id: Some(ids[r.chapter as usize - 1]),
            provenance: Provenance::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        });
    }
    for (i, p) in s.passages.iter().enumerate() {
        story.passages.push(EarlierPassage {
            chapter_id: ids[p.chapter as usize - 1],
            chapter_seq: p.chapter,
            ordinal: i as i32,
            start: 0,
            end: p.text.chars().count() as i32,
            text: p.text.clone(),
        });
    }
    story.policy = Policy {
        banned_terms: s.banned_terms.clone(),
        target_words: None,
    };
    story
}

#[derive(Default)]
struct Score {
    planted: u32,
    found: u32,
    false_positives: u32,
    localised: u32,
}

/// What the reviewer's answers became, over the whole fixture.
#[derive(Default)]
pub struct ReviewTally {
    /// Reviews asked.
    pub asked: u32,
    /// Reviews that failed (model error, timeout, an answer off the schema).
    pub failed: u32,
    /// Findings kept, as issues.
    pub kept: u32,
    /// Findings dropped: quote not in the text / under the confidence floor / covered by
    /// a rule's issue.
    pub unlocated: u32,
    pub unsure: u32,
    pub covered: u32,
    /// Time of each review.
    pub times: Vec<Duration>,
}

/// Scores the fixture: the rules, then — when `reviewer` gives one for a case — its
/// review, merged as the validation service merges it. Prints the table.
pub async fn quality(
    fixture: &Fixture,
    mut reviewer: impl FnMut(&Case) -> Option<Reviewer>,
) -> ReviewTally {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut tally = ReviewTally::default();
    for s in &fixture.stories {
        let mut story = build(s, 30);
        for case in &s.cases {
            story.policy.target_words = case.target_words;
            let mut issues = Checker::new(&story).check(&case.text);
            if let Some(r) = reviewer(case) {
                tally.asked += 1;
                let t = Instant::now();
                let review = r.review(&story, &case.text, &issues).await;
                tally.times.push(t.elapsed());
                match review {
                    Ok(review) => {
                        tally.kept += review.issues.len() as u32;
                        tally.unlocated += review.unlocated as u32;
                        tally.unsure += review.unsure as u32;
                        tally.covered += review.covered as u32;
                        issues.extend(review.issues);
                    }
                    Err(why) => {
                        tally.failed += 1;
                        misses.push(format!(
                            "{} ({}): review failed: {why}",
                            case.id, s.language
                        ));
                    }
                }
            }
            if let Some(e) = &case.expect {
                let sc = scores.entry(e.kind.clone()).or_default();
                sc.planted += 1;
                let hit = issues.iter().find(|i| i.kind.as_str() == e.kind);
                match hit {
                    Some(i) => {
                        sc.found += 1;
                        let localised = match (&e.quote, &i.span) {
                            (None, None) => true,
                            (Some(q), Some(span)) => localised(&case.text, q, span),
                            _ => false,
                        };
                        if localised {
                            sc.localised += 1;
                        }
                    }
                    None => misses.push(format!("{} ({}): not found", case.id, s.language)),
                }
            }
            for i in &issues {
                if case
                    .expect
                    .as_ref()
                    .is_some_and(|e| e.kind == i.kind.as_str())
                {
                    continue;
                }
                scores
                    .entry(i.kind.as_str().to_owned())
                    .or_default()
                    .false_positives += 1;
                let who = match i.source {
                    IssueSource::Rule => "rule",
                    IssueSource::Reviewer => "reviewer",
                };
                misses.push(format!(
                    "{} ({}): false positive ({who}) {} at {:?}",
                    case.id,
                    s.language,
                    i.kind.as_str(),
                    i.span.as_ref().map(|s| s.text.as_str())
                ));
            }
        }
    }
    let cases: usize = fixture.stories.iter().map(|s| s.cases.len()).sum();
    let planted: usize = fixture
        .stories
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.expect.is_some())
        .count();
    println!(
        "{cases} cases, {planted} with a planted contradiction, {} near misses\n",
        cases - planted
    );
    println!("| kind | planted | found | false positives | precision | recall | span localised |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut total = Score::default();
    for (kind, s) in &scores {
        print_row(kind, s);
        total.planted += s.planted;
        total.found += s.found;
        total.false_positives += s.false_positives;
        total.localised += s.localised;
    }
    print_row("**all**", &total);
    for m in misses {
        println!("- {m}");
    }
    if tally.asked > 0 {
        let mut t = tally.times.clone();
        t.sort();
        println!(
            "\nreviews: {} asked, {} failed; findings kept {}, dropped: {} quote not in the text, {} under confidence {}, {} covered by a rule",
            tally.asked,
            tally.failed,
            tally.kept,
            tally.unlocated,
            tally.unsure,
            znovel_domain::services::validate::review::MIN_CONFIDENCE,
            tally.covered
        );
        println!(
            "review time: median {:.1} ms, max {:.1} ms, total {:.1} s",
            t[t.len() / 2].as_secs_f64() * 1e3,
            t[t.len() - 1].as_secs_f64() * 1e3,
            t.iter().map(Duration::as_secs_f64).sum::<f64>()
        );
    }
    tally
}

fn localised(text: &str, quote: &str, span: &Span) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let (s, e) = (span.start as usize, span.end as usize);
    if e > chars.len() || s >= e || chars[s..e].iter().collect::<String>() != span.text {
        return false;
    }
    let Some(b) = text.find(quote) else {
        return false;
    };
    let qs = text[..b].chars().count();
    let qe = qs + quote.chars().count();
    s < qe && qs < e
}

fn print_row(kind: &str, s: &Score) {
    let pct = |a: u32, b: u32| {
        if b == 0 {
            "—".to_owned()
        } else {
            format!("{:.0}%", 100.0 * f64::from(a) / f64::from(b))
        }
    };
    println!(
        "| {kind} | {} | {} | {} | {} | {} | {} |",
        s.planted,
        s.found,
        s.false_positives,
        pct(s.found, s.found + s.false_positives),
        pct(s.found, s.planted),
        pct(s.localised, s.found)
    );
}

/// A model that answers every request with one fixed text: the scripted reviewer.
pub struct Scripted(pub String);

#[async_trait::async_trait]
impl LanguageModel for Scripted {
    fn served_by(&self) -> ServedBy {
        ServedBy {
            provider: "scripted".into(),
            model: "reviewer".into(),
            fallback: false,
        }
    }

    async fn stream(&self, _request: CompletionRequest) -> Result<CompletionStream, LlmError> {
        let events = vec![
            Ok(CompletionEvent::Started(self.served_by())),
            Ok(CompletionEvent::Delta(self.0.clone())),
            Ok(CompletionEvent::Finished(FinishReason::Stop)),
        ];
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}

/// The scripted reviewer of `case`: its `review`, or an empty one.
pub fn scripted(case: &Case) -> Reviewer {
    let answer = case
        .review
        .clone()
        .unwrap_or_else(|| serde_json::json!({ "findings": [] }));
    Reviewer::new(Arc::new(Scripted(answer.to_string())))
}

/// The fixture.
pub fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../domain/benches/fixtures/continuity_cases.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
