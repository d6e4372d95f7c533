//! Manuscripts in: `previewImport` splits an uploaded manuscript (GraphQL multipart
//! request) and writes nothing; `importManuscript` stores it, creates or appends to a
//! novel and queues an IMPORT job that creates the chapters (revision source IMPORT) with
//! progress. Round trips export → import for EPUB, Markdown and TXT (English and
//! Chinese); a GB18030 Chinese TXT of 100 chapters, split right and its facts recalled
//! afterwards; bad files refused before anything is
//! written; a worker stopped mid-import resumes without duplicating a chapter.

use crate::helpers::{Backend, TestApp};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use znovel_domain::ids::{FileId, NovelId};
use znovel_domain::model::*;
use znovel_domain::ports::{
    FileRepository, JobEvents, JobMessage, JobRepository, TenantRepository,
};
use znovel_domain::services::queued_job;
use znovel_domain::services::runner::{JobRunner, RunOutcome, RunnerConfig, StopReason};
use znovel_infra::llm::testing::FakeOpenAi;
use znovel_infra::llm::{OpenAiCompatible, OpenAiConfig};
use znovel_infra::queue::events::MemoryJobEvents;
use znovel_infra::queue::memory::MemoryTokenStreams;
use znovel_infra::{SqlOptions, SqlStore};

const PREVIEW: &str = "query($i: ImportManuscriptInput!) { previewImport(input: $i) { format encoding title newNovel volumes chapterCount wordCount warnings chapters { seq title volume wordCount excerpt } } }";
const IMPORT: &str = "mutation($i: ImportManuscriptInput!) { importManuscript(input: $i) { novel { id title } job { id kind status progress { done total } file { name size } } } }";
const JOB: &str = "query($j: ID!) { generationJob(id: $j) { status error progress { done total } file { name contentType size } } }";
const CHAPTERS: &str = "query($n: ID!, $after: String) { novel(id: $n) { title description language chapters(first: 100, after: $after) { pageInfo { hasNextPage endCursor } edges { node { seq title content volume { title } } } } } }";
const REVISIONS: &str = "query($n: ID!) { novel(id: $n) { chapters(first: 10) { edges { node { version revisions(first: 5) { edges { node { source note } } } } } } } }";
const EXPORT: &str = "mutation($i: ExportNovelInput!) { exportNovel(input: $i) { job { id } } }";
const EXPORT_JOB: &str =
    "query($j: ID!) { generationJob(id: $j) { status error file { downloadUrl } } }";

async fn app(backend: Backend, max_file_bytes: Option<i64>) -> (TestApp, FakeOpenAi) {
    let fake = FakeOpenAi::start(Some("sk-test")).await.unwrap();
    let base = fake.base_url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.llm.base_url = Some(base);
        s.llm.api_key = Some("sk-test".to_string().into());
        s.llm.model = Some("primary".into());
        if let Some(max) = max_file_bytes {
            s.max_file_bytes = max;
        }
    })
    .await;
    (app, fake)
}

