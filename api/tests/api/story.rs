//! The story model through the API: novels, volumes, chapters with revisions, the story
//! bible, and Relay pagination.

use crate::both;
use serde_json::json;

both!(
    novel_chapter_and_character_round_trip,
    |app: crate::helpers::TestApp| async move {
        let d = app
        .ok(
            r#"mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id title genre language status wordCount worldSettings } } }"#,
            json!({ "i": { "title": "The Jade Gate", "genre": "xianxia", "language": "zh", "worldSettings": { "magic": "qi" } } }),
        )
        .await;
        let novel = &d["createNovel"]["novel"];
        assert_eq!(novel["title"], "The Jade Gate");
        assert_eq!(novel["status"], "DRAFT");
        assert_eq!(novel["worldSettings"]["magic"], "qi");
        let novel_id = novel["id"].as_str().unwrap();

        let d = app
        .ok(
            r#"mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id seq title outline content wordCount version } } }"#,
            json!({ "i": { "novelId": novel_id, "seq": 1, "title": "Snow on the Gate", "outline": "Lin arrives.", "content": "林青走进了山门。" } }),
        )
        .await;
        let ch = &d["createChapter"]["chapter"];
        assert_eq!(
            ch["wordCount"], 7,
            "CJK text counts characters (7 hanzi, the full stop is not a word)"
        );
        assert_eq!(ch["version"], 1);
        let chapter_id = ch["id"].as_str().unwrap();

        let d = app
        .ok(
            r#"mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id name aliases kind importance attributes } } }"#,
            json!({ "i": { "novelId": novel_id, "name": "Lin Qing", "kind": "CHARACTER", "aliases": ["Little Lin", "林青"], "attributes": { "age": 16 } } }),
        )
        .await;
        let e = &d["createEntity"]["entity"];
        assert_eq!(e["kind"], "CHARACTER");
        assert_eq!(e["aliases"], json!(["Little Lin", "林青"]));
        let entity_id = e["id"].as_str().unwrap();

        // Read everything back.
        let d = app
        .ok(
            r#"query($n: ID!, $c: ID!, $e: ID!) {
                novel(id: $n) { title wordCount chapters(first: 10) { edges { node { id title } } } }
                chapter(id: $c) { title content }
                entity(id: $e) { name }
                entities(novelId: $n, search: "little") { edges { node { id } } }
            }"#,
            json!({ "n": novel_id, "c": chapter_id, "e": entity_id }),
        )
        .await;
        assert_eq!(d["novel"]["title"], "The Jade Gate");
        assert_eq!(
            d["novel"]["wordCount"], 7,
            "novel word count follows its chapters"
        );
        assert_eq!(d["novel"]["chapters"]["edges"][0]["node"]["id"], chapter_id);
        assert_eq!(d["chapter"]["content"], "林青走进了山门。");
        assert_eq!(d["entity"]["name"], "Lin Qing");
        assert_eq!(
            d["entities"]["edges"][0]["node"]["id"], entity_id,
            "search matches aliases"
        );
    }
);

both!(
    chapter_revisions_and_rollback,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Revisions").await;
        let chapter = app.chapter(&novel, 1, "One").await;
        let upd = r#"mutation($i: UpdateChapterInput!) { updateChapter(input: $i) { chapter { content version wordCount } } }"#;
        let d = app
            .ok(
                upd,
                json!({ "i": { "id": chapter, "content": "First draft here." } }),
            )
            .await;
        assert_eq!(d["updateChapter"]["chapter"]["version"], 1);
        let d = app
        .ok(upd, json!({ "i": { "id": chapter, "content": "Second, better draft of it.", "expectedVersion": 1 } }))
        .await;
        assert_eq!(d["updateChapter"]["chapter"]["version"], 2);
        assert_eq!(d["updateChapter"]["chapter"]["wordCount"], 5);

        // A stale expectedVersion is a conflict and changes nothing.
        let code = app
            .err(
                upd,
                json!({ "i": { "id": chapter, "content": "lost update", "expectedVersion": 1 } }),
            )
            .await;
        assert_eq!(code, "CONFLICT");

        let d = app
        .ok(
            r#"query($c: ID!) { chapter(id: $c) { content version revisions(first: 10) { edges { node { id version content source } } } } }"#,
            json!({ "c": chapter }),
        )
        .await;
        assert_eq!(d["chapter"]["content"], "Second, better draft of it.");
        let revs = d["chapter"]["revisions"]["edges"].as_array().unwrap();
        assert_eq!(revs.len(), 2);
        assert_eq!(revs[0]["node"]["version"], 2, "newest first");
        let first = revs[1]["node"]["id"].as_str().unwrap();

        let d = app
        .ok(
            r#"mutation($i: RollbackChapterInput!) { rollbackChapter(input: $i) { chapter { content version } } }"#,
            json!({ "i": { "chapterId": chapter, "revisionId": first } }),
        )
        .await;
        assert_eq!(
            d["rollbackChapter"]["chapter"]["content"],
            "First draft here."
        );
        assert_eq!(
            d["rollbackChapter"]["chapter"]["version"], 3,
            "a rollback is a new revision"
        );
    }
);

