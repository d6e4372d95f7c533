//! Unit tests of the GraphQL layer, with no database: global IDs and error mapping
//! ([`ids`]), the SDL contract, federation and limits ([`schema`]), and resolvers over
//! an in-memory store ([`resolvers`], [`fake`]).

mod fake;
mod fake_memory;
mod fake_recall;
mod ids;
mod resolvers;
mod schema;

use super::context::RequestCtx;
use super::errors::finalize_response;
use super::{AppSchema, SchemaLimits, build_schema};
use async_graphql::{Request, Response, Variables};
use std::sync::Arc;
use znovel_domain::auth::{Actor, Role};
use znovel_domain::services::{CreateTenant, Services};

/// A gateway schema over a fresh in-memory store.
fn harness() -> (AppSchema, Services) {
    let services = Services::new(Arc::new(fake::FakeStore::default()));
    (
        build_schema(services.clone(), &SchemaLimits::default()),
        services,
    )
}

/// A new tenant; returns its first admin acting.
async fn new_tenant(services: &Services, slug: &str) -> Actor {
    let t = services
        .admin
        .create_tenant(CreateTenant {
            name: slug.into(),
            slug: slug.into(),
            admin_email: format!("admin@{slug}.example"),
            admin_name: None,
        })
        .await
        .unwrap();
    Actor::new(t.tenant.id, t.admin.id, Role::Admin, None, None)
}

/// Runs `query` as `actor` (anonymous when `None`), finalized as the transports do.
async fn run(
    schema: &AppSchema,
    actor: Option<&Actor>,
    query: &str,
    vars: serde_json::Value,
) -> Response {
    let ctx = RequestCtx {
        actor: actor.cloned(),
        request_id: "test-request".into(),
    };
    let req = Request::new(query)
        .variables(Variables::from_json(vars))
        .data(ctx);
    let mut resp = schema.execute(req).await;
    finalize_response(&mut resp);
    resp
}

/// The response data as JSON, asserting there were no errors.
fn ok(resp: Response) -> serde_json::Value {
    assert!(
        resp.errors.is_empty(),
        "unexpected errors: {:?}",
        resp.errors
    );
    resp.data.into_json().unwrap()
}

/// `extensions.code` (and `extensions.field`) of the first error.
fn first_error(resp: &Response) -> (String, Option<String>, String) {
    let err = resp.errors.first().expect("an error");
    let ext = err.extensions.as_ref().expect("extensions");
    let s = |k: &str| {
        ext.get(k).map(|v| match v {
            async_graphql::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    (s("code").expect("a code"), s("field"), err.message.clone())
}
