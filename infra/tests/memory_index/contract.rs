//! The contract tests (see `domain::ports::MemoryIndex`).

use crate::support::{Ctx, fake_vector, record};
use znovel_domain::ids::ChapterId;
use znovel_domain::model::{MemoryKind, RecallMode};
use znovel_domain::ports::{IndexHit, IndexQuery};

fn texts(hits: &[IndexHit]) -> Vec<String> {
    hits.iter().map(|h| h.record.text.clone()).collect()
}

pub async fn replace_swaps_a_sources_records(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    let source = uuid::Uuid::now_v7();
    let first: Vec<_> = [
        "Mara lit the lamp at dusk",
        "The storm broke over the cliffs",
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| record(t, n, MemoryKind::Passage, source, i as i32, Some(1), text))
    .collect();
    ctx.index
        .replace(t, n, source, &[MemoryKind::Passage], first.clone())
        .await
        .unwrap();
    // Written twice: one copy.
    ctx.index
        .replace(t, n, source, &[MemoryKind::Passage], first)
        .await
        .unwrap();
    let hits = ctx.keyword("lamp").await;
    assert_eq!(texts(&hits), vec!["Mara lit the lamp at dusk"]);
    let h = &hits[0].record;
    assert_eq!(
        (h.kind, h.source_id, h.chapter_seq),
        (MemoryKind::Passage, source, Some(1))
    );
    assert_eq!(
        (h.start_offset, h.end_offset, h.chapter_version),
        (Some(0), Some(25), Some(1))
    );

    // A summary of the same source is another kind: replacing passages keeps it.
    let summary = record(
        t,
        n,
        MemoryKind::Summary,
        source,
        0,
        Some(1),
        "Chapter 1: the lamp and the storm",
    );
    ctx.index
        .replace(t, n, source, &[MemoryKind::Summary], vec![summary])
        .await
        .unwrap();
    let second = vec![record(
        t,
        n,
        MemoryKind::Passage,
        source,
        0,
        Some(1),
        "Mara slept through the gale",
    )];
    ctx.index
        .replace(t, n, source, &[MemoryKind::Passage], second)
        .await
        .unwrap();
    assert!(
        ctx.keyword("cliffs").await.is_empty(),
        "old passages are gone"
    );
    assert_eq!(
        texts(&ctx.keyword("gale").await),
        vec!["Mara slept through the gale"]
    );
    assert_eq!(
        texts(&ctx.keyword("lamp").await),
        vec!["Chapter 1: the lamp and the storm"],
        "the summary stayed"
    );
}

pub async fn keyword_search_finds_names_in_both_languages(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    let texts_in = [
        "林黛玉进了贾府，见了外祖母。",
        "宝玉在园中读书。",
        "The Ferret slipped the knife into his boot.",
        "Tomas Vell never trusted the harbour master.",
    ];
    for (i, text) in texts_in.iter().enumerate() {
        let source = uuid::Uuid::now_v7();
        let r = record(
            t,
            n,
            MemoryKind::Passage,
            source,
            0,
            Some(i as i32 + 1),
            text,
        );
        ctx.index
            .replace(t, n, source, &[MemoryKind::Passage], vec![r])
            .await
            .unwrap();
    }
    // A two-character name inside an unsegmented sentence.
    assert_eq!(texts(&ctx.keyword("黛玉").await), vec![texts_in[0]]);
    assert_eq!(texts(&ctx.keyword("贾府在哪里").await), vec![texts_in[0]]);
    assert_eq!(texts(&ctx.keyword("宝玉").await), vec![texts_in[1]]);
    assert_eq!(
        texts(&ctx.keyword("where is the ferret?").await),
        vec![texts_in[2]]
    );
    // Any word of the question: both names found, each once.
    let both = texts(&ctx.keyword("Ferret or Vell").await);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(ctx.keyword("dragon").await.is_empty());
    // Case and stop words do not matter.
    assert_eq!(texts(&ctx.keyword("THE HARBOUR").await), vec![texts_in[3]]);
}

