//! Resolvers end to end over the in-memory store: IDs, tenancy, pagination, payloads.

use super::{first_error, harness, new_tenant, ok, run};
use crate::graphql::context::RequestCtx;
use crate::graphql::ids::to_id;
use crate::graphql::{SchemaLimits, build_subgraph};
use async_graphql::{Executor, Request, Variables};
use serde_json::{Value, json};
use znovel_domain::auth::{Actor, Role};
use znovel_domain::ids::{ChapterId, EntityStateId};

const CREATE_NOVEL: &str = "mutation($t: String!) { createNovel(input: {title: $t, worldSettings: {magic: \"low\"}}) { novel { id title status wordCount worldSettings } } }";

async fn create_novel(schema: &crate::graphql::AppSchema, actor: &Actor, title: &str) -> String {
    let data = ok(run(schema, Some(actor), CREATE_NOVEL, json!({"t": title})).await);
    data["createNovel"]["novel"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn novels_are_created_and_read_back_by_global_id() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "alpha").await;
    let data = ok(run(&schema, Some(&me), CREATE_NOVEL, json!({"t": "Dune"})).await);
    let novel = &data["createNovel"]["novel"];
    assert_eq!(novel["status"], "DRAFT");
    assert_eq!(novel["wordCount"], 0);
    assert_eq!(novel["worldSettings"], json!({"magic": "low"}));
    let id = novel["id"].as_str().unwrap();

    let q = "query($id: ID!) { novel(id: $id) { title } node(id: $id) { __typename id ... on Novel { title } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"id": id})).await);
    assert_eq!(data["novel"]["title"], "Dune");
    assert_eq!(
        data["node"],
        json!({"__typename": "Novel", "id": id, "title": "Dune"})
    );
}

#[tokio::test]
async fn other_tenants_objects_are_not_found_and_bad_ids_are_bad_input() {
    let (schema, services) = harness();
    let alice = new_tenant(&services, "alice").await;
    let bob = new_tenant(&services, "bob").await;
    let hers = create_novel(&schema, &alice, "Hers").await;
    let his = create_novel(&schema, &bob, "His").await;

    for q in [
        "query($id: ID!) { novel(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ] {
        let resp = run(&schema, Some(&bob), q, json!({"id": hers})).await;
        assert_eq!(first_error(&resp).0, "NOT_FOUND", "{q}");
    }
    let q = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }";
    let data = ok(run(&schema, Some(&bob), q, json!({"ids": [hers, his]})).await);
    assert_eq!(data["nodes"], json!([null, {"id": his}]));

    let chapter = to_id(ChapterId::new()).0;
    let resp = run(
        &schema,
        Some(&bob),
        "query($id: ID!) { novel(id: $id) { id } }",
        json!({"id": chapter}),
    )
    .await;
    assert_eq!(
        first_error(&resp),
        (
            "BAD_USER_INPUT".into(),
            Some("id".into()),
            "invalid id: not a valid Novel ID".into()
        )
    );
    let resp = run(
        &schema,
        Some(&bob),
        "{ node(id: \"garbage\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(first_error(&resp).0, "BAD_USER_INPUT");
    let q = "mutation { createChapter(input: {novelId: \"garbage\", title: \"x\"}) { chapter { id } } }";
    let resp = run(&schema, Some(&bob), q, json!({})).await;
    assert_eq!(first_error(&resp).1.as_deref(), Some("novelId"));
    let state = to_id(EntityStateId::new()).0;
    let resp = run(
        &schema,
        Some(&bob),
        "query($id: ID!) { node(id: $id) { id } }",
        json!({"id": state}),
    )
    .await;
    assert_eq!(first_error(&resp).0, "BAD_USER_INPUT");
}

