//! The web playground as the binary serves it: its pages and every asset they name come
//! from the binary (no other origin), gzip when asked, cached for good (hashed names) or
//! revalidated (pages), with a Content-Security-Policy that keeps the pages on this
//! origin; a browser opening `/graphql` or `/` lands on `/playground`; and
//! `ZNOVEL_PLAYGROUND=false` serves none of it. (The pages themselves are tested in a real
//! browser: `web-playground/tests`, run by `scripts/playground.sh test`.)

use crate::helpers::{Backend, TestApp};
use reqwest::header;
use std::io::Read;

/// A client that follows no redirect and decodes nothing: what the server sent, as is.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The assets a text names, as `/assets/...` URLs: an HTML page names them absolutely, a
/// script names its chunks relatively (`./chunk-….js`) and Monaco's workers absolutely.
fn asset_urls(text: &str) -> Vec<String> {
    let named = |rest: &str| -> Option<String> {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        let asset = [".js", ".css", ".ttf"].iter().any(|e| name.ends_with(e));
        (asset && name.contains('-')).then(|| format!("/assets/{name}"))
    };
    let mut urls: Vec<String> = text
        .split("/assets/")
        .skip(1)
        .chain(text.split("\"./").skip(1))
        .filter_map(named)
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_their_assets_come_from_the_binary() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = raw_client();
    for page in ["/playground", "/write"] {
        let resp = client.get(app.url(page)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{page}");
        let h = resp.headers().clone();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            h[header::CACHE_CONTROL],
            "no-cache",
            "{page} is revalidated"
        );
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "connect-src 'self'",
        ] {
            assert!(csp.contains(directive), "{page}: {csp}");
        }
        let etag = h[header::ETAG].clone();
        let html = resp.text().await.unwrap();
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));

        // Revalidation: the same ETag answers 304 with no body.
        let again = client
            .get(app.url(page))
            .header(header::IF_NONE_MATCH, etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);

        // Every asset the page names, and every asset those name in turn (code-split chunks,
        // Monaco's workers), is served, gzip-compressed when accepted.
        let mut pending = asset_urls(&html);
        let mut seen = Vec::new();
        assert!(pending.len() >= 2, "{page} names a script and a stylesheet");
        while let Some(url) = pending.pop() {
            if seen.contains(&url) {
                continue;
            }
            let plain = client.get(app.url(&url)).send().await.unwrap();
            assert_eq!(plain.status(), 200, "{url}");
            assert_eq!(
                plain.headers()[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
            assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
            let ct = plain.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            let body = plain.bytes().await.unwrap();
            if url.ends_with(".js") {
                assert!(ct.contains("javascript"), "{url}: {ct}");
                pending.extend(asset_urls(&String::from_utf8_lossy(&body)));
            } else if url.ends_with(".css") {
                assert!(ct.starts_with("text/css"), "{url}: {ct}");
            }
            if body.len() > 1024 {
                let gz = client
                    .get(app.url(&url))
                    .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip", "{url}");
                assert_eq!(gz.headers()[header::VARY], "accept-encoding");
                let packed = gz.bytes().await.unwrap();
                assert!(packed.len() < body.len(), "{url} is smaller compressed");
                assert_eq!(
                    gunzip(&packed),
                    body.to_vec(),
                    "{url}: same bytes once unpacked"
                );
            }
            seen.push(url);
        }
        if page == "/playground" {
            for worker in ["editor.worker-", "json.worker-", "graphql.worker-"] {
                assert!(
                    seen.iter().any(|u| u.contains(worker)),
                    "Monaco's {worker} is served: {seen:?}"
                );
            }
        }
    }
    for missing in ["/assets/nope.js", "/assets/../Cargo.toml", "/assets/"] {
        let resp = client.get(app.url(missing)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{missing}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_opening_the_api_lands_on_the_playground() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = raw_client();
    for path in ["/graphql", "/"] {
        let resp = client
            .get(app.url(path))
            .header(header::ACCEPT, BROWSER_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 307, "{path}");
        assert_eq!(resp.headers()[header::LOCATION], "/playground");
    }
    // API clients are served as before.
    let resp = client
        .get(app.url("/"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(app.url("/graphql?query=%7B__typename%7D"))
        .header(header::ACCEPT, BROWSER_ACCEPT)
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "a GET with a query runs it");
    assert!(resp.text().await.unwrap().contains("__typename"));
    let data = app.ok("{ __typename }", serde_json::json!({})).await;
    assert_eq!(data["__typename"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turned_off_it_serves_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.playground = false).await;
    let client = raw_client();
    for path in ["/playground", "/write", "/assets/anything.js"] {
        let resp = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = client
        .get(app.url("/graphql"))
        .header(header::ACCEPT, BROWSER_ACCEPT)
        .send()
        .await
        .unwrap();
    assert_ne!(
        resp.status(),
        307,
        "no redirect to a page that is not there"
    );
}
