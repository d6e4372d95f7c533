//! The contract: `schema.graphql` at the repository root is exactly what
//! `znovel print-schema` prints, and every subgraph is a federation v2 subgraph.
//! Regenerate after a deliberate change with:
//! `cargo run --bin znovel -- print-schema > schema.graphql`, then
//! `scripts/federation.sh compose` (federation/supergraph.graphql).

#[test]
fn schema_graphql_has_not_drifted_from_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let committed =
        std::fs::read_to_string(path).expect("schema.graphql exists at the repository root");
    let generated = znovel::graphql::sdl();
    if committed != generated {
        let first_diff = committed
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}: committed `{a}` vs code `{b}`", i + 1))
            .unwrap_or_else(|| "one is a prefix of the other".into());
        panic!(
            "schema.graphql differs from the code ({first_diff}).\nRegenerate it: cargo run --bin znovel -- print-schema > schema.graphql\n(and the supergraph: scripts/federation.sh compose)"
        );
    }
}

#[test]
fn every_type_and_field_is_documented() {
    let sdl = znovel::graphql::sdl();
    let lines: Vec<&str> = sdl.lines().collect();
    let mut undocumented = Vec::new();
    let mut in_schema_block = false;
    let mut in_description = false;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        // Inside a multi-line `"""` description, nothing is a declaration.
        if t.trim_end() == "\"\"\"" {
            in_description = !in_description;
            continue;
        }
        if in_description {
            continue;
        }
        if t.starts_with("schema {") {
            in_schema_block = true;
        }
        if in_schema_block {
            in_schema_block = t != "}";
            continue;
        }
        let is_decl = ["type ", "input ", "enum ", "interface ", "union "]
            .iter()
            .any(|k| t.starts_with(k))
            || (line.starts_with('\t') || line.starts_with("  "))
                && t.contains(':')
                && !t.starts_with('"');
        if !is_decl || t.starts_with("schema") || t.starts_with(')') {
            continue;
        }
        let prev = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .unwrap_or("");
        if !prev.ends_with("\"\"\"") && !prev.ends_with('"') {
            undocumented.push(t.to_owned());
        }
    }
    assert!(
        undocumented.is_empty(),
        "undocumented in the SDL: {undocumented:#?}"
    );
}

#[test]
fn subgraphs_are_federation_subgraphs_with_keys() {
    for name in znovel::graphql::SUBGRAPHS {
        let sdl = znovel::graphql::subgraph_sdl(name).unwrap();
        assert!(sdl.contains("@link"), "{name} links the federation v2 spec");
    }
    let keyed = |sdl: &str, ty: &str| {
        sdl.lines()
            .any(|l| l.starts_with(&format!("type {ty} ")) && l.contains("@key(fields: \"id\")"))
    };
    let story = znovel::graphql::subgraph_sdl("story-gen").unwrap();
    assert!(
        keyed(&story, "Novel") && keyed(&story, "Chapter"),
        "{story}"
    );
    let memory = znovel::graphql::subgraph_sdl("memory").unwrap();
    assert!(keyed(&memory, "Entity"), "{memory}");
    assert!(znovel::graphql::subgraph_sdl("nope").is_none());
}

/// `federation/supergraph.graphql` (composed by `scripts/federation.sh compose`) names
/// every subgraph, at the URL of its Kubernetes Service. Its content is checked against
/// the subgraphs and `schema.graphql` by `scripts/federation.sh check` (composition needs
/// Node.js).
#[test]
fn the_committed_supergraph_names_every_subgraph() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../federation/supergraph.graphql"
    );
    let supergraph = std::fs::read_to_string(path).expect("federation/supergraph.graphql exists");
    for name in znovel::graphql::SUBGRAPHS {
        let graph = format!("@join__graph(name: \"{name}\", url: \"http://{name}:8080/graphql\")");
        assert!(
            supergraph.contains(&graph),
            "{name} is missing from federation/supergraph.graphql: run scripts/federation.sh compose"
        );
    }
    assert!(supergraph.contains("subscription: Subscription"));
}