#[tokio::test]
async fn lists_are_relay_connections_with_keyset_cursors() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "pages").await;
    for t in ["A", "B", "C"] {
        create_novel(&schema, &me, t).await;
    }
    let q = "query($first: Int, $after: String) { novels(first: $first, after: $after) {
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { title } } } }";
    let page1 = ok(run(&schema, Some(&me), q, json!({"first": 2})).await)["novels"].clone();
    assert_eq!(page1["pageInfo"]["hasNextPage"], true);
    assert_eq!(page1["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(page1["edges"][1]["cursor"], page1["pageInfo"]["endCursor"]);
    let after = page1["pageInfo"]["endCursor"].clone();
    let page2 =
        ok(run(&schema, Some(&me), q, json!({"first": 2, "after": after})).await)["novels"].clone();
    let titles: Vec<&Value> = page2["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["title"])
        .collect();
    assert_eq!(titles, [&json!("C")]);
    assert_eq!(page2["pageInfo"]["hasNextPage"], false);
    assert_eq!(page2["pageInfo"]["hasPreviousPage"], true);

    for (vars, field) in [
        (json!({"after": "!!"}), "after"),
        (json!({"first": 0}), "first"),
        (json!({"first": 101}), "first"),
    ] {
        let resp = run(&schema, Some(&me), q, vars).await;
        assert_eq!(first_error(&resp).0, "BAD_USER_INPUT");
        assert_eq!(first_error(&resp).1.as_deref(), Some(field));
    }
}

#[tokio::test]
async fn chapters_keep_revisions_and_roll_back() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "chapters").await;
    let novel = create_novel(&schema, &me, "Book").await;
    let q = "mutation($n: ID!) { createVolume(input: {novelId: $n, title: \"Part I\"}) { volume { id seq } } }";
    let volume =
        ok(run(&schema, Some(&me), q, json!({"n": novel})).await)["createVolume"]["volume"]["id"]
            .clone();
    let q = "mutation($n: ID!, $v: ID) { createChapter(input: {novelId: $n, volumeId: $v, title: \"One\", content: \"first words\"}) {
        chapter { id seq version wordCount volume { title } novel { title } } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"n": novel, "v": volume})).await);
    let chapter = &data["createChapter"]["chapter"];
    assert_eq!(
        (chapter["seq"].clone(), chapter["version"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(chapter["volume"]["title"], "Part I");
    let id = chapter["id"].as_str().unwrap().to_owned();

    let update = "mutation($id: ID!, $v: Int) { updateChapter(input: {id: $id, content: \"second words here\", expectedVersion: $v, volumeId: null}) { chapter { version volumeId } } }";
    let data = ok(run(&schema, Some(&me), update, json!({"id": id, "v": 1})).await);
    assert_eq!(
        data["updateChapter"]["chapter"],
        json!({"version": 2, "volumeId": null})
    );
    let resp = run(&schema, Some(&me), update, json!({"id": id, "v": 1})).await;
    assert_eq!(first_error(&resp).0, "CONFLICT");

    let q = "query($id: ID!) { chapter(id: $id) { revisions { edges { node { id version content source } } } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"id": id})).await);
    let revs = data["chapter"]["revisions"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        revs.iter()
            .map(|e| e["node"]["version"].clone())
            .collect::<Vec<_>>(),
        [json!(2), json!(1)]
    );
    let q = "mutation($c: ID!, $r: ID!) { rollbackChapter(input: {chapterId: $c, revisionId: $r}) { chapter { version content } } }";
    let data = ok(run(
        &schema,
        Some(&me),
        q,
        json!({"c": id, "r": revs[1]["node"]["id"]}),
    )
    .await);
    assert_eq!(
        data["rollbackChapter"]["chapter"],
        json!({"version": 3, "content": "first words"})
    );
    let q = "query($n: ID!) { chapters(novelId: $n) { edges { node { id } } } novel(id: $n) { chapters(status: DRAFT) { edges { node { id } } } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"n": novel})).await);
    assert_eq!(data["chapters"]["edges"][0]["node"]["id"], json!(id));
    assert_eq!(
        data["novel"]["chapters"]["edges"][0]["node"]["id"],
        json!(id)
    );
}

#[tokio::test]
async fn roles_are_enforced_and_the_viewer_is_known() {
    let (schema, services) = harness();
    let admin = new_tenant(&services, "roles").await;
    let q = "{ viewer { role user { email role } tenant { slug status quota { maxNovels } } } }";
    let data = ok(run(&schema, Some(&admin), q, json!({})).await);
    assert_eq!(data["viewer"]["role"], "ADMIN");
    assert_eq!(data["viewer"]["user"]["email"], "admin@roles.example");
    assert_eq!(data["viewer"]["tenant"]["status"], "ACTIVE");
    let reader = Actor::new(admin.tenant_id, admin.user_id, Role::Viewer, None, None);
    let resp = run(&schema, Some(&reader), CREATE_NOVEL, json!({"t": "x"})).await;
    assert_eq!(first_error(&resp).0, "FORBIDDEN");
}

#[tokio::test]
async fn the_story_bible_round_trips() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "bible").await;
    let novel = create_novel(&schema, &me, "Saga").await;
    let q = "mutation($n: ID!, $name: String!) { createEntity(input: {novelId: $n, name: $name, kind: CHARACTER, aliases: [\"the kid\"]}) { entity { id novelId kind aliases } } }";
    let paul = ok(run(&schema, Some(&me), q, json!({"n": novel, "name": "Paul"})).await)["createEntity"]["entity"].clone();
    assert_eq!(paul["novelId"], json!(novel));
    let jessica = ok(run(
        &schema,
        Some(&me),
        q,
        json!({"n": novel, "name": "Jessica"}),
    )
    .await)["createEntity"]["entity"]["id"]
        .clone();
    let q = "mutation($s: ID!, $t: ID!) { createRelation(input: {sourceId: $s, targetId: $t, kind: \"Family\"}) { relation { kind strength } } }";
    let data = ok(run(
        &schema,
        Some(&me),
        q,
        json!({"s": paul["id"], "t": jessica}),
    )
    .await);
    assert_eq!(
        data["createRelation"]["relation"],
        json!({"kind": "family", "strength": 0.5})
    );
    let q = "mutation($e: ID!) { recordEntityState(input: {entityId: $e, state: \"exiled\", attributeChanges: {home: \"desert\"}}) { entityState { state } entity { currentState attributes } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"e": paul["id"]})).await);
    assert_eq!(
        data["recordEntityState"]["entity"],
        json!({"currentState": "exiled", "attributes": {"home": "desert"}})
    );
    let q = "query($e: ID!) { relations(entityId: $e) { edges { node { source { name } target { name } } } }
        entity(id: $e) { states { edges { node { state entity { name } } } } } node(id: $e) { __typename } }";
    let data = ok(run(&schema, Some(&me), q, json!({"e": paul["id"]})).await);
    assert_eq!(
        data["relations"]["edges"][0]["node"],
        json!({"source": {"name": "Paul"}, "target": {"name": "Jessica"}})
    );
    assert_eq!(
        data["entity"]["states"]["edges"][0]["node"]["state"],
        "exiled"
    );
    assert_eq!(data["node"]["__typename"], "Entity");

    let q = "mutation($n: ID!) { createChapter(input: {novelId: $n, title: \"One\"}) { chapter { id } } }";
    let chapter =
        ok(run(&schema, Some(&me), q, json!({"n": novel})).await)["createChapter"]["chapter"]["id"]
            .clone();
    let q = "mutation($n: ID!) { createForeshadowing(input: {novelId: $n, title: \"The knife\"}) { foreshadowing { id status } } }";
    let thread = ok(run(&schema, Some(&me), q, json!({"n": novel})).await)["createForeshadowing"]["foreshadowing"]["id"].clone();
    let q = "mutation($f: ID!, $c: ID!) { resolveForeshadowing(input: {id: $f, resolvedChapterId: $c}) { foreshadowing { status resolvedChapterId } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"f": thread, "c": chapter})).await);
    assert_eq!(
        data["resolveForeshadowing"]["foreshadowing"],
        json!({"status": "RESOLVED", "resolvedChapterId": chapter})
    );
    let q =
        "query($n: ID!) { open: foreshadowing(novelId: $n, open: true) { edges { node { id } } }
        closed: foreshadowing(novelId: $n, open: false) { edges { node { id } } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"n": novel})).await);
    assert_eq!(data["open"]["edges"], json!([]));
    assert_eq!(data["closed"]["edges"][0]["node"]["id"], thread);
    let q = "query($n: ID!) { foreshadowing(novelId: $n, open: true, status: RESOLVED) { edges { cursor } } }";
    let resp = run(&schema, Some(&me), q, json!({"n": novel})).await;
    assert_eq!(first_error(&resp).1.as_deref(), Some("status"));
}

