//! The web playground, served from assets embedded in the binary (no CDN, no Node.js at
//! run time): `/playground` (GraphiQL with the explorer and a guided first session) and
//! `/write` (the writing room), their files under `/assets/`, and a browser's plain
//! `GET /graphql` or `GET /` redirected to `/playground`. `ZNOVEL_PLAYGROUND=false` turns
//! all of it off.
//!
//! The assets are `web-playground/dist`, built and committed by `scripts/playground.sh
//! build` (a check fails when they are stale). File names under `/assets/` carry a content
//! hash, so they are cached for good; the pages are revalidated with their `ETag`. A file
//! with a `.gz` sibling is sent compressed to a browser that accepts gzip.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

/// The built playground (`web-playground/dist`), embedded at compile time.
#[derive(RustEmbed)]
#[folder = "../web-playground/dist"]
struct Assets;

/// Where a browser lands: the playground page.
pub const PLAYGROUND_PATH: &str = "/playground";

/// What the pages may load and talk to: this origin only (the WebSocket included), Monaco's
/// workers, and the fonts the stylesheets inline as `data:` URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data: blob:; \
     worker-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Adds the playground's routes to `routes` (which must already hold `/graphql` and `/`),
/// and the redirect of a browser's `GET /graphql` and `GET /` to [`PLAYGROUND_PATH`].
pub fn mount(routes: Router) -> Router {
    routes
        .route(
            PLAYGROUND_PATH,
            get(|h: HeaderMap| page("playground.html", h)),
        )
        .route("/write", get(|h: HeaderMap| page("write.html", h)))
        .route("/assets/{*file}", get(asset))
        .layer(middleware::from_fn(redirect_browsers))
}

/// Sends a browser that opens `/graphql` (no query string, no WebSocket upgrade) or `/`
/// to the playground; API clients (which do not ask for HTML first) pass through.
async fn redirect_browsers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let entry = (path == "/graphql" && req.uri().query().is_none()) || path == "/";
    if entry && req.method() == Method::GET && wants_html(req.headers()) {
        return Redirect::temporary(PLAYGROUND_PATH).into_response();
    }
    next.run(req).await
}

/// Whether the request asks for an HTML page first, as a browser's navigation does.
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).is_none()
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(|accept| accept.split(',').next())
            .is_some_and(|first| first.trim().starts_with("text/html"))
}

/// A page: no caching without revalidation (its asset names change with every build).
async fn page(name: &'static str, headers: HeaderMap) -> Response {
    let Some(file) = Assets::get(name) else {
        return not_found();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `/assets/<file>`: immutable (hashed names), gzip when the browser accepts it.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("assets/{file}");
    if file.ends_with(".gz") {
        return not_found();
    }
    let Some(plain) = Assets::get(&path) else {
        return not_found();
    };
    let mime = plain.metadata.mimetype().to_owned();
    let gzip = accepts_gzip(&headers)
        .then(|| Assets::get(&format!("{path}.gz")))
        .flatten();
    let compressed = gzip.is_some();
    let mut resp = Response::new(Body::from(gzip.map_or(plain.data, |g| g.data)));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if compressed {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_every_asset_they_name_are_embedded() {
        for page in ["playground.html", "write.html"] {
            let html = Assets::get(page).map(|f| f.data).unwrap_or_default();
            let html = String::from_utf8_lossy(&html);
            let names: Vec<&str> = html
                .split("/assets/")
                .skip(1)
                .filter_map(|s| s.split('"').next())
                .collect();
            assert!(names.len() >= 2, "{page} names its script and stylesheet");
            for name in names {
                assert!(
                    Assets::get(&format!("assets/{name}")).is_some(),
                    "{page} names assets/{name}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(&h("gzip;q=0, br")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn only_a_browser_navigation_is_redirected() {
        let h = |accept: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            m
        };
        assert!(wants_html(&h(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_html(&h(
            "application/graphql-response+json, application/json"
        )));
        assert!(!wants_html(&h("*/*")));
        let mut upgrade = h("text/html");
        upgrade.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!wants_html(&upgrade));
    }
}
