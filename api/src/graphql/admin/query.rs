//! Admin queries: the caller, its tenant, users, API keys, the audit log.

use super::types::*;
use crate::graphql::call;
use crate::graphql::connection::{cost, page_request};
use crate::graphql::context;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::decode;
use async_graphql::{Context, ID, Object};

/// Admin queries.
#[derive(Default)]
pub struct AdminQuery;

/// Admin queries.
#[Object]
impl AdminQuery {
    /// The authenticated caller: its user, tenant and effective role.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        context::actor(ctx).map(Viewer)
    }

    /// The caller's tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        let (s, actor) = call(ctx)?;
        s.admin.tenant(&actor).await.gql().map(Tenant)
    }

    /// A user of the caller's tenant.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's ID.")] id: ID,
    ) -> async_graphql::Result<User> {
        let (s, actor) = call(ctx)?;
        let id = decode(&id, "id")?;
        s.admin.user(&actor, id).await.gql().map(User)
    }

    /// The tenant's users, oldest first. Needs ADMIN.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.admin.users(&actor, req).await.gql()?;
        Ok(UserConnection::new(page, &req))
    }

    /// API keys: an ADMIN sees all of the tenant's, others their own.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ApiKeyConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.admin.api_keys(&actor, req).await.gql()?;
        Ok(ApiKeyConnection::new(page, &req))
    }

    /// The tenant's audit log, newest first. Needs ADMIN.
    #[graphql(complexity = "cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100; default 20.")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last item of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<AuditEntryConnection> {
        let (s, actor) = call(ctx)?;
        let req = page_request(first, after.as_deref())?;
        let page = s.admin.audit_log(&actor, req).await.gql()?;
        Ok(AuditEntryConnection::new(page, &req))
    }
}
