//! The SDL contract, the federation subgraphs, and the abuse limits.

use super::{first_error, harness, run};
use crate::graphql::{Mutation, Query, sdl, subgraph_sdl};
use async_graphql::Schema;
use serde_json::json;

fn bare_schema() -> Schema<Query, Mutation, crate::graphql::Subscription> {
    Schema::build(Query::default(), Mutation::default(), Default::default()).finish()
}

#[tokio::test]
async fn every_type_field_argument_and_enum_value_is_documented() {
    let q = "{ __schema { types { name description
        fields { name description args { name description } }
        inputFields { name description } enumValues { name description } } } }";
    let data = bare_schema().execute(q).await.data.into_json().unwrap();
    let mut missing = Vec::new();
    let documented = |v: &serde_json::Value| {
        v["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty())
    };
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            continue;
        }
        if !documented(ty) {
            missing.push(name.to_owned());
        }
        for f in ty["fields"].as_array().into_iter().flatten() {
            let fname = format!("{name}.{}", f["name"].as_str().unwrap());
            if !documented(f) {
                missing.push(fname.clone());
            }
            for a in f["args"].as_array().into_iter().flatten() {
                if !documented(a) {
                    missing.push(format!("{fname}({})", a["name"].as_str().unwrap()));
                }
            }
        }
        for key in ["inputFields", "enumValues"] {
            for f in ty[key].as_array().into_iter().flatten() {
                if !documented(f) {
                    missing.push(format!("{name}.{}", f["name"].as_str().unwrap()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

#[test]
fn every_type_in_the_sdl_is_preceded_by_a_description() {
    let sdl = sdl();
    let lines: Vec<&str> = sdl.lines().collect();
    let kinds = [
        "type ",
        "interface ",
        "enum ",
        "input ",
        "scalar ",
        "union ",
    ];
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate() {
        if kinds.iter().any(|k| line.starts_with(k)) {
            seen += 1;
            assert!(
                i > 0 && lines[i - 1].ends_with("\"\"\""),
                "undocumented: {line}"
            );
        }
    }
    assert!(seen > 50, "{seen} types");
}

/// The SDL without descriptions, on one line, with single spaces.
fn flat_sdl(sdl: &str) -> String {
    let mut out = String::new();
    let mut in_desc = false;
    for line in sdl.lines().map(str::trim) {
        if line.starts_with("\"\"\"") {
            in_desc = !(in_desc || line.len() > 3 && line.ends_with("\"\"\""));
            continue;
        }
        if !in_desc {
            out.push_str(line);
            out.push(' ');
        }
    }
    out.replace("( ", "(").replace(" )", ")").replace(", ", " ")
}

#[test]
fn the_sdl_follows_the_naming_contract() {
    let flat = flat_sdl(&sdl());
    assert!(
        flat.contains("createNovel(input: CreateNovelInput!): CreateNovelPayload!"),
        "{flat}"
    );
    let mutations = [
        "createNovel",
        "updateNovel",
        "archiveNovel",
        "createVolume",
        "updateVolume",
        "deleteVolume",
        "createChapter",
        "updateChapter",
        "deleteChapter",
        "rollbackChapter",
        "createEntity",
        "updateEntity",
        "deleteEntity",
        "recordEntityState",
        "createRelation",
        "updateRelation",
        "deleteRelation",
        "createEvent",
        "updateEvent",
        "deleteEvent",
        "createForeshadowing",
        "updateForeshadowing",
        "deleteForeshadowing",
        "resolveForeshadowing",
        "createUser",
        "updateUser",
        "createApiKey",
        "revokeApiKey",
        "updateQuota",
    ];
    for m in mutations {
        let ty = format!("{}{}", m[..1].to_uppercase(), &m[1..]);
        let sig = format!("{m}(input: {ty}Input!): {ty}Payload!");
        assert!(flat.contains(&sig), "missing {sig}");
    }
    for q in [
        "viewer: Viewer!",
        "node(id: ID!): Node!",
        "nodes(ids: [ID!]!): [Node]!",
        "novel(id: ID!): Novel!",
        "novels(status: NovelStatus first: Int after: String): NovelConnection!",
        "chapters(novelId: ID! volumeId: ID status: ChapterStatus first: Int after: String): ChapterConnection!",
        "entities(novelId: ID! kind: EntityKind search: String first: Int after: String): EntityConnection!",
        "timeline(novelId: ID! from: Int to: Int first: Int after: String): EventConnection!",
        "relations(entityId: ID! first: Int after: String): RelationConnection!",
        "foreshadowing(novelId: ID! open: Boolean status: ForeshadowingStatus first: Int after: String): ForeshadowingConnection!",
        "users(first: Int after: String): UserConnection!",
        "apiKeys(first: Int after: String): ApiKeyConnection!",
        "auditLog(first: Int after: String): AuditEntryConnection!",
        "tenant: Tenant!",
        "type CreateApiKeyPayload { apiKey: ApiKey! secret: String! }",
        "type RecordEntityStatePayload { entityState: EntityState! entity: Entity! }",
        "type PageInfo { hasPreviousPage: Boolean! hasNextPage: Boolean! startCursor: String endCursor: String }",
        "enum NovelStatus { DRAFT WRITING COMPLETED ARCHIVED }",
        "worldSettings: JSON!",
        "type Novel implements Node {",
    ] {
        assert!(flat.contains(q), "missing {q}");
    }
    assert!(!flat.contains("secretHash") && !flat.contains("secret_hash"));
    for federation in ["@key", "_entities", "_service", "_Any", "_Entity", "@link"] {
        assert!(!flat.contains(federation), "{federation} in the public SDL");
    }
}

#[test]
fn subgraphs_are_federation_v2_with_entity_keys() {
    let story = subgraph_sdl("story-gen").unwrap();
    assert!(
        story.contains("type Novel implements Node @key(fields: \"id\")"),
        "{story}"
    );
    assert!(story.contains("type Chapter implements Node @key(fields: \"id\")"));
    assert!(story.contains("https://specs.apollo.dev/federation/v2"));
    assert!(story.contains("type PageInfo @shareable"));
    assert!(
        !story.contains("type Entity "),
        "memory types leak into story"
    );
    let memory = subgraph_sdl("memory").unwrap();
    assert!(memory.contains("type Entity implements Node @key(fields: \"id\")"));
    assert!(
        !memory.contains("type Novel "),
        "story types leak into memory"
    );
    let admin = subgraph_sdl("admin").unwrap();
    assert!(admin.contains("type Query {") && admin.contains("type Mutation {"));
    assert!(admin.contains("type Novel implements Node @key(fields: \"id\", resolvable: false)"));
    assert!(
        !admin.contains("type User implements Node @key"),
        "admin types resolve whole"
    );
    assert_eq!(subgraph_sdl("nope"), None);
}

/// The body of `type <name> …` in an SDL (its lines up to the closing brace).
fn type_body<'a>(sdl: &'a str, name: &str) -> &'a str {
    let start = sdl
        .find(&format!("type {name} "))
        .unwrap_or_else(|| panic!("no type {name} in:\n{sdl}"));
    let end = sdl[start..].find("\n}").map_or(sdl.len(), |e| start + e);
    &sdl[start..end]
}

#[test]
fn continuity_checking_is_the_validator_subgraphs() {
    let validator = subgraph_sdl("validator").unwrap();
    let chapter = type_body(&validator, "Chapter");
    assert!(
        chapter.starts_with("type Chapter @key(fields: \"id\")"),
        "{chapter}"
    );
    assert!(
        chapter.contains("validation: ValidationReport"),
        "{chapter}"
    );
    assert!(validator.contains("checkDraft(") && validator.contains("validateChapter("));
    for shared in [
        "ValidationReport",
        "ValidationIssue",
        "IssueSpan",
        "RecallHit",
    ] {
        assert!(
            type_body(&validator, shared).contains("@shareable"),
            "{shared} is shareable in the validator"
        );
    }
    assert!(
        !validator.contains("type Novel "),
        "story types leak into the validator"
    );

    // Story-gen no longer serves them, but still returns the shared issue type
    // (`ChapterIssue.issue`).
    let story = subgraph_sdl("story-gen").unwrap();
    assert!(!type_body(&story, "Chapter").contains("validation"));
    assert!(!story.contains("checkDraft") && !story.contains("validateChapter"));
    assert!(!story.contains("type ValidationReport "));
    assert!(type_body(&story, "ValidationIssue").contains("@shareable"));
    // The gateway keeps every field.
    let gateway = sdl();
    assert!(type_body(&gateway, "Chapter").contains("validation: ValidationReport"));
}

#[test]
fn files_import_and_export_are_the_file_subgraphs() {
    let file = subgraph_sdl("file").unwrap();
    let job = type_body(&file, "GenerationJob");
    assert!(
        job.starts_with("type GenerationJob @key(fields: \"id\")"),
        "{job}"
    );
    assert!(job.contains("file: StoredFile"), "{job}");
    for op in [
        "files(",
        "previewImport(",
        "importManuscript(",
        "exportNovel(",
        "deleteFile(",
    ] {
        assert!(file.contains(op), "{op} in the file subgraph");
    }
    // The novel an import goes to is story-gen's: a reference here.
    assert!(
        type_body(&file, "Novel").contains("@key(fields: \"id\", resolvable: false)"),
        "{file}"
    );
    assert!(
        !file.contains("type Chapter "),
        "story types leak into the file subgraph"
    );

    // Story-gen no longer serves them.
    let story = subgraph_sdl("story-gen").unwrap();
    assert!(!type_body(&story, "GenerationJob").contains("file:"));
    for gone in [
        "exportNovel",
        "importManuscript",
        "previewImport",
        "deleteFile",
        "StoredFile",
        "scalar Upload",
    ] {
        assert!(!story.contains(gone), "{gone} in story-gen");
    }
    // The gateway keeps every field.
    let gateway = sdl();
    assert!(type_body(&gateway, "GenerationJob").contains("file: StoredFile"));
}

/// Name → (description, field descriptions) of every type of a schema, by introspection.
async fn descriptions<Q, M, S>(
    schema: &Schema<Q, M, S>,
) -> std::collections::BTreeMap<String, serde_json::Value>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    let q = "{ __schema { types { name description fields { name description } } } }";
    let data = schema.execute(q).await.data.into_json().unwrap();
    data["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
        .collect()
}

#[tokio::test]
async fn types_shared_by_subgraphs_are_described_like_the_gateways() {
    // Composition keeps one description per type: every subgraph's copy of a type (root
    // types, `Node`, the admin subgraph's references) must match the gateway's.
    let gateway = descriptions(&bare_schema()).await;
    let subgraphs = [
        descriptions(&crate::graphql::subgraph::story_builder().finish()).await,
        descriptions(&crate::graphql::subgraph::memory_builder().finish()).await,
        descriptions(&crate::graphql::subgraph::admin_builder().finish()).await,
        descriptions(&crate::graphql::subgraph::retrieval_builder().finish()).await,
        descriptions(&crate::graphql::subgraph::validator_builder().finish()).await,
        descriptions(&crate::graphql::subgraph::file_builder().finish()).await,
    ];
    for types in &subgraphs {
        for (name, ty) in types {
            if name.starts_with('_') {
                continue;
            }
            let Some(gw) = gateway.get(name) else {
                panic!("{name} is not in the gateway schema");
            };
            assert_eq!(ty["description"], gw["description"], "{name}");
            for f in ty["fields"].as_array().into_iter().flatten() {
                if f["name"].as_str().is_some_and(|n| n.starts_with('_')) {
                    continue;
                }
                let same = gw["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["name"] == f["name"]);
                assert_eq!(
                    Some(&f["description"]),
                    same.map(|g| &g["description"]),
                    "{name}.{}",
                    f["name"]
                );
            }
        }
    }
}

#[tokio::test]
async fn anonymous_requests_are_unauthenticated() {
    let (schema, _) = harness();
    let resp = run(
        &schema,
        None,
        "{ novels { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(first_error(&resp).0, "UNAUTHENTICATED");
}

#[tokio::test]
async fn parse_and_validation_errors_get_bad_user_input() {
    let (schema, _) = harness();
    for q in [
        "{ novels(status: NOPE) { edges { node { id } } } }",
        "{ novels { nope } }",
        "{ novels(",
    ] {
        let resp = run(&schema, None, q, json!({})).await;
        assert_eq!(first_error(&resp).0, "BAD_USER_INPUT", "{q}");
    }
}

#[tokio::test]
async fn complexity_grows_with_page_size_and_nested_large_lists_are_refused() {
    let (schema, _) = harness();
    let nested = |n: i32| {
        format!(
            "{{ novels(first: {n}) {{ edges {{ node {{ chapters(first: {n}) {{ edges {{ node {{
             revisions(first: {n}) {{ edges {{ node {{ id }} }} }} }} }} }} }} }} }} }}"
        )
    };
    let resp = run(&schema, None, &nested(100), json!({})).await;
    let (code, _, message) = first_error(&resp);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "Query is too complex.")
    );
    // Small pages pass validation (and then fail only for lack of credentials).
    let resp = run(&schema, None, &nested(5), json!({})).await;
    assert_eq!(first_error(&resp).0, "UNAUTHENTICATED");
    let two = "{ novels { edges { node { id title chapters { edges { node { id title } } } } } } }";
    let resp = run(&schema, None, two, json!({})).await;
    assert_eq!(first_error(&resp).0, "UNAUTHENTICATED");
}

