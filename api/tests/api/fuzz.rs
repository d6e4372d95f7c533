//! A bounded, seeded fuzz of the public endpoint on SQLite: GraphQL documents generated
//! from the introspected schema (random fields, arguments of the right and the wrong
//! type, aliases, fragments, variables), the same documents corrupted byte by byte,
//! malformed request bodies, and WebSocket frames (random JSON, wrong types, huge ids,
//! unknown message types, binary frames, everything out of order). The server must never
//! panic, never answer 5xx, never close a socket with 1011, still answer `/health`, and
//! give back the memory the run took. `ZNOVEL_FUZZ_SEED` replays another seed.

use crate::helpers::{Backend, TestApp};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Documents sent over HTTP (generated, corrupted, garbage and malformed bodies).
const HTTP_CASES: usize = 2_400;
/// WebSocket sessions, each a handful of random frames.
const WS_SESSIONS: usize = 120;
/// Mutations left out: they start model work or could lock the fuzzer out.
const SKIPPED_FIELDS: &[&str] = &["generateChapter", "revokeApiKey", "updateQuota"];

const INTROSPECTION: &str = r#"{ __schema { types { kind name
  fields(includeDeprecated: true) { name args { name type { ...T } } type { ...T } }
  inputFields { name type { ...T } }
  enumValues(includeDeprecated: true) { name }
  possibleTypes { name } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"#;

/// A type reference: `NON_NULL`/`LIST` wrappers around a named type.
#[derive(Clone, Debug)]
enum TypeRef {
    NonNull(Box<TypeRef>),
    List(Box<TypeRef>),
    Named(String),
}

impl TypeRef {
    fn from_json(v: &Value) -> Self {
        match v["kind"].as_str() {
            Some("NON_NULL") => Self::NonNull(Box::new(Self::from_json(&v["ofType"]))),
            Some("LIST") => Self::List(Box::new(Self::from_json(&v["ofType"]))),
            _ => Self::Named(v["name"].as_str().unwrap_or("String").to_owned()),
        }
    }

    fn named(&self) -> &str {
        match self {
            Self::NonNull(t) | Self::List(t) => t.named(),
            Self::Named(n) => n,
        }
    }

    fn sdl(&self) -> String {
        match self {
            Self::NonNull(t) => format!("{}!", t.sdl()),
            Self::List(t) => format!("[{}]", t.sdl()),
            Self::Named(n) => n.clone(),
        }
    }
}

struct Field {
    name: String,
    args: Vec<(String, TypeRef)>,
    ty: TypeRef,
}

struct Type {
    kind: String,
    fields: Vec<Field>,
    inputs: Vec<(String, TypeRef)>,
    enums: Vec<String>,
    possible: Vec<String>,
}

struct Schema(HashMap<String, Type>);