/// Sends `query` with `input` (whose `file` is the upload) as a GraphQL multipart
/// request; returns (HTTP status, body).
async fn upload(
    app: &TestApp,
    key: &str,
    query: &str,
    input: Value,
    name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let (content_type, body) =
        crate::multipart::request(query, input, name, "application/octet-stream", bytes);
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// An upload expected to succeed: its `data`.
async fn upload_ok(app: &TestApp, query: &str, input: Value, name: &str, bytes: &[u8]) -> Value {
    let (status, body) = upload(app, &app.admin_key, query, input, name, bytes).await;
    assert!(
        status == 200 && body.get("errors").is_none(),
        "{status}: {body:#}"
    );
    body["data"].clone()
}

/// An upload expected to fail: the first error's code and message.
async fn upload_err(
    app: &TestApp,
    key: &str,
    query: &str,
    input: Value,
    name: &str,
    bytes: &[u8],
) -> (String, String) {
    let (_, body) = upload(app, key, query, input, name, bytes).await;
    let e = &body["errors"][0];
    (
        e["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {body:#}"))
            .to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Waits for a job to end; returns it.
async fn wait(app: &TestApp, query: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let d = app.ok(query, json!({ "j": id })).await;
        let job = d["generationJob"].clone();
        if matches!(
            job["status"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        ) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job did not end: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Imports and waits: (novel id, the finished job).
async fn import(app: &TestApp, input: Value, name: &str, bytes: &[u8]) -> (String, Value) {
    let d = upload_ok(app, IMPORT, input, name, bytes).await;
    let p = &d["importManuscript"];
    assert_eq!(p["job"]["kind"], "IMPORT");
    assert_eq!(p["job"]["file"]["name"], name);
    assert_eq!(p["job"]["file"]["size"], bytes.len());
    let novel = p["novel"]["id"].as_str().unwrap().to_owned();
    let job = wait(app, JOB, p["job"]["id"].as_str().unwrap()).await;
    (novel, job)
}

/// A novel's chapters: (seq, title, content, volume title).
async fn chapters(app: &TestApp, novel: &str) -> Vec<(i64, String, String, Option<String>)> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let d = app
            .ok(CHAPTERS, json!({ "n": novel, "after": after }))
            .await;
        let c = &d["novel"]["chapters"];
        for e in c["edges"].as_array().unwrap() {
            let n = &e["node"];
            out.push((
                n["seq"].as_i64().unwrap(),
                n["title"].as_str().unwrap().to_owned(),
                n["content"].as_str().unwrap().to_owned(),
                n["volume"]["title"].as_str().map(str::to_owned),
            ));
        }
        if c["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = c["pageInfo"]["endCursor"].clone();
    }
}

/// Paragraphs: non-blank lines, trimmed.
fn paragraphs(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

const BOOK: [(&str, &str); 3] = [
    (
        "Chapter 1: Departure",
        "Ned left at dawn.\n\nThe road was long & <narrow>.",
    ),
    ("第二章 山中", "山中无甲子。\n寒尽不知年。"),
    ("Chapter Three", "He reached the sea at last."),
];

async fn round_trip(backend: Backend) {
    let (app, _fake) = app(backend, None).await;
    let d = app
        .ok(
            "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
            json!({ "i": { "title": "The Long Road 长路", "language": "zh-CN" } }),
        )
        .await;
    let source = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    for (title, content) in BOOK {
        app.ok(
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": source, "title": title, "content": content } }),
        )
        .await;
    }
    for (format, ext) in [("EPUB", "epub"), ("MARKDOWN", "md"), ("TXT", "txt")] {
        let d = app
            .ok(
                EXPORT,
                json!({ "i": { "novelId": source, "format": format } }),
            )
            .await;
        let job = wait(
            &app,
            EXPORT_JOB,
            d["exportNovel"]["job"]["id"].as_str().unwrap(),
        )
        .await;
        assert_eq!(job["status"], "SUCCEEDED", "{job}");
        let url = job["file"]["downloadUrl"].as_str().unwrap();
        let bytes = app
            .client
            .get(app.url(url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let name = format!("book.{ext}");

        // The preview says what would be created, and creates nothing.
        let novels_before = app.novel_count().await;
        let d = upload_ok(&app, PREVIEW, json!({}), &name, &bytes).await;
        let p = &d["previewImport"];
        assert_eq!(p["format"], format, "{p}");
        assert_eq!(p["encoding"], "UTF-8");
        assert_eq!(p["title"], "The Long Road 长路", "{format}");
        assert_eq!(p["newNovel"], true);
        assert_eq!(p["chapterCount"], 3);
        assert_eq!(p["warnings"], json!([]), "{format}");
        let seqs: Vec<i64> = p["chapters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(p["chapters"][1]["title"], "第二章 山中");
        assert_eq!(p["chapters"][1]["wordCount"], 10);
        assert_eq!(
            p["chapters"][0]["excerpt"],
            "Ned left at dawn.\n\nThe road was long & <narrow>."
        );
        assert_eq!(
            app.novel_count().await,
            novels_before,
            "preview wrote nothing"
        );

        // The import creates the same chapters, titles and text.
        let (novel, job) = import(&app, json!({}), &name, &bytes).await;
        assert_eq!(job["status"], "SUCCEEDED", "{format}: {job}");
        assert_eq!(job["progress"], json!({ "done": 3, "total": 3 }));
        assert_eq!(job["file"]["name"], name);
        assert_eq!(job["file"]["size"], bytes.len());
        let got = chapters(&app, &novel).await;
        assert_eq!(got.len(), 3, "{format}: {got:?}");
        for ((seq, title, content, _), (i, (want_title, want_content))) in
            got.iter().zip(BOOK.iter().enumerate())
        {
            assert_eq!(*seq, i as i64 + 1);
            assert_eq!(title, want_title, "{format}");
            assert_eq!(paragraphs(content), paragraphs(want_content), "{format}");
        }
        let d = app.ok(CHAPTERS, json!({ "n": novel })).await;
        assert_eq!(d["novel"]["title"], "The Long Road 长路");
        assert_eq!(d["novel"]["language"], "en", "mostly English text");
        let d = app.ok(REVISIONS, json!({ "n": novel })).await;
        for e in d["novel"]["chapters"]["edges"].as_array().unwrap() {
            assert_eq!(e["node"]["version"], 1);
            let revs = e["node"]["revisions"]["edges"].as_array().unwrap();
            assert_eq!(revs.len(), 1);
            assert_eq!(revs[0]["node"]["source"], "IMPORT");
            assert_eq!(revs[0]["node"]["note"], format!("imported from {name}"));
        }
    }
}

/// `第N章` with N in Chinese numerals.
fn chinese_number(n: usize) -> String {
    const D: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => D[n].to_owned(),
        10..=19 => format!("十{}", if n == 10 { "" } else { D[n % 10] }),
        20..=99 => format!(
            "{}十{}",
            D[n / 10],
            if n.is_multiple_of(10) { "" } else { D[n % 10] }
        ),
        _ => format!(
            "{}百{}",
            D[n / 100],
            match n % 100 {
                0 => String::new(),
                r @ 1..=9 => format!("零{}", D[r]),
                r @ 10..=19 => format!("一{}", chinese_number(r)),
                r => chinese_number(r),
            }
        ),
    }
}

/// The fact chapter `n` of the GB18030 manuscript states, and it alone: whom Lin Yuan
/// met and where (a name and a place of its own).
fn fact(n: usize) -> String {
    const SURNAMES: [&str; 10] = ["赵", "钱", "孙", "李", "周", "吴", "郑", "王", "冯", "陈"];
    const GIVEN: [&str; 10] = [
        "子安", "明远", "若水", "青山", "听雪", "知秋", "慕白", "长风", "星河", "云舒",
    ];
    const PLACES: [&str; 10] = ["东", "南", "西", "北", "金", "木", "水", "火", "云", "石"];
    const KINDS: [&str; 10] = ["桥", "城", "岭", "湾", "村", "渡", "关", "港", "堡", "林"];
    let i = n - 1;
    format!(
        "他在{}{}遇见了{}{}。",
        PLACES[i % 10],
        KINDS[i / 10],
        SURNAMES[i / 10],
        GIVEN[i % 10]
    )
}

/// A GB18030 Chinese TXT of 100 chapters in two volumes is split right, and a fact only
/// its chapter 57 states is recalled from that chapter once memory has read the book.
async fn gb18030_hundred_chapters(backend: Backend) {
    let (app, fake) = app(backend, None).await;
    fake.script(
        "primary",
        crate::memory::extraction(crate::memory::empty_answer()),
    );
    let mut text = String::from("《长夜》\n作者：测试\n\n第一卷 北境\n");
    for i in 1..=100 {
        if i == 51 {
            text.push_str("第二卷 南疆\n");
        }
        text.push_str(&format!(
            "第{}章 风雪{i}\n　　林远在第{i}天走进了雪原。\n　　{}\n\n",
            chinese_number(i),
            fact(i)
        ));
    }
    assert_eq!(fact(57), "他在水渡遇见了吴慕白。");
    let (bytes, _, lossy) = encoding_rs::GB18030.encode(&text);
    assert!(!lossy);
    assert!(std::str::from_utf8(&bytes).is_err(), "really not UTF-8");

    let d = upload_ok(&app, PREVIEW, json!({}), "changye.txt", &bytes).await;
    let p = &d["previewImport"];
    assert_eq!(p["format"], "TXT");
    assert_eq!(p["encoding"], "GB18030");
    assert_eq!(p["title"], "长夜");
    assert_eq!(p["chapterCount"], 100);
    assert_eq!(p["volumes"], json!(["第一卷 北境", "第二卷 南疆"]));
    assert_eq!(p["chapters"][99]["title"], "第一百章 风雪100");
    assert_eq!(p["chapters"][50]["volume"], "第二卷 南疆");
    assert_eq!(p["warnings"], json!([]));

    let (novel, job) = import(&app, json!({}), "changye.txt", &bytes).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["progress"], json!({ "done": 100, "total": 100 }));
    let got = chapters(&app, &novel).await;
    assert_eq!(got.len(), 100);
    for (i, (seq, title, content, volume)) in got.iter().enumerate() {
        let n = i + 1;
        assert_eq!(*seq, n as i64);
        assert_eq!(*title, format!("第{}章 风雪{n}", chinese_number(n)));
        assert_eq!(
            *content,
            format!("林远在第{n}天走进了雪原。\n\n{}", fact(n))
        );
        let want = if n <= 50 {
            "第一卷 北境"
        } else {
            "第二卷 南疆"
        };
        assert_eq!(volume.as_deref(), Some(want));
    }
    let d = app.ok(CHAPTERS, json!({ "n": novel })).await;
    assert_eq!(d["novel"]["title"], "长夜");
    assert_eq!(d["novel"]["language"], "zh-CN");
    assert_eq!(d["novel"]["description"], "作者：测试");

    // Memory read every imported chapter; whom Lin Yuan met at Shuidu is told by
    // chapter 57 alone.
    let progress = crate::memory::remembered(&app, &novel).await;
    assert_eq!(progress["indexedChapters"], 100, "{progress}");
    assert_eq!(progress["failedChapters"], 0, "{progress}");
    for mode in ["HYBRID", "KEYWORD"] {
        let hits = crate::memory::recall(&app, &novel, "吴慕白", None, mode).await;
        let top = &hits[0];
        assert_eq!(top["chapterSeq"], 57, "{mode}: {hits:#?}");
        assert_eq!(top["chapter"]["title"], "第五十七章 风雪57");
        assert!(
            top["text"]
                .as_str()
                .unwrap()
                .contains("他在水渡遇见了吴慕白。"),
            "{top}"
        );
    }
}

async fn append_and_no_headings(backend: Backend) {
    let (app, _fake) = app(backend, None).await;
    let novel = app.novel("Existing").await;
    app.chapter(&novel, 1, "One").await;
    app.chapter(&novel, 2, "Two").await;
    let text = "Chapter 3\nThree.\nChapter 4\nFour.\n";
    let d = upload_ok(
        &app,
        PREVIEW,
        json!({ "novelId": novel }),
        "more.txt",
        text.as_bytes(),
    )
    .await;
    assert_eq!(d["previewImport"]["newNovel"], false);
    assert_eq!(d["previewImport"]["title"], "Existing");
    assert_eq!(d["previewImport"]["chapters"][0]["seq"], 3);
    let (same, job) = import(
        &app,
        json!({ "novelId": novel }),
        "more.txt",
        text.as_bytes(),
    )
    .await;
    assert_eq!(same, novel);
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let got = chapters(&app, &novel).await;
    let titles: Vec<(i64, &str)> = got.iter().map(|c| (c.0, c.1.as_str())).collect();
    assert_eq!(
        titles,
        [(1, "One"), (2, "Two"), (3, "Chapter 3"), (4, "Chapter 4")]
    );

    // No heading at all: one chapter, and the preview says so.
    let text = "Just a story with no chapters.\nIt goes on.";
    let d = upload_ok(
        &app,
        PREVIEW,
        json!({ "title": "Loose" }),
        "loose.txt",
        text.as_bytes(),
    )
    .await;
    let p = &d["previewImport"];
    assert_eq!(p["chapterCount"], 1);
    assert_eq!(p["title"], "Loose");
    assert!(
        p["warnings"][0].as_str().unwrap().contains("one chapter"),
        "{p}"
    );
    let (loose, job) = import(
        &app,
        json!({ "title": "Loose" }),
        "loose.txt",
        text.as_bytes(),
    )
    .await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let got = chapters(&app, &loose).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "loose");
    assert_eq!(got[0].2, "Just a story with no chapters.\n\nIt goes on.");
}

/// A minimal EPUB whose package names `href` in its manifest.
fn epub_naming(href: &str) -> Vec<u8> {
    let container = "<?xml version=\"1.0\"?><container><rootfiles><rootfile full-path=\"OPS/p.opf\"/></rootfiles></container>";
    let opf = format!(
        "<package><manifest><item id=\"a\" href=\"{href}\" media-type=\"application/xhtml+xml\"/></manifest><spine><itemref idref=\"a\"/></spine></package>"
    );
    znovel_domain::book::write_stored_zip(&[
        ("mimetype", b"application/epub+zip"),
        ("META-INF/container.xml", container.as_bytes()),
        ("OPS/p.opf", opf.as_bytes()),
        (
            "OPS/a.xhtml",
            b"<html><body><h1>A</h1><p>a</p></body></html>",
        ),
    ])
}

/// A zip bomb: an EPUB whose central directory says an entry unpacks to 4 GB.
fn zip_bomb() -> Vec<u8> {
    let mut z = epub_naming("a.xhtml");
    // The central directory's first entry: uncompressed size at offset 24.
    let cd = z
        .windows(4)
        .position(|w| w == [0x50, 0x4b, 0x01, 0x02])
        .unwrap();
    z[cd + 24..cd + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    z
}

async fn bad_inputs(backend: Backend) {
    let (app, _fake) = app(backend, Some(64 * 1024)).await;
    let key = app.admin_key.clone();
    let other = app.new_tenant("other-import").await;
    let theirs = {
        let d = app
            .ok_as(
                &other,
                "mutation { createNovel(input: {title: \"Theirs\"}) { novel { id } } }",
                json!({}),
            )
            .await;
        d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned()
    };
    let novels = app.novel_count().await;
    let good = b"Chapter 1\nHello.\n".to_vec();

    let big = vec![b'a'; 100 * 1024];
    let binary = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0".repeat(20);
    // (what, file name, bytes, input, code, message)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, Value, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "too large",
            "big.txt",
            big,
            json!({}),
            "BAD_USER_INPUT",
            "largest file allowed",
        ),
        (
            "binary",
            "photo.txt",
            binary,
            json!({}),
            "BAD_USER_INPUT",
            "not text",
        ),
        (
            "zip bomb",
            "bomb.epub",
            zip_bomb(),
            json!({}),
            "BAD_USER_INPUT",
            "zip bomb",
        ),
        (
            "path traversal",
            "evil.epub",
            epub_naming("../../etc/passwd"),
            json!({}),
            "BAD_USER_INPUT",
            "outside the book",
        ),
        (
            "absolute path",
            "evil.epub",
            epub_naming("/etc/passwd"),
            json!({}),
            "BAD_USER_INPUT",
            "outside the book",
        ),
        (
            "another tenant's novel",
            "ok.txt",
            good.clone(),
            json!({ "novelId": theirs }),
            "NOT_FOUND",
            "novel",
        ),
        (
            "empty",
            "empty.txt",
            b" \n".to_vec(),
            json!({}),
            "BAD_USER_INPUT",
            "no text",
        ),
    ];
    for (what, name, bytes, input, code, message) in cases {
        for query in [PREVIEW, IMPORT] {
            let (got, msg) = upload_err(&app, &key, query, input.clone(), name, &bytes).await;
            assert_eq!(got, code, "{what}: {msg}");
            assert!(msg.contains(message), "{what}: {msg}");
        }
    }
    // A JSON request cannot carry the file.
    let (code, _) = app.err_as(Some(&key), IMPORT, json!({})).await;
    assert_eq!(code, "BAD_USER_INPUT");
    // A VIEWER may not import.
    let viewer = app.user_key("viewer@import.test", "VIEWER").await;
    let (code, _) = upload_err(&app, &viewer, IMPORT, json!({}), "ok.txt", &good).await;
    assert_eq!(code, "FORBIDDEN");

    // Nothing was written: no novel, no file, no job.
    assert_eq!(app.novel_count().await, novels);
    let d = app
        .ok_as(
            &other,
            "query($n: ID!) { files(novelId: $n) { edges { node { id } } } generationJobs(novelId: $n) { edges { node { id } } } novel(id: $n) { chapters { edges { node { id } } } } }",
            json!({ "n": theirs }),
        )
        .await;
    assert_eq!(d["files"]["edges"], json!([]));
    assert_eq!(d["generationJobs"]["edges"], json!([]));
    assert_eq!(d["novel"]["chapters"]["edges"], json!([]));
}

fn uuid_of(global_id: &str) -> uuid::Uuid {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(global_id)
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    uuid::Uuid::parse_str(raw.split_once(':').unwrap().1).unwrap()
}

/// A worker that stops in the middle of an import hands the job back; the next attempt
/// creates the remaining chapters only, and progress continues from where it was.
async fn resume_without_duplicates(backend: Backend) {
    let (app, fake) = app(backend, None).await;
    let novel = app.novel("Resumed").await;
    let store = Arc::new(
        SqlStore::connect(&app.database_url, SqlOptions::default())
            .await
            .unwrap(),
    );
    let tenant = store.find_tenant_by_slug("local").await.unwrap().id;
    let novel_id = NovelId::from_uuid(uuid_of(&novel));
    let text: String = (1..=6)
        .map(|i| format!("Chapter {i}\nText of chapter {i}.\n"))
        .collect();
    // The job and its file as `importManuscript` records them, but on no queue: this
    // test's runner plays the worker.
    let job = GenerationJob {
        progress: Some(JobProgress { done: 0, total: 6 }),
        ..queued_job(
            tenant,
            novel_id,
            None,
            JobKind::Import,
            JobInput {
                import: Some(ImportSpec {
                    format: ManuscriptFormat::Txt,
                    chapters: 6,
                }),
                ..JobInput::default()
            },
            None,
            None,
        )
    };
    store.insert_job(&job).await.unwrap();
    let file = StoredFile {
        id: FileId::new(),
        tenant_id: tenant,
        novel_id,
        job_id: Some(job.id),
        name: "six.txt".into(),
        content_type: "text/plain".into(),
        size: text.len() as i64,
        created_by: None,
        created_at: znovel_domain::services::now(),
    };
    store.insert_file(&file, text.as_bytes()).await.unwrap();
    let llm = OpenAiCompatible::new(OpenAiConfig::new(fake.base_url(), "primary")).unwrap();
    let events = Arc::new(MemoryJobEvents::default());
    let runner = JobRunner::new(
        store.clone(),
        store.clone(),
        Arc::new(llm),
        Arc::new(MemoryTokenStreams::new(Default::default())),
        events.clone(),
        RunnerConfig::default(),
    );
    // Stops (as a worker shutting down) once three chapters are announced: RUNNING is
    // announced when the job starts, then after each chapter.
    let mut announced = events.subscribe(tenant, novel_id);
    let stop_after_three = async move {
        let mut running = 0;
        while let Some(e) = announced.next().await {
            if e.status == JobStatus::Running {
                running += 1;
                if running == 4 {
                    break;
                }
            }
        }
        StopReason::Shutdown
    };
    let msg = JobMessage {
        tenant_id: tenant,
        job_id: job.id,
    };
    let job_gid = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("GenerationJob:{}", job.id.as_uuid()))
    };

    let outcome = runner.run(&msg, stop_after_three).await;
    assert!(matches!(outcome, RunOutcome::Retry(_)), "{outcome:?}");
    let d = app.ok(JOB, json!({ "j": job_gid })).await;
    assert_eq!(d["generationJob"]["status"], "RUNNING");
    assert_eq!(
        d["generationJob"]["progress"],
        json!({ "done": 3, "total": 6 })
    );
    assert_eq!(chapters(&app, &novel).await.len(), 3);

    // The next attempt resumes; a third finds the job final and does nothing.
    let outcome = runner.run(&msg, std::future::pending()).await;
    assert_eq!(outcome, RunOutcome::Succeeded);
    let outcome = runner.run(&msg, std::future::pending()).await;
    assert_eq!(outcome, RunOutcome::Skipped);
    let d = app.ok(JOB, json!({ "j": job_gid })).await;
    assert_eq!(d["generationJob"]["status"], "SUCCEEDED");
    assert_eq!(
        d["generationJob"]["progress"],
        json!({ "done": 6, "total": 6 })
    );
    let got = chapters(&app, &novel).await;
    let titles: Vec<(i64, &str)> = got.iter().map(|c| (c.0, c.1.as_str())).collect();
    assert_eq!(
        titles,
        (1..=6)
            .map(|i| (
                i,
                [
                    "",
                    "Chapter 1",
                    "Chapter 2",
                    "Chapter 3",
                    "Chapter 4",
                    "Chapter 5",
                    "Chapter 6"
                ][i as usize]
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(got[5].2, "Text of chapter 6.");
}

/// Cancelling an import stops it; the job ends CANCELLED.
async fn cancel_stops_an_import(backend: Backend) {
    let (app, _fake) = app(backend, None).await;
    let text: String = (1..=2_000)
        .map(|i| format!("Chapter {i}\n{}\n", "Words and more words. ".repeat(20)))
        .collect();
    let d = upload_ok(&app, IMPORT, json!({}), "long.txt", text.as_bytes()).await;
    let job = d["importManuscript"]["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let novel = d["importManuscript"]["novel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        "mutation($j: ID!) { cancelGeneration(input: {jobId: $j}) { job { status } } }",
        json!({ "j": job }),
    )
    .await;
    let done = wait(&app, JOB, &job).await;
    assert_eq!(done["status"], "CANCELLED", "{done}");
    // The worker notices within a second and stops between two chapters.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let created = chapters(&app, &novel).await.len();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(chapters(&app, &novel).await.len(), created, "stopped");
    assert!(created < 2_000, "{created}");
}

/// `POST {path}` (`/files?…` or `/files/import?…`) with `body`, as `key` (none: no
/// credential) and with `content_type` when given: the status and the JSON answer (null
/// when there is none).
async fn post_file(
    app: &TestApp,
    key: Option<&str>,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().await.unwrap_or(Value::Null))
}

/// `POST /files`: the body stored as a file of the novel, answered as JSON; the same
/// credential, tenancy and size limit as the GraphQL API.
async fn plain_upload(backend: Backend) {
    let (app, _fake) = app(backend, Some(64 * 1024)).await;
    let novel = app.novel("Uploads").await;
    let post = |key: Option<String>, query: String, body: Vec<u8>| {
        let app = &app;
        async move {
            let path = format!("/files{query}");
            post_file(app, key.as_deref(), &path, Some("text/plain"), body).await
        }
    };
    let key = Some(app.admin_key.clone());
    let q = format!("?novelId={novel}&name=notes.txt");
    let (status, body) = post(key.clone(), q.clone(), b"hello".to_vec()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "notes.txt");
    assert_eq!(body["size"], 5);
    assert_eq!(body["contentType"], "text/plain");
    let url = body["downloadUrl"].as_str().unwrap();
    let got = app.client.get(app.url(url)).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello");
    let d = app
        .ok(
            "query($n: ID!) { files(novelId: $n) { edges { node { id name } } } }",
            json!({ "n": novel }),
        )
        .await;
    assert_eq!(d["files"]["edges"][0]["node"]["id"], body["id"]);

    let (status, _) = post(None, q.clone(), b"x".to_vec()).await;
    assert_eq!(status, 401);
    let other = app.new_tenant("other-upload").await;
    let (status, body) = post(Some(other), q.clone(), b"x".to_vec()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let (status, body) = post(key.clone(), q.clone(), vec![b'a'; 100 * 1024]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let (status, _) = post(key.clone(), "?name=a.txt".into(), b"x".to_vec()).await;
    assert_eq!(status, 400);
    let (status, _) = post(key, format!("?novelId={novel}"), b"x".to_vec()).await;
    assert_eq!(status, 400, "a name is needed");
}

/// The tenant's files share one byte budget (`maxFileBytes`): an upload, an import (and
/// its preview) or an export that would pass it is refused with `QUOTA_EXCEEDED` before
/// anything is written; `fileBytesUsed` counts what is stored; deleting frees it.
async fn file_quota(backend: Backend) {
    let (app, _fake) = app(backend, None).await;
    let novel = app.novel("Quota").await;
    const USAGE: &str = "{ viewer { tenant { quota { maxFileBytes fileBytesUsed novels } } } }";
    let usage = |d: Value| d["viewer"]["tenant"]["quota"].clone();
    let q = usage(app.ok(USAGE, json!({})).await);
    assert_eq!(q["maxFileBytes"], 1_073_741_824_i64, "{q}");
    assert_eq!(q["fileBytesUsed"], 0);
    let set_quota = |max: i64| {
        app.ok(
            "mutation($m: Int!) { updateQuota(input: { maxFileBytes: $m }) { tenant { quota { maxFileBytes } } } }",
            json!({ "m": max }),
        )
    };
    let manuscript = "Chapter 1 Dawn\nNed left at dawn.\n\nChapter 2 Dusk\nHe came back at dusk.\n";
    let d = upload_ok(
        &app,
        IMPORT,
        json!({ "novelId": novel }),
        "book.txt",
        manuscript.as_bytes(),
    )
    .await;
    let stored = d["importManuscript"]["job"]["file"]["size"]
        .as_i64()
        .unwrap();
    assert_eq!(stored, manuscript.len() as i64);
    let q = usage(app.ok(USAGE, json!({})).await);
    assert_eq!(q["fileBytesUsed"], stored);
    let novels = q["novels"].as_i64().unwrap();

    // Room for ten more bytes: the same manuscript again does not fit.
    set_quota(stored + 10).await;
    let (code, msg) = upload_err(
        &app,
        &app.admin_key,
        PREVIEW,
        json!({}),
        "book.txt",
        manuscript.as_bytes(),
    )
    .await;
    assert_eq!(code, "QUOTA_EXCEEDED", "{msg}");
    assert!(msg.contains("maxFileBytes"), "{msg}");
    let (code, _) = upload_err(
        &app,
        &app.admin_key,
        IMPORT,
        json!({}),
        "book.txt",
        manuscript.as_bytes(),
    )
    .await;
    assert_eq!(code, "QUOTA_EXCEEDED");
    // Nothing half-written: no novel, no job file.
    let q = usage(app.ok(USAGE, json!({})).await);
    assert_eq!(q["novels"].as_i64(), Some(novels));
    assert_eq!(q["fileBytesUsed"], stored);
    let notes = format!("/files?novelId={novel}&name=notes.txt");
    let key = Some(app.admin_key.as_str());
    let (status, body) = post_file(&app, key, &notes, Some("text/plain"), vec![b'x'; 11]).await;
    assert_eq!(status, 403);
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUOTA_EXCEEDED");

    // An export larger than the room left fails its job, saying why; none is stored.
    let export =
        "mutation($n: ID!) { exportNovel(input: { novelId: $n, format: EPUB }) { job { id } } }";
    let d = app.ok(export, json!({ "n": novel })).await;
    let job = d["exportNovel"]["job"]["id"].as_str().unwrap().to_owned();
    let job = wait(
        &app,
        "query($j: ID!) { generationJob(id: $j) { status error } }",
        &job,
    )
    .await;
    assert_eq!(job["status"], "FAILED", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("quota exceeded"),
        "{job}"
    );
    // Full: refused at once.
    set_quota(stored).await;
    assert_eq!(
        app.err(export, json!({ "n": novel })).await,
        "QUOTA_EXCEEDED"
    );

    // Deleting the manuscript frees its bytes.
    let files = app
        .ok(
            "query($n: ID!) { files(novelId: $n) { edges { node { id } } } }",
            json!({ "n": novel }),
        )
        .await;
    for e in files["files"]["edges"].as_array().unwrap() {
        app.ok(
            "mutation($f: ID!) { deleteFile(input: { fileId: $f }) { file { id } } }",
            json!({ "f": e["node"]["id"] }),
        )
        .await;
    }
    let q = usage(app.ok(USAGE, json!({})).await);
    assert_eq!(q["fileBytesUsed"], 0);
    let (status, _) = post_file(&app, key, &notes, Some("text/plain"), vec![b'x'; 11]).await;
    assert_eq!(status, 201);
}

/// A Word document: heading-styled chapters (one in Chinese), split like the EPUB and
/// Markdown files are; its title from the document properties.
async fn docx_manuscripts(backend: Backend) {
    let (app, _fake) = app(backend, None).await;
    let w = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"";
    let p = |style: &str, text: &str| {
        let ppr = if style.is_empty() {
            String::new()
        } else {
            format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>")
        };
        format!("<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
    };
    let body = [
        p("Heading1", "Chapter 1: Departure"),
        p("", "Ned left at dawn."),
        p("", "The road was long &amp; &lt;narrow&gt;."),
        p("Heading1", "第二章 山中"),
        p("", "山中无甲子。"),
    ]
    .concat();
    let doc = format!("<w:document {w}><w:body>{body}</w:body></w:document>");
    let styles = format!(
        "<w:styles {w}><w:style w:styleId=\"Heading1\"><w:name w:val=\"heading 1\"/></w:style></w:styles>"
    );
    let core = "<cp:coreProperties xmlns:cp=\"c\" xmlns:dc=\"d\"><dc:title>The Long Road 长路</dc:title></cp:coreProperties>";
    let bytes = znovel_domain::book::write_stored_zip(&[
        ("[Content_Types].xml", b"<Types/>".as_slice()),
        ("word/document.xml", doc.as_bytes()),
        ("word/styles.xml", styles.as_bytes()),
        ("docProps/core.xml", core.as_bytes()),
    ]);
    let d = upload_ok(&app, PREVIEW, json!({}), "book.docx", &bytes).await;
    let preview = &d["previewImport"];
    assert_eq!(preview["format"], "DOCX", "{preview}");
    assert_eq!(preview["title"], "The Long Road 长路");
    assert_eq!(preview["chapterCount"], 2);
    assert_eq!(preview["chapters"][1]["title"], "第二章 山中");
    assert_eq!(
        preview["chapters"][0]["excerpt"],
        "Ned left at dawn.\n\nThe road was long & <narrow>."
    );
    // Through the plain route, the format detected from the bytes: a dry run first.
    let novels = app.novel_count().await;
    let key = Some(app.admin_key.as_str());
    let path = "/files/import?name=manuscript&dryRun=true";
    let (status, dry) = post_file(&app, key, path, None, bytes.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(dry["format"], "DOCX", "{dry}");
    assert_eq!(dry["chapterCount"], 2);
    assert_eq!(dry["newNovel"], true);
    assert_eq!(dry["chapters"][0]["title"], "Chapter 1: Departure");
    assert_eq!(app.novel_count().await, novels, "a dry run writes nothing");
    let path = "/files/import?name=manuscript";
    let (status, body) = post_file(&app, key, path, None, bytes.clone()).await;
    assert_eq!(status, 202);
    let job = wait(
        &app,
        "query($j: ID!) { generationJob(id: $j) { status error file { contentType } } }",
        body["job"]["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(
        job["file"]["contentType"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );
    let got = chapters(&app, body["novel"]["id"].as_str().unwrap()).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, "Chapter 1: Departure");
    assert_eq!(
        got[0].2,
        "Ned left at dawn.\n\nThe road was long & <narrow>."
    );
    assert_eq!(got[1].2, "山中无甲子。");
    // A DOCX that is not one: refused before anything is written.
    let (code, msg) = upload_err(
        &app,
        &app.admin_key,
        IMPORT,
        json!({}),
        "broken.docx",
        b"PK\x03\x04 not really",
    )
    .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(msg.contains("not a valid DOCX"), "{msg}");
}

macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    };
}

on_both!(round_trip);
on_both!(gb18030_hundred_chapters);
on_both!(append_and_no_headings);
on_both!(bad_inputs);
on_both!(resume_without_duplicates);
on_both!(cancel_stops_an_import);
on_both!(plain_upload);
on_both!(file_quota);
on_both!(docx_manuscripts);