#[tokio::test]
async fn api_keys_show_their_secret_once_and_the_audit_log_links_to_nodes() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "keys").await;
    let q = "mutation { createApiKey(input: {name: \"ci\", scopes: [READ]}) { secret apiKey { id name scopes revokedAt user { email } } } }";
    let data = ok(run(&schema, Some(&me), q, json!({})).await);
    let created = &data["createApiKey"];
    assert!(created["secret"].as_str().unwrap().starts_with("znk_"));
    assert_eq!(created["apiKey"]["scopes"], json!(["READ"]));
    let key = created["apiKey"]["id"].clone();
    let q = "query($id: ID!) { node(id: $id) { ... on ApiKey { name } } }";
    assert_eq!(
        ok(run(&schema, Some(&me), q, json!({"id": key})).await)["node"]["name"],
        "ci"
    );
    let q = "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revokedAt } } }";
    let data = ok(run(&schema, Some(&me), q, json!({"id": key})).await);
    assert!(data["revokeApiKey"]["apiKey"]["revokedAt"].is_string());

    let q = "{ auditLog(first: 1) { edges { node { action resourceType resourceId } } } }";
    let data = ok(run(&schema, Some(&me), q, json!({})).await);
    let entry = &data["auditLog"]["edges"][0]["node"];
    assert_eq!(
        (entry["action"].clone(), entry["resourceType"].clone()),
        (json!("apikey.revoke"), json!("ApiKey"))
    );
    assert_eq!(entry["resourceId"], key);
}

