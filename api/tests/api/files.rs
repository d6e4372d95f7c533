//! Whole books out: `exportNovel` queues an EXPORT job whose `file` is the book, in
//! EPUB 3, Markdown or TXT (a Chinese chapter included); the book is downloaded through
//! its `downloadUrl` (`GET /files/{id}?token=…`, no API key); a forged, expired or
//! missing token is refused, another tenant neither sees nor downloads it, `files`
//! lists it, `deleteFile` removes it, and a book over the size limit fails its job.

use crate::helpers::{Backend, TestApp};
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;
use znovel_domain::book::read_stored_zip;
use znovel_domain::ids::{FileId, TenantId};
use znovel_infra::llm::testing::FakeOpenAi;

const EXPORT: &str =
    "mutation($i: ExportNovelInput!) { exportNovel(input: $i) { job { id kind status } } }";
const JOB: &str = "query($j: ID!) { generationJob(id: $j) { status error file { id name contentType size createdAt downloadUrl } } }";
const FILES: &str = "query($n: ID!) { files(novelId: $n) { edges { node { id name size } } } }";

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

/// A novel of three chapters, the second in Chinese; returns its id.
async fn book(app: &TestApp) -> String {
    let d = app
        .ok(
            "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
            json!({ "i": { "title": "The Long Road 长路", "description": "Three chapters.", "language": "zh-CN" } }),
        )
        .await;
    let novel = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
    for (seq, title, content) in [
        (
            1,
            "Departure",
            "Ned left at dawn.\n\nThe road was long & <narrow>.",
        ),
        (2, "第二章 山中", "山中无甲子。\n寒尽不知年。"),
        (3, "Arrival", "He reached the sea at last."),
    ] {
        app.ok(
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": novel, "seq": seq, "title": title, "content": content } }),
        )
        .await;
    }
    novel
}