pub async fn story_time_filter_is_strict(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    for seq in 1..=6 {
        let source = uuid::Uuid::now_v7();
        let text = format!("the lighthouse in chapter {seq}");
        let mut r = record(t, n, MemoryKind::Passage, source, 0, Some(seq), &text);
        r.vector = Some(fake_vector("lighthouse"));
        ctx.index
            .replace(t, n, source, &[MemoryKind::Passage], vec![r])
            .await
            .unwrap();
    }
    let bible = uuid::Uuid::now_v7();
    let mut timeless = record(
        t,
        n,
        MemoryKind::Entity,
        bible,
        0,
        None,
        "the lighthouse, a tower of the bible",
    );
    timeless.chapter_id = None;
    timeless.vector = Some(fake_vector("lighthouse tower"));
    ctx.index
        .replace(t, n, bible, &[MemoryKind::Entity], vec![timeless])
        .await
        .unwrap();
    for mode in [RecallMode::Keyword, RecallMode::Dense, RecallMode::Hybrid] {
        let q = IndexQuery {
            before_seq: Some(4),
            mode,
            limit: 50,
            vector: Some(fake_vector("lighthouse")),
            ..ctx.query("lighthouse")
        };
        let hits = ctx.index.search(&q).await.unwrap();
        let seqs: Vec<Option<i32>> = hits.iter().map(|h| h.record.chapter_seq).collect();
        assert_eq!(hits.len(), 4, "{mode}: {seqs:?}");
        assert!(
            seqs.iter().all(|s| s.is_none_or(|s| s < 4)),
            "{mode}: a record from chapter 4 or later: {seqs:?}"
        );
        assert!(
            seqs.contains(&None),
            "{mode}: the timeless bible record is kept"
        );
        let q = IndexQuery {
            before_seq: Some(1),
            mode,
            vector: Some(fake_vector("lighthouse")),
            ..ctx.query("lighthouse")
        };
        let only: Vec<Option<i32>> = ctx
            .index
            .search(&q)
            .await
            .unwrap()
            .iter()
            .map(|h| h.record.chapter_seq)
            .collect();
        assert_eq!(only, vec![None], "{mode}");
    }
}

pub async fn kinds_filter(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    for kind in [
        MemoryKind::Passage,
        MemoryKind::Event,
        MemoryKind::EntityState,
    ] {
        let source = uuid::Uuid::now_v7();
        let mut r = record(
            t,
            n,
            kind,
            source,
            0,
            Some(2),
            &format!("the silver key ({kind})"),
        );
        r.vector = Some(fake_vector("silver key"));
        ctx.index
            .replace(t, n, source, &[kind], vec![r])
            .await
            .unwrap();
    }
    for mode in [RecallMode::Keyword, RecallMode::Dense, RecallMode::Hybrid] {
        let q = IndexQuery {
            kinds: vec![MemoryKind::Event, MemoryKind::EntityState],
            mode,
            vector: Some(fake_vector("silver key")),
            ..ctx.query("silver key")
        };
        let mut kinds: Vec<MemoryKind> = ctx
            .index
            .search(&q)
            .await
            .unwrap()
            .iter()
            .map(|h| h.record.kind)
            .collect();
        kinds.sort_by_key(|k| k.as_str());
        assert_eq!(
            kinds,
            vec![MemoryKind::EntityState, MemoryKind::Event],
            "{mode}"
        );
    }
}

pub async fn dense_ranks_by_similarity_within_the_model(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    let docs = [
        (
            "the sword was forged in dragon fire",
            "sword dragon fire forged",
        ),
        ("a quiet garden with roses", "garden roses quiet"),
        ("the dragon slept on its gold", "dragon gold sleep"),
    ];
    for (i, (text, meaning)) in docs.iter().enumerate() {
        let source = uuid::Uuid::now_v7();
        let mut r = record(
            t,
            n,
            MemoryKind::Passage,
            source,
            0,
            Some(i as i32 + 1),
            text,
        );
        r.vector = Some(fake_vector(meaning));
        ctx.index
            .replace(t, n, source, &[MemoryKind::Passage], vec![r])
            .await
            .unwrap();
    }
    // A record embedded by another model is never compared.
    let other = uuid::Uuid::now_v7();
    let mut r = record(
        t,
        n,
        MemoryKind::Passage,
        other,
        0,
        Some(1),
        "dragon fire sword forged",
    );
    r.vector = Some(fake_vector("sword dragon fire forged"));
    r.model = Some("another-model".into());
    ctx.index
        .replace(t, n, other, &[MemoryKind::Passage], vec![r])
        .await
        .unwrap();
    let q = IndexQuery {
        mode: RecallMode::Dense,
        vector: Some(fake_vector("dragon fire")),
        ..ctx.query("unrelated words here")
    };
    let hits = ctx.index.search(&q).await.unwrap();
    assert_eq!(hits.len(), 3, "{:?}", texts(&hits));
    assert_eq!(hits[0].record.text, docs[0].0);
    assert_eq!(hits[2].record.text, docs[1].0);
    assert!(hits[0].score > hits[1].score && hits[1].score > hits[2].score);
    assert!(
        hits.iter().all(|h| h.record.vector.is_none()),
        "vectors are not returned"
    );
}