#[tokio::test]
async fn a_subgraph_built_alone_resolves_entity_references() {
    let (_, services) = harness();
    let me = new_tenant(&services, "fed").await;
    let schema = crate::graphql::build_schema(services.clone(), &SchemaLimits::default());
    let novel = create_novel(&schema, &me, "Federated").await;
    let story = build_subgraph("story-gen", services, &SchemaLimits::default()).unwrap();
    let q = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Novel { title } } _service { sdl } }";
    let req = Request::new(q)
        .variables(Variables::from_json(
            json!({"r": [{"__typename": "Novel", "id": novel}]}),
        ))
        .data(RequestCtx {
            actor: Some(me),
            request_id: "r".into(),
        });
    let data = ok(story.execute(req).await);
    assert_eq!(data["_entities"], json!([{"title": "Federated"}]));
    assert!(
        data["_service"]["sdl"]
            .as_str()
            .unwrap()
            .contains("@key(fields: \"id\")")
    );
}

#[tokio::test]
async fn the_admin_subgraph_answers_node_with_references() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "fednode").await;
    let novel = create_novel(&schema, &me, "Referenced").await;
    let admin = build_subgraph("admin", services, &SchemaLimits::default()).unwrap();
    let exec = |q: &str, vars: Value| {
        let req = Request::new(q)
            .variables(Variables::from_json(vars))
            .data(RequestCtx {
                actor: Some(me.clone()),
                request_id: "r".into(),
            });
        admin.execute(req)
    };
    let q = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } viewer { role } }";
    let missing = to_id(ChapterId::new()).0;
    let data = ok(exec(q, json!({"ids": [novel, missing]})).await);
    assert_eq!(
        data["nodes"],
        json!([{"__typename": "Novel", "id": novel}, null])
    );
    let resp = exec(
        "query($id: ID!) { node(id: $id) { id } }",
        json!({"id": missing}),
    )
    .await;
    assert_eq!(
        resp.errors[0].extensions.as_ref().unwrap().get("code"),
        Some(&"NOT_FOUND".into())
    );
}