both!(
    relay_pagination_has_no_gaps_or_duplicates,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Long").await;
        for seq in [5, 1, 4, 2, 3] {
            app.chapter(&novel, seq, &format!("Chapter {seq}")).await;
        }
        let q = r#"query($n: ID!, $after: String) { chapters(novelId: $n, first: 2, after: $after) { edges { cursor node { seq } } pageInfo { hasNextPage endCursor } } }"#;
        let mut after = serde_json::Value::Null;
        let mut seen = Vec::new();
        loop {
            let d = app.ok(q, json!({ "n": novel, "after": after })).await;
            let conn = &d["chapters"];
            for e in conn["edges"].as_array().unwrap() {
                seen.push(e["node"]["seq"].as_i64().unwrap());
            }
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    }
);

both!(
    story_bible_relations_timeline_and_foreshadowing,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Bible").await;
        let ch1 = app.chapter(&novel, 1, "One").await;
        let ch2 = app.chapter(&novel, 2, "Two").await;
        let ent =
            r#"mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }"#;
        let a = app
            .ok(
                ent,
                json!({ "i": { "novelId": novel, "name": "Ada", "kind": "CHARACTER" } }),
            )
            .await;
        let a = a["createEntity"]["entity"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = app
            .ok(
                ent,
                json!({ "i": { "novelId": novel, "name": "Bram", "kind": "CHARACTER" } }),
            )
            .await;
        let b = b["createEntity"]["entity"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let tower = app
            .ok(
                ent,
                json!({ "i": { "novelId": novel, "name": "The Tower", "kind": "LOCATION" } }),
            )
            .await;
        let tower = tower["createEntity"]["entity"]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let d = app
        .ok(
            r#"mutation($i: RecordEntityStateInput!) { recordEntityState(input: $i) { entityState { state chapterId } entity { currentState attributes } } }"#,
            json!({ "i": { "entityId": b, "chapterId": ch2, "state": "dead", "attributeChanges": { "alive": false } } }),
        )
        .await;
        assert_eq!(d["recordEntityState"]["entity"]["currentState"], "dead");
        assert_eq!(
            d["recordEntityState"]["entity"]["attributes"]["alive"],
            false
        );

        app.ok(
        r#"mutation($i: CreateRelationInput!) { createRelation(input: $i) { relation { id kind strength } } }"#,
        json!({ "i": { "sourceId": a, "targetId": b, "kind": "Enemy", "strength": 0.9 } }),
    )
    .await;
        let d = app
        .ok(
            r#"query($e: ID!) { relations(entityId: $e) { edges { node { kind strength source { name } target { name } } } } }"#,
            json!({ "e": b }),
        )
        .await;
        let rel = &d["relations"]["edges"][0]["node"];
        assert_eq!(rel["kind"], "enemy");
        assert_eq!(rel["source"]["name"], "Ada");

        let ev = r#"mutation($i: CreateEventInput!) { createEvent(input: $i) { event { id } } }"#;
        for (t, title) in [(30, "Duel"), (10, "Arrival"), (20, "Betrayal")] {
            app.ok(ev, json!({ "i": { "novelId": novel, "title": title, "storyTimeStart": t, "locationId": tower, "involvedIds": [a, b], "chapterId": ch1 } }))
            .await;
        }
        let d = app
        .ok(
            r#"query($n: ID!) { timeline(novelId: $n, from: 15, to: 40) { edges { node { title storyTimeStart location { name } } } } }"#,
            json!({ "n": novel }),
        )
        .await;
        let titles: Vec<_> = d["timeline"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["title"].clone())
            .collect();
        assert_eq!(
            titles,
            vec![json!("Betrayal"), json!("Duel")],
            "ordered by story time, filtered"
        );

        let d = app
        .ok(
            r#"mutation($i: CreateForeshadowingInput!) { createForeshadowing(input: $i) { foreshadowing { id status } } }"#,
            json!({ "i": { "novelId": novel, "title": "The cracked seal", "plantedChapterId": ch1, "expectedPayoff": "the seal breaks" } }),
        )
        .await;
        let f = d["createForeshadowing"]["foreshadowing"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let open = r#"query($n: ID!, $o: Boolean) { foreshadowing(novelId: $n, open: $o) { edges { node { id status } } } }"#;
        let d = app.ok(open, json!({ "n": novel, "o": true })).await;
        assert_eq!(d["foreshadowing"]["edges"].as_array().unwrap().len(), 1);
        app.ok(
        r#"mutation($i: ResolveForeshadowingInput!) { resolveForeshadowing(input: $i) { foreshadowing { status } } }"#,
        json!({ "i": { "id": f, "resolvedChapterId": ch2 } }),
    )
    .await;
        let d = app.ok(open, json!({ "n": novel, "o": true })).await;
        assert_eq!(
            d["foreshadowing"]["edges"].as_array().unwrap().len(),
            0,
            "resolved threads are not open"
        );
    }
);