pub async fn hybrid_fuses_both_rankings(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    // The keyword side finds the name; the dense side finds the meaning.
    let by_name = ("Tomas Vell counted the coins twice", "coins counting money");
    let by_meaning = (
        "the thief hid in the shadows of the market",
        "thief hiding shadows",
    );
    let neither = ("a song about the sea", "song sea music");
    for (i, (text, meaning)) in [by_name, by_meaning, neither].iter().enumerate() {
        let source = uuid::Uuid::now_v7();
        let mut r = record(
            t,
            n,
            MemoryKind::Passage,
            source,
            0,
            Some(i as i32 + 1),
            text,
        );
        r.vector = Some(fake_vector(meaning));
        ctx.index
            .replace(t, n, source, &[MemoryKind::Passage], vec![r])
            .await
            .unwrap();
    }
    let q = IndexQuery {
        mode: RecallMode::Hybrid,
        vector: Some(fake_vector("thief hiding")),
        limit: 2,
        ..ctx.query("Vell")
    };
    let hits = texts(&ctx.index.search(&q).await.unwrap());
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.contains(&by_name.0.to_owned()), "{hits:?}");
    assert!(hits.contains(&by_meaning.0.to_owned()), "{hits:?}");
}

pub async fn forget_and_forget_chapter(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    let chapter = ChapterId::new();
    let passage_source = chapter.as_uuid();
    let mut p = record(
        t,
        n,
        MemoryKind::Passage,
        passage_source,
        0,
        Some(3),
        "the bell tolled at noon",
    );
    p.chapter_id = Some(chapter);
    let event_source = uuid::Uuid::now_v7();
    let mut e = record(
        t,
        n,
        MemoryKind::Event,
        event_source,
        0,
        Some(3),
        "the bell fell from the tower",
    );
    e.chapter_id = Some(chapter);
    let entity_source = uuid::Uuid::now_v7();
    let mut en = record(
        t,
        n,
        MemoryKind::Entity,
        entity_source,
        0,
        None,
        "the bell, bronze",
    );
    en.chapter_id = None;
    ctx.index
        .replace(t, n, passage_source, &[MemoryKind::Passage], vec![p])
        .await
        .unwrap();
    ctx.index
        .replace(t, n, event_source, &[MemoryKind::Event], vec![e])
        .await
        .unwrap();
    ctx.index
        .replace(t, n, entity_source, &[MemoryKind::Entity], vec![en])
        .await
        .unwrap();
    assert_eq!(ctx.keyword("bell").await.len(), 3);
    ctx.index.forget(t, n, entity_source).await.unwrap();
    assert_eq!(ctx.keyword("bell").await.len(), 2);
    ctx.index.forget_chapter(t, n, chapter).await.unwrap();
    assert!(ctx.keyword("bell").await.is_empty());
}

pub async fn tenants_and_novels_never_mix(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    let (t2, n2) = ctx.other_tenant().await;
    let n3 = ctx.other_novel().await;
    let source = uuid::Uuid::now_v7();
    let mut ours = record(
        t,
        n,
        MemoryKind::Passage,
        source,
        0,
        Some(1),
        "the secret vault of Karth",
    );
    ours.vector = Some(fake_vector("secret vault"));
    ctx.index
        .replace(t, n, source, &[MemoryKind::Passage], vec![ours])
        .await
        .unwrap();
    for mode in [RecallMode::Keyword, RecallMode::Dense, RecallMode::Hybrid] {
        // Another tenant, even naming our novel's id, finds nothing.
        for (tenant, novel) in [(t2, n), (t2, n2), (t, n3)] {
            let q = IndexQuery {
                tenant,
                novel,
                mode,
                vector: Some(fake_vector("secret vault")),
                ..ctx.query("secret vault Karth")
            };
            assert!(ctx.index.search(&q).await.unwrap().is_empty(), "{mode}");
        }
        let q = IndexQuery {
            mode,
            vector: Some(fake_vector("secret vault")),
            ..ctx.query("secret vault Karth")
        };
        assert_eq!(ctx.index.search(&q).await.unwrap().len(), 1, "{mode}");
    }
    // Another tenant cannot forget our records either.
    ctx.index.forget(t2, n, source).await.unwrap();
    assert_eq!(ctx.keyword("vault").await.len(), 1);
}

pub async fn limit_and_empty_queries(ctx: &Ctx) {
    let (t, n) = (ctx.tenant, ctx.novel);
    let source = uuid::Uuid::now_v7();
    let records = (0..30)
        .map(|i| {
            let mut r = record(
                t,
                n,
                MemoryKind::Passage,
                source,
                i,
                Some(1),
                &format!("raven number {i}"),
            );
            r.vector = Some(fake_vector(&format!("raven {i}")));
            r
        })
        .collect();
    ctx.index
        .replace(t, n, source, &[MemoryKind::Passage], records)
        .await
        .unwrap();
    for mode in [RecallMode::Keyword, RecallMode::Dense, RecallMode::Hybrid] {
        let q = IndexQuery {
            mode,
            limit: 7,
            vector: Some(fake_vector("raven")),
            ..ctx.query("raven")
        };
        assert_eq!(ctx.index.search(&q).await.unwrap().len(), 7, "{mode}");
    }
    // Nothing to search by: no hits, no error.
    assert!(ctx.keyword("").await.is_empty());
    assert!(ctx.keyword("the of and").await.is_empty());
}