#[tokio::test]
async fn the_validator_subgraph_serves_chapter_validation_as_an_entity_field() {
    let (schema, services) = harness();
    let me = new_tenant(&services, "fedval").await;
    let novel = create_novel(&schema, &me, "Checked").await;
    let q = "mutation($n: ID!) { createChapter(input: {novelId: $n, seq: 1, title: \"One\", content: \"Rain fell on the roofs.\"}) { chapter { id } } }";
    let chapter =
        ok(run(&schema, Some(&me), q, json!({"n": novel})).await)["createChapter"]["chapter"]["id"]
            .clone();
    let exec = |subgraph: &crate::graphql::SubgraphSchema, q: &str, vars: Value| {
        let req = Request::new(q)
            .variables(Variables::from_json(vars))
            .data(RequestCtx {
                actor: Some(me.clone()),
                request_id: "r".into(),
            });
        let subgraph = subgraph.clone();
        async move { subgraph.execute(req).await }
    };
    let validator =
        build_subgraph("validator", services.clone(), &SchemaLimits::default()).unwrap();

    // validateChapter returns the chapter as the `Chapter` entity (a router completes it
    // from story-gen) with the report.
    let q = "mutation($c: ID!) { validateChapter(input: {chapterId: $c}) { chapter { __typename id } report { complete issues { kind } } } }";
    let v = ok(exec(&validator, q, json!({"c": chapter})).await)["validateChapter"].clone();
    assert_eq!(
        v["chapter"],
        json!({"__typename": "Chapter", "id": chapter})
    );
    assert_eq!(v["report"]["complete"], true, "{v}");

    // What a router asks the validator for a chapter story-gen found: its validation.
    let q = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Chapter { id validation { complete issues { kind } } } } }";
    let e = ok(exec(
        &validator,
        q,
        json!({"r": [{"__typename": "Chapter", "id": chapter}]}),
    )
    .await);
    assert_eq!(e["_entities"][0]["id"], chapter);
    assert_eq!(e["_entities"][0]["validation"], v["report"]);
    let bad = exec(
        &validator,
        q,
        json!({"r": [{"__typename": "Chapter", "id": "nope"}]}),
    )
    .await;
    assert_eq!(
        bad.errors[0].extensions.as_ref().unwrap().get("code"),
        Some(&"BAD_USER_INPUT".into())
    );

    // Story-gen serves none of it any more.
    let story = build_subgraph("story-gen", services, &SchemaLimits::default()).unwrap();
    let resp = exec(
        &story,
        "query($c: ID!) { chapter(id: $c) { title validation { complete } } }",
        json!({"c": chapter}),
    )
    .await;
    assert!(
        resp.errors[0].message.contains("validation"),
        "{:?}",
        resp.errors
    );
}

#[tokio::test]
async fn the_file_subgraph_serves_generation_job_file_as_an_entity_field() {
    let (_schema, services) = harness();
    let me = new_tenant(&services, "fedfile").await;
    let exec = |subgraph: &crate::graphql::SubgraphSchema, q: &str, vars: Value| {
        let req = Request::new(q)
            .variables(Variables::from_json(vars))
            .data(RequestCtx {
                actor: Some(me.clone()),
                request_id: "r".into(),
            });
        let subgraph = subgraph.clone();
        async move { subgraph.execute(req).await }
    };
    let file = build_subgraph("file", services.clone(), &SchemaLimits::default()).unwrap();

    // What a router asks the file subgraph for a job story-gen found: its file (none for a
    // job that has none), and a malformed id is bad input.
    let q = "query($r: [_Any!]!) { _entities(representations: $r) { ... on GenerationJob { id file { name } } } }";
    let job = to_id(znovel_domain::ids::JobId::new());
    let e = ok(exec(
        &file,
        q,
        json!({"r": [{"__typename": "GenerationJob", "id": job}]}),
    )
    .await);
    assert_eq!(e["_entities"][0], json!({"id": job, "file": null}));
    let bad = exec(
        &file,
        q,
        json!({"r": [{"__typename": "GenerationJob", "id": "nope"}]}),
    )
    .await;
    assert_eq!(
        bad.errors[0].extensions.as_ref().unwrap().get("code"),
        Some(&"BAD_USER_INPUT".into())
    );

    // Story-gen serves none of it any more.
    let story = build_subgraph("story-gen", services, &SchemaLimits::default()).unwrap();
    for q in [
        "query($j: ID!) { generationJob(id: $j) { id file { name } } }",
        "query($j: ID!) { files(novelId: $j) { edges { node { id } } } }",
        "mutation($j: ID!) { deleteFile(input: {fileId: $j}) { file { id } } }",
    ] {
        let resp = exec(&story, q, json!({"j": job})).await;
        assert!(!resp.errors.is_empty(), "{q}: story-gen still serves it");
    }
}