/// Exports and waits for the job to end; returns the job.
async fn export(app: &TestApp, novel: &str, format: &str, range: Value) -> Value {
    let mut input = json!({ "novelId": novel, "format": format });
    if let (Some(i), Some(r)) = (input.as_object_mut(), range.as_object()) {
        i.extend(r.clone());
    }
    let d = app.ok(EXPORT, json!({ "i": input })).await;
    let job = &d["exportNovel"]["job"];
    assert_eq!(job["kind"], "EXPORT");
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let d = app.ok(JOB, json!({ "j": id })).await;
        let job = d["generationJob"].clone();
        if matches!(
            job["status"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        ) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "export did not end: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn download(app: &TestApp, url: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = app.client.get(app.url(url)).send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

/// The file's id and the tenant its link was signed for.
fn ids_of(url: &str) -> (FileId, TenantId) {
    let (path, token) = url.split_once("?token=").unwrap();
    let gid = path.strip_prefix("/files/").unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(gid)
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let uuid = raw.strip_prefix("StoredFile:").unwrap();
    let file = FileId::from_uuid(uuid::Uuid::parse_str(uuid).unwrap());
    let tenant = token.split('.').next().unwrap();
    (
        file,
        TenantId::from_uuid(uuid::Uuid::parse_str(tenant).unwrap()),
    )
}

async fn exports_download_and_refusals(backend: Backend) {
    let (app, _fake) = app(backend, None).await;
    let novel = book(&app).await;

    // Markdown.
    let job = export(&app, &novel, "MARKDOWN", json!({})).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let file = &job["file"];
    assert_eq!(file["name"], "The Long Road 长路.md");
    assert_eq!(file["contentType"], "text/markdown; charset=utf-8");
    let url = file["downloadUrl"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("/files/") && url.contains("?token="),
        "{url}"
    );
    assert!(!url.contains(&app.admin_key), "no API key in a URL");
    let (status, ct, body) = download(&app, &url).await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("text/markdown; charset=utf-8"));
    assert_eq!(body.len() as i64, file["size"].as_i64().unwrap());
    let md = String::from_utf8(body).unwrap();
    assert!(md.starts_with("# The Long Road 长路\n"), "{md}");
    let (a, b, c) = (
        md.find("## Departure").unwrap(),
        md.find("## 第二章 山中\n\n山中无甲子。\n\n寒尽不知年。")
            .unwrap(),
        md.find("## Arrival\n\nHe reached the sea at last.")
            .unwrap(),
    );
    assert!(a < b && b < c, "{md}");
    assert!(md.contains("The road was long & <narrow>."));

    // TXT, chapters 2..3 only.
    let job = export(&app, &novel, "TXT", json!({ "fromSeq": 2, "toSeq": 3 })).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    let (status, ct, body) = download(&app, job["file"]["downloadUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"));
    let txt = String::from_utf8(body).unwrap();
    assert!(
        txt.contains("第二章 山中\n\n山中无甲子。\n寒尽不知年。\n"),
        "{txt}"
    );
    assert!(txt.contains("He reached the sea at last."));
    assert!(
        !txt.contains("Departure"),
        "chapter 1 is outside the range: {txt}"
    );

    // EPUB 3.
    let job = export(&app, &novel, "EPUB", json!({})).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["file"]["contentType"], "application/epub+zip");
    let epub_url = job["file"]["downloadUrl"].as_str().unwrap().to_owned();
    let (status, ct, body) = download(&app, &epub_url).await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("application/epub+zip"));
    assert_eq!(&body[..4], b"PK\x03\x04");
    // The OCF rule: `mimetype` first, stored, with no extra field, right after its header.
    assert_eq!(&body[30..38], b"mimetype");
    assert_eq!(&body[38..58], b"application/epub+zip");
    let entries = read_stored_zip(&body).expect("a well-formed archive");
    assert_eq!(entries[0].name, "mimetype");
    assert_eq!(entries[0].method, 0, "mimetype is stored");
    let entry = |name: &str| {
        let e = entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {name}"));
        String::from_utf8(e.data.clone()).unwrap()
    };
    assert!(entry("META-INF/container.xml").contains("full-path=\"OEBPS/content.opf\""));
    let opf = entry("OEBPS/content.opf");
    assert!(
        opf.contains("<dc:title>The Long Road 长路</dc:title>"),
        "{opf}"
    );
    assert!(opf.contains("<dc:language>zh-CN</dc:language>"));
    assert!(opf.contains("properties=\"nav\""));
    assert!(opf.contains("dcterms:modified"));
    let nav = entry("OEBPS/nav.xhtml");
    assert!(nav.contains("epub:type=\"toc\""));
    for title in ["Departure", "第二章 山中", "Arrival"] {
        assert!(nav.contains(&format!(">{title}</a>")), "{title} in {nav}");
    }
    assert!(entry("OEBPS/cover.xhtml").contains("The Long Road 长路"));
    assert!(
        entry("OEBPS/chapter-0001.xhtml")
            .contains("<p>The road was long &amp; &lt;narrow&gt;.</p>")
    );
    assert!(entry("OEBPS/chapter-0002.xhtml").contains("<p>山中无甲子。</p>\n<p>寒尽不知年。</p>"));
    assert!(entry("OEBPS/chapter-0003.xhtml").contains("He reached the sea at last."));

    // The three books are listed, newest first.
    let d = app.ok(FILES, json!({ "n": novel })).await;
    let names: Vec<&str> = d["files"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "The Long Road 长路.epub",
            "The Long Road 长路.txt",
            "The Long Road 长路.md"
        ]
    );

    // A forged token, an expired one, none at all.
    let forged = format!("{}x", &epub_url[..epub_url.len() - 1]);
    assert_eq!(download(&app, &forged).await.0, 403);
    let (file, tenant) = ids_of(&epub_url);
    let links = app.services.files.links().clone();
    let past = chrono::Utc::now().timestamp() - 5;
    let (path, _) = epub_url.split_once('?').unwrap();
    let expired = format!("{path}?token={}", links.token_expiring(tenant, file, past));
    let (status, _, body) = download(&app, &expired).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    assert_eq!(download(&app, path).await.0, 401);
    // A link for one file does not open another.
    let other_gid = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("StoredFile:{}", FileId::new().as_uuid()));
    let token = epub_url.split_once("?token=").unwrap().1;
    assert_eq!(
        download(&app, &format!("/files/{other_gid}?token={token}"))
            .await
            .0,
        403
    );

    // Another tenant sees nothing, and a link signed for it does not reach our file.
    let other = app.new_tenant("other-files").await;
    let (code, _) = app.err_as(Some(&other), FILES, json!({ "n": novel })).await;
    assert_eq!(code, "NOT_FOUND");
    let (_, other_tenant) = {
        let d = app
            .ok_as(
                &other,
                "mutation($i: CreateNovelInput!) { createNovel(input: $i) { novel { id } } }",
                json!({ "i": { "title": "Theirs" } }),
            )
            .await;
        let theirs = d["createNovel"]["novel"]["id"].as_str().unwrap().to_owned();
        app.ok_as(
            &other,
            "mutation($i: CreateChapterInput!) { createChapter(input: $i) { chapter { id } } }",
            json!({ "i": { "novelId": theirs, "seq": 1, "title": "One", "content": "Mine." } }),
        )
        .await;
        let d = app
            .ok_as(
                &other,
                EXPORT,
                json!({ "i": { "novelId": theirs, "format": "TXT" } }),
            )
            .await;
        let job = d["exportNovel"]["job"]["id"].as_str().unwrap().to_owned();
        let mut url = None;
        for _ in 0..600 {
            let d = app.ok_as(&other, JOB, json!({ "j": job })).await;
            if let Some(u) = d["generationJob"]["file"]["downloadUrl"].as_str() {
                url = Some(u.to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ids_of(&url.expect("the other tenant's export finished"))
    };
    let cross = format!(
        "{path}?token={}",
        links.token_expiring(other_tenant, file, past + 600)
    );
    assert_eq!(
        download(&app, &cross).await.0,
        404,
        "another tenant's link finds no such file"
    );

    // Deleted: gone from the list and from its link.
    let file_gid = path.strip_prefix("/files/").unwrap();
    let d = app
        .ok(
            "mutation($i: DeleteFileInput!) { deleteFile(input: $i) { file { id name } } }",
            json!({ "i": { "fileId": file_gid } }),
        )
        .await;
    assert_eq!(d["deleteFile"]["file"]["name"], "The Long Road 长路.epub");
    assert_eq!(download(&app, &epub_url).await.0, 404);
    let d = app.ok(FILES, json!({ "n": novel })).await;
    assert_eq!(d["files"]["edges"].as_array().unwrap().len(), 2);
    let (code, _) = app
        .err_as(
            Some(&other),
            "mutation($i: DeleteFileInput!) { deleteFile(input: $i) { file { id } } }",
            json!({ "i": { "fileId": file_gid } }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}

async fn oversized_book_fails_its_job(backend: Backend) {
    let (app, _fake) = app(backend, Some(200)).await;
    let novel = book(&app).await;
    let job = export(&app, &novel, "EPUB", json!({})).await;
    assert_eq!(job["status"], "FAILED", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("too large"),
        "{job}"
    );
    assert!(job["file"].is_null());
    let d = app.ok(FILES, json!({ "n": novel })).await;
    assert!(d["files"]["edges"].as_array().unwrap().is_empty());
    // An empty range is a clear failure too, and bad ranges are refused up front.
    let job = export(&app, &novel, "TXT", json!({ "fromSeq": 9 })).await;
    assert_eq!(job["status"], "FAILED");
    assert!(
        job["error"].as_str().unwrap().contains("no chapters"),
        "{job}"
    );
    let msg = app
        .err(
            EXPORT,
            json!({ "i": { "novelId": novel, "format": "TXT", "fromSeq": 3, "toSeq": 2 } }),
        )
        .await;
    assert_eq!(msg, "BAD_USER_INPUT");
}

mod exports {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        exports_download_and_refusals(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        exports_download_and_refusals(Backend::Postgres).await;
    }
}

mod oversized_exports {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        oversized_book_fails_its_job(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        oversized_book_fails_its_job(Backend::Postgres).await;
    }
}
