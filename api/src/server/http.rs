//! GraphQL over HTTP (`POST` and `GET /graphql`, per the GraphQL-over-HTTP spec): media
//! types, status codes, and the credential of a request (`Authorization: Bearer <key or
//! JWT>` or `X-Api-Key`). A `GET` with a WebSocket upgrade goes to [`super::ws`]; a `POST`
//! with `Accept: text/event-stream` to [`super::sse`].

use super::AppState;
use crate::auth::Authenticator;
use crate::graphql::context::RequestCtx;
use crate::graphql::errors::{ErrorCode, to_gql};
use crate::graphql::trusted::ReadOnlyRequest;
use async_graphql::{Executor, ParseRequestError, ServerError};
use async_graphql_axum::GraphQLRequest;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use znovel_domain::Error;
use znovel_domain::auth::Actor;

/// The media type of GraphQL-over-HTTP responses.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A request that is not a GraphQL request at all (bad JSON, missing query, too large):
/// answered as a GraphQL error with code `BAD_USER_INPUT` (HTTP 400) or 413.
pub struct Rejection(ParseRequestError);

impl From<ParseRequestError> for Rejection {
    fn from(e: ParseRequestError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            ParseRequestError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large".to_owned(),
            ),
            ParseRequestError::InvalidRequest(e) => (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {e}"),
            ),
            other => (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {other}"),
            ),
        };
        error_body(status, ErrorCode::BadUserInput, &message, true)
    }
}

/// A GraphQL error response without data, with one error carrying `code`.
pub fn error_body(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    graphql_media: bool,
) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    json_response(status, body.to_string(), graphql_media)
}

/// A JSON response with the GraphQL-over-HTTP media type (or plain JSON for legacy
/// clients).
pub(super) fn json_response(status: StatusCode, body: String, graphql_media: bool) -> Response {
    let ct = if graphql_media {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

/// Whether the client accepts `application/graphql-response+json` (else: `application/json`,
/// per the spec's legacy-client rule).
fn wants_graphql_media(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains(GRAPHQL_RESPONSE) || !a.contains("application/json"))
}

/// The request id (set by the request-id middleware), for logs and the audit log.
pub(super) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Finds the credential of an HTTP request, if any.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Authenticator::from_authorization(v).or(Some(""));
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Actor>, Error> {
    match credential(headers) {
        None => Ok(None),
        Some(c) => state.auth.authenticate(c).await.map(Some),
    }
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the URL (queries only: a mutation
/// over GET is 405, so a link or an image tag cannot change anything).
pub async fn get(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if is_upgrade {
        return super::ws::upgrade(state, req).await;
    }
    serve(state, req, Method::Get).await
}

/// The media type of a request, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether a request is a GraphQL multipart request (a file upload).
pub(super) fn is_multipart(headers: &HeaderMap) -> bool {
    media_type(headers) == "multipart/form-data"
}

/// `POST /graphql`: `Content-Type: application/json`, or `multipart/form-data` for the
/// GraphQL multipart request spec (file uploads: `previewImport`, `importManuscript`).
/// Anything else is 415: a `text/plain` or url-encoded form POST from another site
/// must not run an operation. A multipart form can be sent by another site too, but not
/// with a credential header, and the public endpoint refuses a request without one
/// before reading its body (credentials are never cookies).
pub async fn post(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let media = media_type(req.headers());
    if media != "application/json" && media != "multipart/form-data" {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadUserInput,
            "POST /graphql needs Content-Type: application/json (or multipart/form-data for an upload)",
            wants_graphql_media(req.headers()),
        );
    }
    serve(state, req, Method::Post).await
}

/// Reads a GraphQL multipart request: one file, at most the upload limit (the file
/// limit plus the ordinary body limit, so a file somewhat over the file limit gets the
/// clear `BAD_USER_INPUT` of the file check, and a far larger one 413).
async fn multipart(state: &AppState, req: Request) -> Result<async_graphql::Request, Rejection> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = super::upload_limit(state.files.max_bytes(), state.max_message_bytes);
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ParseRequestError::PayloadTooLarge)?;
    let options = async_graphql::http::MultipartOptions::default()
        .max_file_size(limit)
        .max_num_files(1);
    Ok(async_graphql::http::receive_body(content_type, &body[..], options).await?)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// One GraphQL request over HTTP: the credential first (a request without one is refused
/// on the public endpoint before its body is read), then the body, then execution.
async fn serve(state: Arc<AppState>, req: Request, method: Method) -> Response {
    let graphql_media = wants_graphql_media(req.headers());
    let headers = req.headers().clone();
    if !state.behind_router && credential(&headers).is_none() {
        return unauthenticated(&state, Error::Unauthenticated, graphql_media);
    }
    let actor = match authenticate(&state, &headers).await {
        Ok(a) => a,
        Err(e) => return unauthenticated(&state, e, graphql_media),
    };
    if let Some(a) = &actor
        && let Err(e) = state.limits.check(a).await
    {
        return super::limits::refused(&state, e, graphql_media);
    }
    let parsed = if method == Method::Post && is_multipart(&headers) {
        multipart(&state, req).await
    } else {
        GraphQLRequest::<Rejection>::from_request(req, &state)
            .await
            .map(GraphQLRequest::into_inner)
    };
    let mut gql = match parsed {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    if method == Method::Get {
        // A document found by its persisted-query hash is checked once resolved.
        gql = gql.data(ReadOnlyRequest);
    }
    if method == Method::Get && is_mutation(&mut gql) {
        let mut resp = error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadUserInput,
            "mutations need POST",
            graphql_media,
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return resp;
    }
    let request_id = request_id(&headers);
    if super::sse::wants_event_stream(&headers) {
        let request = gql.data(RequestCtx { actor, request_id });
        return super::sse::event_stream(&state, request, credential(&headers)).await;
    }
    let resp = state
        .executor
        .execute(gql.data(RequestCtx { actor, request_id }))
        .await;
    // GraphQL-over-HTTP: a request that failed before execution (parse, validation,
    // limits: errors without a path, no data) is a 400 with the new media type; field
    // errors during execution stay 200.
    let request_error = resp.data == async_graphql::Value::Null
        && resp.is_err()
        && resp.errors.iter().all(|e| e.path.is_empty());
    let status = if graphql_media && request_error {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // A request error has no `data` entry at all under the new media type (the spec's
    // SHOULD; async-graphql writes `"data": null`). Anything else is written straight to
    // its bytes, not through a `serde_json::Value` (a copy of every string in the answer),
    // by sonic-rs: the bytes serde_json writes (`sonic_rs_writes_what_serde_json_writes`),
    // with strings scanned for what needs escaping 32 bytes at a time instead of one.
    let body = if status == StatusCode::BAD_REQUEST {
        serde_json::to_value(&resp)
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("data");
                }
                v.to_string()
            })
            .map_err(|e| e.to_string())
    } else {
        sonic_rs::to_string(&resp).map_err(|e| e.to_string())
    };
    match body {
        Ok(body) => json_response(status, body, graphql_media),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a GraphQL response");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
                graphql_media,
            )
        }
    }
}

