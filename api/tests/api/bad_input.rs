//! Bad input gets a clear error with a stable code, and writes nothing.

use crate::both;
use serde_json::json;

const CREATE_NOVEL: &str =
    "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }";
const CREATE_CHAPTER: &str =
    "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }";

both!(
    invalid_fields_are_bad_user_input_and_write_nothing,
    |app: crate::helpers::TestApp| async move {
        let before = app.novel_count().await;
        for title in ["", "   ", &"x".repeat(201)] {
            let (code, body) = app
                .err_as(
                    Some(&app.admin_key),
                    CREATE_NOVEL,
                    json!({ "i": { "title": title } }),
                )
                .await;
            assert_eq!(code, "BAD_USER_INPUT", "{body:#}");
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "title",
                "{body:#}"
            );
        }
        let (code, _) = app
            .err_as(
                Some(&app.admin_key),
                CREATE_NOVEL,
                json!({ "i": { "title": "ok", "language": "!!" } }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
        let (code, _) = app
            .err_as(
                Some(&app.admin_key),
                CREATE_NOVEL,
                json!({ "i": { "title": "ok", "worldSettings": [1, 2] } }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
        assert_eq!(app.novel_count().await, before);
    }
);

both!(
    malformed_and_mistyped_ids,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Ids").await;
        let chapter = app.chapter(&novel, 1, "One").await;
        for id in ["", "not-an-id", "Tm92ZWw6bm9wZQ", "%%%"] {
            let (code, body) = app
                .err_as(
                    Some(&app.admin_key),
                    "query($id: ID!) { novel(id: $id) { id } }",
                    json!({ "id": id }),
                )
                .await;
            assert_eq!(code, "BAD_USER_INPUT", "{id}: {body:#}");
        }
        // A chapter ID where a novel ID belongs.
        let (code, _) = app
            .err_as(
                Some(&app.admin_key),
                "query($id: ID!) { novel(id: $id) { id } }",
                json!({ "id": chapter }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
        let (code, _) = app
            .err_as(
                Some(&app.admin_key),
                "query($n: ID!) { chapters(novelId: $n, after: \"garbage\") { edges { cursor } } }",
                json!({ "n": novel }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "malformed cursor");
        let (code, _) = app
            .err_as(
                Some(&app.admin_key),
                "query($n: ID!) { chapters(novelId: $n, first: 1000) { edges { cursor } } }",
                json!({ "n": novel }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "page size over the cap");
    }
);

both!(
    duplicate_chapter_seq_is_a_conflict,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Dupes").await;
        app.chapter(&novel, 1, "First").await;
        let (code, body) = app
            .err_as(
                Some(&app.admin_key),
                CREATE_CHAPTER,
                json!({ "i": { "novelId": novel, "seq": 1, "title": "Again" } }),
            )
            .await;
        assert_eq!(code, "CONFLICT", "{body:#}");
        let d = app
            .ok(
                "query($n: ID!) { chapters(novelId: $n) { edges { node { title } } } }",
                json!({ "n": novel }),
            )
            .await;
        assert_eq!(
            d["chapters"]["edges"],
            json!([{ "node": { "title": "First" } }]),
            "nothing half-written"
        );
    }
);

both!(
    unknown_enum_values_and_malformed_documents,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Enums").await;
        let (code, body) = app
            .err_as(
                Some(&app.admin_key),
                "mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }",
                json!({ "i": { "novelId": novel, "name": "X", "kind": "DRAGON" } }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{body:#}");
        let (status, body) = app
            .post(Some(&app.admin_key), "{ novels { edges ", json!({}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let (_, body) = app
            .post(Some(&app.admin_key), "{ noSuchField }", json!({}))
            .await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        // Not a GraphQL request at all.
        let resp = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
);

both!(
    depth_complexity_and_size_limits,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Limits").await;
        let deep = format!(
            "query($n: ID!) {{ novel(id: $n) {{ {} id {} }} }}",
            "chapters(first: 1) { edges { node { novel { ".repeat(4),
            "} } } }".repeat(4)
        );
        let (code, body) = app
            .err_as(Some(&app.admin_key), &deep, json!({ "n": novel }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{body:#}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("deep"),
            "{body:#}"
        );

        let wide = "{ novels(first: 100) { edges { node { chapters(first: 100) { edges { node { revisions(first: 100) { edges { node { content } } } } } } } } } }";
        let (code, body) = app.err_as(Some(&app.admin_key), wide, json!({})).await;
        assert_eq!(code, "BAD_USER_INPUT", "{body:#}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("complex"),
            "{body:#}"
        );

        // A 2 MiB body: refused with 413 from its Content-Length, before it is uploaded,
        // and the connection is announced closed (its body is never read), so no client
        // sends its next request on it.
        let head = app.announce_body(2 * 1024 * 1024).await;
        assert!(head.starts_with("http/1.1 413"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    }
);