impl Schema {
    fn from_introspection(data: &Value) -> Self {
        let mut types = HashMap::new();
        for t in data["__schema"]["types"].as_array().unwrap() {
            let fields = t["fields"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .map(|f| Field {
                            name: f["name"].as_str().unwrap().to_owned(),
                            args: f["args"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|a| {
                                    (
                                        a["name"].as_str().unwrap().to_owned(),
                                        TypeRef::from_json(&a["type"]),
                                    )
                                })
                                .collect(),
                            ty: TypeRef::from_json(&f["type"]),
                        })
                        .filter(|f| !SKIPPED_FIELDS.contains(&f.name.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            let inputs = t["inputFields"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .map(|f| {
                            (
                                f["name"].as_str().unwrap().to_owned(),
                                TypeRef::from_json(&f["type"]),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let names = |key: &str| -> Vec<String> {
                t[key]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .map(|v| v["name"].as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            types.insert(
                t["name"].as_str().unwrap().to_owned(),
                Type {
                    kind: t["kind"].as_str().unwrap().to_owned(),
                    fields,
                    inputs,
                    enums: names("enumValues"),
                    possible: names("possibleTypes"),
                },
            );
        }
        Self(types)
    }
}

/// Builds random documents over a schema.
struct Gen<'a> {
    schema: &'a Schema,
    rng: StdRng,
    /// Variable definitions of the document being built, and their values.
    vars: Vec<(String, String)>,
    values: serde_json::Map<String, Value>,
    fragments: Vec<String>,
}

impl Gen<'_> {
    fn document(&mut self) -> (String, Value) {
        self.vars.clear();
        self.values.clear();
        self.fragments.clear();
        let (keyword, root) = if self.rng.random_bool(0.3) {
            ("mutation", "Mutation")
        } else {
            ("query", "Query")
        };
        let body = self.selection(root, 0);
        let defs = if self.vars.is_empty() {
            String::new()
        } else {
            let d: Vec<String> = self
                .vars
                .iter()
                .map(|(n, t)| format!("${n}: {t}"))
                .collect();
            format!("({})", d.join(", "))
        };
        let mut doc = format!("{keyword} Fuzz{defs} {body}");
        for f in &self.fragments {
            doc.push('\n');
            doc.push_str(f);
        }
        (doc, Value::Object(self.values.clone()))
    }

    fn selection(&mut self, ty: &str, depth: usize) -> String {
        let schema = self.schema;
        let Some(t) = schema.0.get(ty) else {
            return "{ __typename }".into();
        };
        if t.kind == "UNION" || (t.kind == "INTERFACE" && self.rng.random_bool(0.5)) {
            let mut parts = vec!["__typename".to_owned()];
            if let Some(p) = t.possible.choose(&mut self.rng).cloned()
                && depth < 4
            {
                parts.push(format!("... on {p} {}", self.selection(&p, depth + 1)));
            }
            return format!("{{ {} }}", parts.join(" "));
        }
        if t.fields.is_empty() || depth >= 4 {
            return "{ __typename }".into();
        }
        let n = self.rng.random_range(1..=3);
        let mut parts = Vec::new();
        for i in 0..n {
            let f = t.fields.choose(&mut self.rng).unwrap();
            let mut s = String::new();
            if i > 0 || self.rng.random_bool(0.2) {
                s.push_str(&format!("a{i}: "));
            }
            s.push_str(&f.name);
            let mut args = Vec::new();
            for (name, ty) in &f.args {
                if matches!(ty, TypeRef::NonNull(_)) || self.rng.random_bool(0.3) {
                    args.push(format!("{name}: {}", self.argument(ty)));
                }
            }
            if !args.is_empty() {
                s.push_str(&format!("({})", args.join(", ")));
            }
            let named = f.ty.named().to_owned();
            if matches!(
                schema.0.get(&named).map(|t| t.kind.as_str()),
                Some("OBJECT" | "INTERFACE" | "UNION")
            ) {
                let sub = self.selection(&named, depth + 1);
                if self.rng.random_bool(0.15) {
                    let name = format!("F{}", self.fragments.len());
                    self.fragments
                        .push(format!("fragment {name} on {named} {sub}"));
                    s.push_str(&format!(" {{ ...{name} }}"));
                } else {
                    s.push(' ');
                    s.push_str(&sub);
                }
            }
            parts.push(s);
        }
        format!("{{ {} }}", parts.join(" "))
    }

    /// An argument: a literal, or (sometimes) a variable with a random JSON value.
    fn argument(&mut self, ty: &TypeRef) -> String {
        if self.rng.random_bool(0.3) {
            let var = format!("v{}", self.vars.len());
            self.vars.push((var.clone(), ty.sdl()));
            let value = self.json_value(ty, 0);
            self.values.insert(var.clone(), value);
            return format!("${var}");
        }
        self.literal(ty, 0)
    }

    fn literal(&mut self, ty: &TypeRef, depth: usize) -> String {
        if self.rng.random_bool(0.05) {
            // The wrong type on purpose.
            return ["1", "\"x\"", "true", "null", "[1, 2]", "{a: 1}", "ENUMISH"]
                .choose(&mut self.rng)
                .unwrap()
                .to_string();
        }
        match ty {
            TypeRef::NonNull(t) => self.literal(t, depth),
            TypeRef::List(t) => {
                let n = self.rng.random_range(0..3);
                let items: Vec<String> = (0..n).map(|_| self.literal(t, depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            TypeRef::Named(n) => match n.as_str() {
                "Int" => self.int().to_string(),
                "Float" => format!("{:.3}", self.rng.random_range(-1e6..1e6)),
                "Boolean" => self.rng.random_bool(0.5).to_string(),
                "String" | "ID" | "DateTime" | "UUID" => {
                    serde_json::to_string(&self.string()).unwrap()
                }
                other => match self.schema.0.get(other) {
                    Some(t) if t.kind == "ENUM" => t
                        .enums
                        .choose(&mut self.rng)
                        .cloned()
                        .unwrap_or_else(|| "NOPE".into()),
                    Some(t) if t.kind == "INPUT_OBJECT" && depth < 3 => {
                        let fields: Vec<String> = t
                            .inputs
                            .iter()
                            .filter(|(_, ty)| {
                                matches!(ty, TypeRef::NonNull(_)) || self.rng.random_bool(0.4)
                            })
                            .map(|(n, ty)| (n.clone(), ty.clone()))
                            .collect::<Vec<_>>()
                            .into_iter()
                            .map(|(n, ty)| format!("{n}: {}", self.literal(&ty, depth + 1)))
                            .collect();
                        format!("{{{}}}", fields.join(", "))
                    }
                    _ => serde_json::to_string(&self.string()).unwrap(),
                },
            },
        }
    }

    fn json_value(&mut self, ty: &TypeRef, depth: usize) -> Value {
        if self.rng.random_bool(0.05) {
            return [
                json!(1),
                json!("x"),
                json!(null),
                json!([]),
                json!({"a": [1]}),
            ]
            .choose(&mut self.rng)
            .unwrap()
            .clone();
        }
        match ty {
            TypeRef::NonNull(t) => self.json_value(t, depth),
            TypeRef::List(t) => {
                let n = self.rng.random_range(0..3);
                Value::Array((0..n).map(|_| self.json_value(t, depth + 1)).collect())
            }
            TypeRef::Named(n) => match n.as_str() {
                "Int" => json!(self.int()),
                "Float" => json!(self.rng.random_range(-1e6..1e6)),
                "Boolean" => json!(self.rng.random_bool(0.5)),
                other => match self.schema.0.get(other) {
                    Some(t) if t.kind == "ENUM" => {
                        json!(t.enums.choose(&mut self.rng).cloned().unwrap_or_default())
                    }
                    Some(t) if t.kind == "INPUT_OBJECT" && depth < 3 => {
                        let mut m = serde_json::Map::new();
                        for (n, ty) in t.inputs.clone() {
                            if matches!(ty, TypeRef::NonNull(_)) || self.rng.random_bool(0.4) {
                                m.insert(n, self.json_value(&ty, depth + 1));
                            }
                        }
                        Value::Object(m)
                    }
                    _ => json!(self.string()),
                },
            },
        }
    }

    fn int(&mut self) -> i64 {
        *[
            0,
            1,
            -1,
            5,
            100,
            i64::from(i32::MAX),
            i64::from(i32::MAX) + 1,
            i64::MIN,
            i64::MAX,
        ]
        .choose(&mut self.rng)
        .unwrap()
    }

    fn string(&mut self) -> String {
        match self.rng.random_range(0..8) {
            0 => String::new(),
            1 => "x".repeat(self.rng.random_range(1..5_000)),
            2 => "\u{0}\u{1}\u{7f}".into(),
            3 => "龍の物語 🐉 \u{202e}".into(),
            4 => "TmV2ZXI6OTk5".into(),
            5 => uuid::Uuid::new_v4().to_string(),
            6 => "'; DROP TABLE novels; --".into(),
            _ => (0..self.rng.random_range(1..20))
                .map(|_| char::from(self.rng.random_range(0x20u8..0x7f)))
                .collect(),
        }
    }

    /// `doc` with a few random edits: deletions, insertions of GraphQL punctuation,
    /// duplicated slices, truncation.
    fn corrupt(&mut self, doc: &str) -> String {
        let mut bytes = doc.as_bytes().to_vec();
        for _ in 0..self.rng.random_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            let at = self.rng.random_range(0..bytes.len());
            match self.rng.random_range(0..4) {
                0 => {
                    let end = (at + self.rng.random_range(1..8)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let junk = *[
                        "{", "}", "(", ")", "[", "]", "$", ":", "@", "!", "...", "\"", "\\", "#",
                        "\u{0}", "fragment", "on", "{{{{{{{{", "\"\"\"",
                    ]
                    .choose(&mut self.rng)
                    .unwrap();
                    bytes.splice(at..at, junk.bytes());
                }
                2 => {
                    let end = (at + self.rng.random_range(1..40)).min(bytes.len());
                    let slice = bytes[at..end].to_vec();
                    bytes.splice(at..at, slice);
                }
                _ => bytes.truncate(at),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Resident memory of this process (the server runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn seed() -> u64 {
    std::env::var("ZNOVEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026)
}

/// Sends one HTTP case; returns its status.
async fn send(app: &TestApp, body: String) -> u16 {
    app.client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&app.admin_key)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// A malformed request body around `doc`.
fn malformed(rng: &mut StdRng, doc: &str) -> String {
    match rng.random_range(0..8) {
        0 => json!({ "query": 42 }).to_string(),
        1 => json!({ "query": doc, "variables": "not an object" }).to_string(),
        2 => json!({ "query": doc, "operationName": "Nope" }).to_string(),
        3 => json!({ "query": doc, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "00" } } }).to_string(),
        4 => json!([{ "query": doc }, { "query": doc }]).to_string(),
        5 => format!("{{\"query\": {}", serde_json::to_string(doc).unwrap()),
        6 => json!({ "query": doc, "variables": { "v0": { "deep": [[[[[[[[1]]]]]]]] } } }).to_string(),
        _ => (0..rng.random_range(1..200))
            .map(|_| char::from(rng.random_range(0u8..0x80)))
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_documents_and_frames_never_crash_the_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let app = TestApp::spawn(Backend::Sqlite).await;
    let started = Instant::now();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (status, intro) = app
        .post(Some(&app.admin_key), INTROSPECTION, json!({}))
        .await;
    assert_eq!(status, 200, "{intro}");
    let schema = Schema::from_introspection(&intro["data"]);
    let mut generator = Gen {
        schema: &schema,
        rng: StdRng::seed_from_u64(seed ^ 0xD0C),
        vars: Vec::new(),
        values: serde_json::Map::new(),
        fragments: Vec::new(),
    };

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut failures = Vec::new();
    let mut baseline = 0;
    for case in 0..HTTP_CASES {
        if case == HTTP_CASES / 5 {
            // Caches, pools and allocator arenas are warm now.
            baseline = rss_kib();
        }
        let (doc, variables) = generator.document();
        let body = match rng.random_range(0..10) {
            0..=4 => json!({ "query": doc, "variables": variables }).to_string(),
            5..=7 => {
                json!({ "query": generator.corrupt(&doc), "variables": variables }).to_string()
            }
            8 => malformed(&mut rng, &doc),
            _ => json!({ "query": String::from_utf8_lossy(
                &(0..rng.random_range(1..300)).map(|_| rng.random::<u8>()).collect::<Vec<_>>()
            ) })
            .to_string(),
        };
        let status = send(&app, body.clone()).await;
        *statuses.entry(status).or_default() += 1;
        if status >= 500 || status == 0 {
            failures.push(format!("{status}: {}", &body[..body.len().min(400)]));
        }
    }

    let ws_closes = fuzz_websocket(&app, &mut rng).await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // The server still does real work after all that.
    let d = app.ok("{ viewer { role } }", json!({})).await;
    assert_eq!(d["viewer"]["role"], "ADMIN");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    eprintln!(
        "fuzz seed {seed}: {HTTP_CASES} HTTP cases {statuses:?}, {WS_SESSIONS} WebSocket sessions \
         (close codes {ws_closes:?}), {:.1} s; RSS {baseline} KiB after warm-up, {after} KiB at the end",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the server panicked");
    assert!(
        !ws_closes.contains_key(&1011),
        "a WebSocket closed with an internal error: {ws_closes:?}"
    );
    assert!(
        after <= baseline + 64 * 1024,
        "memory grew from {baseline} KiB to {after} KiB"
    );
}

/// Random WebSocket sessions; returns how often each close code was seen.
async fn fuzz_websocket(app: &TestApp, rng: &mut StdRng) -> HashMap<u16, usize> {
    let mut closes = HashMap::new();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.admin_key) } });
    for _ in 0..WS_SESSIONS {
        let mut req = format!("ws://{}/graphql", app.addr)
            .into_client_request()
            .unwrap();
        let protocol = *["graphql-transport-ws", "graphql-ws", "bogus"]
            .choose(rng)
            .unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
            *closes.entry(0).or_default() += 1;
            continue;
        };
        if rng.random_bool(0.8) {
            let _ = ws.send(Message::text(init.to_string())).await;
        }
        for _ in 0..rng.random_range(1..6) {
            let frame = random_frame(rng);
            if ws.send(frame).await.is_err() {
                break;
            }
        }
        // Read until the server closes or goes quiet.
        let code = loop {
            match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => break f.map_or(1005, |f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => break 1006,
                Err(_) => {
                    let _ = ws.close(None).await;
                    break 1000;
                }
            }
        };
        *closes.entry(code).or_default() += 1;
    }
    closes
}

fn random_frame(rng: &mut StdRng) -> Message {
    let id = match rng.random_range(0..4) {
        0 => json!("1"),
        1 => json!("x".repeat(rng.random_range(1..10_000))),
        2 => json!(rng.random::<u64>()),
        _ => json!(null),
    };
    let ty = *[
        "subscribe",
        "complete",
        "ping",
        "pong",
        "connection_init",
        "start",
        "stop",
        "connection_terminate",
        "next",
        "error",
        "whatever",
    ]
    .choose(rng)
    .unwrap();
    let payload = match rng.random_range(0..6) {
        0 => json!({ "query": "{ viewer { role } }" }),
        1 => {
            json!({ "query": "subscription { jobEvents(novelId: \"TmV2ZXI6MQ==\") { __typename } }" })
        }
        2 => json!({ "query": 7 }),
        3 => json!("payload"),
        4 => json!({ "query": "{ viewer { role }", "variables": [1] }),
        _ => json!(null),
    };
    match rng.random_range(0..10) {
        0 => Message::binary(
            (0..rng.random_range(0..512))
                .map(|_| rng.random::<u8>())
                .collect::<Vec<_>>(),
        ),
        1 => Message::text("{ not json"),
        2 => Message::text(json!([1, 2, 3]).to_string()),
        3 => Message::text(json!({ "type": 5, "id": {} }).to_string()),
        _ => Message::text(json!({ "type": ty, "id": id, "payload": payload }).to_string()),
    }
}