/// Whether the operation the request selects is a mutation (a document that does not
/// parse is left to the executor, which reports it).
fn is_mutation(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    doc.operations.iter().any(|(n, op)| {
        op.node.ty == async_graphql::parser::types::OperationType::Mutation
            && (name.is_none() || n.map(|n| n.as_str()) == name.as_deref())
    })
}

/// The error of a refused credential, with `WWW-Authenticate: Bearer`: HTTP 401 on the
/// public endpoint; 200 behind a router, which would add an error of its own for a
/// subgraph's non-2xx answer (and answers its client 200 anyway).
fn unauthenticated(state: &AppState, e: Error, graphql_media: bool) -> Response {
    let err = to_gql(e);
    let mut resp =
        async_graphql::Response::from_errors(vec![ServerError::new(err.message.clone(), None)]);
    if let Some(first) = resp.errors.first_mut() {
        first.extensions = err.extensions;
    }
    state
        .metrics
        .graphql_errors
        .with_label_values(&[ErrorCode::Unauthenticated.as_str()])
        .inc();
    let body = serde_json::to_string(&resp).unwrap_or_default();
    let status = if state.behind_router {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    let mut out = json_response(status, body, graphql_media);
    out.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    out
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Pos, Response, ServerError, Value};
    use serde_json::json;

    /// A response with every kind of value: each ASCII character (the control characters,
    /// `"`, `\\`, `/`), multi-byte text around 32-byte boundaries, numbers at their
    /// limits, nesting, and an error with locations, path and extensions.
    fn every_kind_of_response() -> Response {
        let ascii: String = (0u8..=0x7f).map(char::from).collect();
        let mut texts = vec![
            Value::String(ascii.clone()),
            Value::String(ascii.repeat(3)),
            Value::String("潮水漫过黑色的礁石，玛拉守着灯。\"引号\"\n😀🌊".repeat(40)),
            Value::String(String::new()),
        ];
        for offset in 0..40 {
            let mut s = "x".repeat(offset);
            s.push_str("é\u{1}\"\\\t\u{7f}\u{2028}\u{fffd}");
            texts.push(Value::String(s));
        }
        let numbers = json!([
            0,
            -1,
            i64::MIN,
            i64::MAX,
            u64::MAX,
            0.1,
            -0.0,
            1.5e300,
            2.2250738585072014e-308,
            123456789.125,
            1e21,
            1e-7,
            5e-324,
            f64::MAX
        ]);
        let data = Value::from_json(json!({
            "numbers": numbers,
            "flags": [true, false, null],
            "nested": {"a": {"b": [[], {}, [1, [2, [3]]]]}, "émoji 😀": "key"},
        }))
        .unwrap_or(Value::Null);
        let mut obj = async_graphql::indexmap::IndexMap::new();
        obj.insert(Name::new("texts"), Value::List(std::mem::take(&mut texts)));
        obj.insert(Name::new("rest"), data);
        let mut resp = Response::new(Value::Object(obj));
        let mut err = ServerError::new("bad \"thing\"\n\u{1}", Some(Pos { line: 3, column: 7 }));
        err.path = vec![
            async_graphql::PathSegment::Field("chapter".into()),
            async_graphql::PathSegment::Index(2),
        ];
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", "BAD_USER_INPUT");
        ext.set("retryAfterSeconds", 1.25);
        err.extensions = Some(ext);
        resp.errors.push(err);
        resp
    }

    #[test]
    fn sonic_rs_writes_what_serde_json_writes() {
        let resp = every_kind_of_response();
        let serde = serde_json::to_string(&resp).unwrap_or_default();
        let sonic = sonic_rs::to_string(&resp).unwrap_or_default();
        assert!(serde.len() > 5_000, "{}", serde.len());
        assert_eq!(sonic, serde);
    }
}
