//! `GET /files/{id}?token=…`: downloads a stored file through a short-lived signed link
//! (a file's `downloadUrl`). The token is the credential: no API key or bearer token is
//! read, so a browser can follow the link. A forged or expired token is 403, a file that
//! is gone (or another tenant's) 404.
//!
//! `POST /files?novelId=<id>&name=<file name>`: stores the request body as a file of the
//! novel (credential as on `/graphql`, MEMBER, at most `ZNOVEL_MAX_FILE_BYTES`); answers
//! 201 with the stored file as JSON (`id name contentType size createdAt downloadUrl`).
//!
//! `POST /files/import?name=<file name>[&novelId=<id>][&title=…][&format=TXT|MARKDOWN|EPUB|DOCX][&dryRun=true]`:
//! `importManuscript` with the request body as the manuscript (same credential and limits);
//! answers 202 with `{ job: { id kind status }, novel: { id title } }`, the job followed
//! through GraphQL like any other. With `dryRun=true` it is `previewImport`: 200 with the
//! preview as JSON (the GraphQL field names), nothing written. It is how a manuscript is uploaded behind Hive Router,
//! which refuses a GraphQL multipart request (415): in the cluster the Ingress sends
//! `/files` to the file service.
//!
//! Only the all-in-one server and the file role serve these routes.

use super::AppState;
use crate::graphql::errors::ErrorCode;
use crate::graphql::ids::{GlobalId, parse, to_id};
use crate::server::http::error_body;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use znovel_domain::Error;
use znovel_domain::auth::Actor;
use znovel_domain::ids::{FileId, NovelId};
use znovel_domain::model::ManuscriptFormat;

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

/// The query string of an upload.
#[derive(Debug, serde::Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
    #[serde(rename = "novelId")]
    novel_id: Option<String>,
}

/// The HTTP status of a domain error.
fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::QuotaExceeded(_) => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A domain error as a JSON error body with its code (and field).
fn refuse_error(e: Error) -> Response {
    let status = status_of(&e);
    let err = crate::graphql::errors::to_gql(e);
    let body = serde_json::json!({
        "errors": [{ "message": err.message, "extensions": err.extensions }]
    });
    super::http::json_response(status, body.to_string(), false)
}

/// The caller of an upload, within its request rate; else the answer refusing it.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Actor, Response> {
    let actor = match super::http::authenticate(state, headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return Err(refuse_error(Error::Unauthenticated)),
        Err(e) => return Err(refuse_error(e)),
    };
    if let Err(e) = state.limits.check(&actor).await {
        return Err(super::limits::refused(state, e, false));
    }
    Ok(actor)
}

/// A novel's global ID of a query string.
fn novel_id(id: &str) -> Option<NovelId> {
    parse(id)
        .filter(|(ty, _)| *ty == <NovelId as GlobalId>::TYPE)
        .map(|(_, uuid)| NovelId::from_uuid(uuid))
}

/// The body of an upload, at most a file of the size limit plus the ordinary body limit
/// (the service refuses a file over its limit with a clear error); else 413.
async fn body(state: &AppState, req: axum::extract::Request) -> Result<Vec<u8>, Response> {
    let limit = super::upload_limit(state.files.max_bytes(), state.max_message_bytes);
    match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(_) => Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadUserInput,
            "the file is too large",
        )),
    }
}

/// Stores an uploaded file.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Query(query): Query<UploadQuery>,
    req: axum::extract::Request,
) -> Response {
    let headers = req.headers().clone();
    let actor = match caller(&state, &headers).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let Some(novel) = query.novel_id.as_deref().and_then(novel_id) else {
        return refuse_error(Error::invalid("novelId", "a novel's ID is needed"));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let bytes = match body(&state, req).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let name = query.name.unwrap_or_default();
    match state
        .files
        .upload(&actor, novel, &name, &content_type, &bytes)
        .await
    {
        Ok(file) => {
            let token = state.files.download_token(&file);
            let body = serde_json::json!({
                "id": to_id(file.id).as_str(),
                "name": file.name,
                "contentType": file.content_type,
                "size": file.size,
                "createdAt": file.created_at,
                "downloadUrl": crate::graphql::story::download_url(&file, &token),
            });
            super::http::json_response(StatusCode::CREATED, body.to_string(), false)
        }
        Err(e) => refuse_error(e),
    }
}

/// The query string of an import.
#[derive(Debug, serde::Deserialize)]
pub struct ImportQuery {
    name: Option<String>,
    #[serde(rename = "novelId")]
    novel_id: Option<String>,
    title: Option<String>,
    format: Option<String>,
    /// `true`: answer the preview (`previewImport`) and write nothing.
    #[serde(rename = "dryRun", default)]
    dry_run: bool,
}

/// Imports the request body as a manuscript (`importManuscript` without GraphQL).
pub async fn import(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ImportQuery>,
    req: axum::extract::Request,
) -> Response {
    let headers = req.headers().clone();
    let actor = match caller(&state, &headers).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let novel = match query.novel_id.as_deref() {
        None => None,
        Some(id) => match novel_id(id) {
            Some(n) => Some(n),
            None => return refuse_error(Error::invalid("novelId", "not a novel's ID")),
        },
    };
    let format = match query.format.as_deref() {
        None => None,
        Some(f) => match ManuscriptFormat::parse(&f.to_ascii_uppercase()) {
            Some(f) => Some(f),
            None => {
                return refuse_error(Error::invalid("format", "one of TXT, MARKDOWN, EPUB, DOCX"));
            }
        },
    };
    let bytes = match body(&state, req).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let request = znovel_domain::services::ImportManuscript {
        file_name: query.name.unwrap_or_default(),
        bytes,
        novel_id: novel,
        title: query.title,
        format,
    };
    if query.dry_run {
        return match state.files.preview_import(&actor, &request).await {
            Ok(p) => {
                let chapters: Vec<serde_json::Value> = p
                    .chapters
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "seq": c.seq,
                            "title": c.title,
                            "volume": c.volume,
                            "wordCount": c.word_count,
                            "excerpt": c.excerpt,
                        })
                    })
                    .collect();
                let body = serde_json::json!({
                    "format": p.format.as_str(),
                    "encoding": p.encoding,
                    "title": p.title,
                    "newNovel": p.new_novel,
                    "volumes": p.volumes,
                    "chapterCount": p.chapters.len(),
                    "wordCount": p.word_count,
                    "warnings": p.warnings,
                    "chapters": chapters,
                });
                super::http::json_response(StatusCode::OK, body.to_string(), false)
            }
            Err(e) => refuse_error(e),
        };
    }
    let Some(generation) = state.generation.clone() else {
        return refuse_error(Error::Unavailable(
            "manuscript import is not configured".into(),
        ));
    };
    match generation
        .import_manuscript(&actor, &state.files, request)
        .await
    {
        Ok((job, novel)) => {
            let body = serde_json::json!({
                "job": {
                    "id": to_id(job.id).as_str(),
                    "kind": job.kind.as_str(),
                    "status": job.status.as_str(),
                },
                "novel": { "id": to_id(novel.id).as_str(), "title": novel.title },
            });
            super::http::json_response(StatusCode::ACCEPTED, body.to_string(), false)
        }
        Err(e) => refuse_error(e),
    }
}

/// Serves one file.
pub async fn download(
    State(state): State<Arc<AppState>>,
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