#[tokio::test]
async fn too_deep_queries_are_refused() {
    let (schema, _) = harness();
    let mut q = String::from("{ chapter(id: \"x\") { id ");
    for _ in 0..4 {
        q.push_str("novel { chapters(first: 1) { edges { node { ");
    }
    q.push_str("id");
    q.push_str(&" }".repeat(q.matches('{').count()));
    let resp = run(&schema, None, &q, json!({})).await;
    let (code, _, message) = first_error(&resp);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("BAD_USER_INPUT", "Query is nested too deep.")
    );
}

/// graphql-js `getIntrospectionQuery()` (what GraphiQL and codegen tools send).
const INTROSPECTION: &str = r#"
query IntrospectionQuery { __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { ...FullType }
  directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef }
    isDeprecated deprecationReason }
  inputFields { ...InputValue } interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
"#;

#[tokio::test]
async fn the_standard_introspection_query_fits_the_limits() {
    let (schema, _) = harness();
    let resp = run(&schema, None, INTROSPECTION, json!({})).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
}

#[tokio::test]
async fn a_remembered_document_is_validated_again_with_other_variables() {
    let (schema, _) = harness();
    let q =
        "query($n: Int) { novels(first: $n) { edges { node { chapters(first: $n) { edges { node {
             revisions(first: $n) { edges { node { id } } } } } } } } } }";
    // Small pages pass validation (and fail only for lack of credentials), each time.
    for _ in 0..2 {
        let resp = run(&schema, None, q, json!({"n": 5})).await;
        assert_eq!(first_error(&resp).0, "UNAUTHENTICATED");
    }
    // The same document with large pages: the complexity reads the variable.
    let resp = run(&schema, None, q, json!({"n": 100})).await;
    assert_eq!(
        (first_error(&resp).0.as_str(), first_error(&resp).2.as_str()),
        ("BAD_USER_INPUT", "Query is too complex.")
    );
    // A variable of the wrong type.
    let resp = run(&schema, None, q, json!({"n": "five"})).await;
    assert_eq!(first_error(&resp).0, "BAD_USER_INPUT");
    let resp = run(&schema, None, q, json!({"n": 5})).await;
    assert_eq!(first_error(&resp).0, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_refused_document_is_refused_every_time() {
    let (schema, _) = harness();
    let bomb = {
        // Expands to 4,096 selections: over the cap.
        let mut q = String::from("query { ...F12 }\nfragment F0 on Query { __typename }\n");
        for i in 1..13 {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{0} ...F{0} }}\n",
                i - 1
            ));
        }
        q
    };
    for q in ["{ novels(", "{ novels { nope } }", bomb.as_str()] {
        let first = run(&schema, None, q, json!({})).await;
        let again = run(&schema, None, q, json!({})).await;
        assert_eq!(first_error(&first).0, "BAD_USER_INPUT", "{q}");
        assert_eq!(first_error(&again), first_error(&first), "{q}");
    }
}

#[tokio::test]
async fn one_remembered_document_answers_each_request_with_its_own_variables() {
    let (schema, services) = harness();
    let me = super::new_tenant(&services, "parsed").await;
    let create = "mutation($t: String!) { createNovel(input: {title: $t}) { novel { id } } }";
    let mut ids = Vec::new();
    for title in ["Dune", "Emma", "Ulysses"] {
        let data = super::ok(run(&schema, Some(&me), create, json!({"t": title})).await);
        ids.push(
            data["createNovel"]["novel"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let read = "query Read($id: ID!) { novel(id: $id) { title } }";
    for _ in 0..2 {
        for (id, title) in ids.iter().zip(["Dune", "Emma", "Ulysses"]) {
            let data = super::ok(run(&schema, Some(&me), read, json!({"id": id})).await);
            assert_eq!(data["novel"]["title"], title);
        }
    }
}
