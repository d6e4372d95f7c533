//! Tenant isolation and roles: another tenant sees nothing of ours (NOT_FOUND, exactly as
//! if it did not exist), and a VIEWER can read but not change anything.

use crate::both;
use serde_json::json;

both!(
    another_tenant_gets_not_found_for_everything,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Secret novel").await;
        let chapter = app.chapter(&novel, 1, "Secret chapter").await;
        let d = app
            .ok(
                r#"mutation($i: CreateEntityInput!) { createEntity(input: $i) { entity { id } } }"#,
                json!({ "i": { "novelId": novel, "name": "Hidden", "kind": "ITEM" } }),
            )
            .await;
        let entity = d["createEntity"]["entity"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let other = app.new_tenant("other-house").await;

        for (query, vars) in [
            (
                "query($id: ID!) { novel(id: $id) { title } }",
                json!({ "id": novel }),
            ),
            (
                "query($id: ID!) { chapter(id: $id) { title } }",
                json!({ "id": chapter }),
            ),
            (
                "query($id: ID!) { entity(id: $id) { name } }",
                json!({ "id": entity }),
            ),
            (
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": novel }),
            ),
            (
                "query($id: ID!) { chapters(novelId: $id) { edges { node { id } } } }",
                json!({ "id": novel }),
            ),
            (
                "query($id: ID!) { entities(novelId: $id) { edges { node { id } } } }",
                json!({ "id": novel }),
            ),
            (
                "mutation($id: ID!) { updateNovel(input: { id: $id, title: \"Mine now\" }) { novel { id } } }",
                json!({ "id": novel }),
            ),
            (
                "mutation($id: ID!) { archiveNovel(input: { id: $id }) { novel { id } } }",
                json!({ "id": novel }),
            ),
            (
                "mutation($id: ID!) { createChapter(input: { novelId: $id, seq: 2, title: \"Intruder\" }) { chapter { id } } }",
                json!({ "id": novel }),
            ),
            (
                "mutation($id: ID!) { updateChapter(input: { id: $id, content: \"overwritten\" }) { chapter { id } } }",
                json!({ "id": chapter }),
            ),
            (
                "mutation($id: ID!) { deleteChapter(input: { id: $id }) { chapter { id } } }",
                json!({ "id": chapter }),
            ),
            (
                "mutation($id: ID!) { deleteEntity(input: { id: $id }) { entity { id } } }",
                json!({ "id": entity }),
            ),
        ] {
            let (code, body) = app.err_as(Some(&other), query, vars).await;
            assert_eq!(code, "NOT_FOUND", "{query}: {body:#}");
        }
        let d = app
            .ok_as(&other, "{ novels { edges { node { id } } } }", json!({}))
            .await;
        assert_eq!(
            d["novels"]["edges"],
            json!([]),
            "the other tenant lists nothing of ours"
        );

        // Ours is untouched.
        let d = app
        .ok(
            "query($n: ID!, $c: ID!) { novel(id: $n) { title } chapter(id: $c) { content title } }",
            json!({ "n": novel, "c": chapter }),
        )
        .await;
        assert_eq!(d["novel"]["title"], "Secret novel");
        assert_eq!(d["chapter"]["content"], "");
        assert_eq!(d["chapter"]["title"], "Secret chapter");
    }
);

both!(
    viewer_reads_but_cannot_mutate,
    |app: crate::helpers::TestApp| async move {
        let novel = app.novel("Shared").await;
        let viewer = app.user_key("reader@example.org", "VIEWER").await;
        let d = app
            .ok_as(
                &viewer,
                "query($n: ID!) { novel(id: $n) { title } viewer { role } }",
                json!({ "n": novel }),
            )
            .await;
        assert_eq!(d["novel"]["title"], "Shared");
        assert_eq!(d["viewer"]["role"], "VIEWER");
        let before = app.novel_count().await;
        for (query, vars) in [
            (
                "mutation { createNovel(input: { title: \"Nope\" }) { novel { id } } }",
                json!({}),
            ),
            (
                "mutation($n: ID!) { updateNovel(input: { id: $n, title: \"Nope\" }) { novel { id } } }",
                json!({ "n": novel }),
            ),
            (
                "mutation($n: ID!) { createChapter(input: { novelId: $n, seq: 1, title: \"Nope\" }) { chapter { id } } }",
                json!({ "n": novel }),
            ),
            (
                "mutation($n: ID!) { createEntity(input: { novelId: $n, name: \"Nope\", kind: ITEM }) { entity { id } } }",
                json!({ "n": novel }),
            ),
            (
                "mutation { createUser(input: { email: \"x@example.org\", role: ADMIN }) { user { id } } }",
                json!({}),
            ),
        ] {
            let (code, body) = app.err_as(Some(&viewer), query, vars).await;
            assert_eq!(code, "FORBIDDEN", "{query}: {body:#}");
        }
        assert_eq!(app.novel_count().await, before, "nothing was written");
        let d = app
            .ok(
                "query($n: ID!) { novel(id: $n) { title chapters { edges { node { id } } } } }",
                json!({ "n": novel }),
            )
            .await;
        assert_eq!(d["novel"]["title"], "Shared");
        assert_eq!(d["novel"]["chapters"]["edges"], json!([]));
    }
);

both!(
    member_writes_but_cannot_administer,
    |app: crate::helpers::TestApp| async move {
        let member = app.user_key("writer@example.org", "MEMBER").await;
        let d = app
            .ok_as(
                &member,
                "mutation { createNovel(input: { title: \"Mine\" }) { novel { title } } }",
                json!({}),
            )
            .await;
        assert_eq!(d["createNovel"]["novel"]["title"], "Mine");
        let (code, _) = app
        .err_as(Some(&member), "mutation { createUser(input: { email: \"y@example.org\", role: ADMIN }) { user { id } } }", json!({}))
        .await;
        assert_eq!(code, "FORBIDDEN");
        let (code, _) = app
            .err_as(
                Some(&member),
                "{ users { edges { node { email } } } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
    }
);
