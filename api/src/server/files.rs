//! `GET /files/{id}?token=…`: downloads a stored file through a short-lived signed link
//! (a file's `downloadUrl`). The token is the credential: no API key or bearer token is
//! read, so a browser can follow the link. A forged or expired token is 403, a file that
//! is gone (or another tenant's) 404.

use super::AppState;
use crate::graphql::errors::ErrorCode;
use crate::graphql::ids::{GlobalId, parse};
use crate::server::http::error_body;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use znovel_domain::Error;
use znovel_domain::ids::FileId;

/// The query string of a download.
#[derive(Debug, serde::Deserialize)]
pub struct DownloadQuery {
    token: Option<String>,
}

/// `filename*` of a Content-Disposition header (RFC 6266 / 5987): UTF-8, percent-encoded.
fn disposition(name: &str) -> String {
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn refuse(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    error_body(status, code, message, false)
}

/// Serves one file.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let Some(id) = parse(&id)
        .filter(|(ty, _)| *ty == <FileId as GlobalId>::TYPE)
        .map(|(_, uuid)| FileId::from_uuid(uuid))
    else {
        return refuse(StatusCode::NOT_FOUND, ErrorCode::NotFound, "file not found");
    };
    let Some(token) = query.token.filter(|t| !t.is_empty()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "a download link needs its token",
        );
    };
    match state.files.download(id, &token).await {
        Ok((file, bytes)) => {
            let mut resp = Response::new(Body::from(bytes));
            let headers = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&file.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&disposition(&file.name)) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            headers.insert(
                header::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        Err(Error::Forbidden(m)) => refuse(StatusCode::FORBIDDEN, ErrorCode::Forbidden, &m),
        Err(Error::NotFound { .. }) => {
            refuse(StatusCode::NOT_FOUND, ErrorCode::NotFound, "file not found")
        }
        Err(e) => {
            tracing::error!(error = %e, "download failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the file cannot be read now; retry later",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn file_names_are_quoted_safely() {
        assert_eq!(
            disposition("长路 \"x\".epub"),
            "attachment; filename=\"__ _x_.epub\"; filename*=UTF-8''%E9%95%BF%E8%B7%AF%20%22x%22.epub"
        );
    }
}
