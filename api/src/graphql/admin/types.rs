//! Admin object types: `Viewer`, `Tenant`, `Quota`, `User`, `ApiKey`, `AuditEntry`, their
//! enums and connections. An API key's secret hash is never exposed.

use crate::graphql::connection::connection;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{self, opt_id, to_id};
use crate::graphql::{Json, call};
use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use znovel_domain::auth::Actor;
use znovel_domain::model as m;

/// A user's role in its tenant.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::auth::Role")]
pub enum Role {
    /// Manages users, keys, quotas and settings; may do everything a member may.
    Admin,
    /// Creates and changes novels and everything in them.
    Member,
    /// Reads only.
    Viewer,
}

/// What an API key may do (never more than its user's role allows).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::auth::Scope")]
pub enum Scope {
    /// Read queries.
    Read,
    /// Create and change story data.
    Write,
    /// Administer users, keys and settings.
    Admin,
}

/// Whether a tenant may use the service.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::TenantStatus")]
pub enum TenantStatus {
    /// In service.
    Active,
    /// Every request is refused.
    Suspended,
}

/// The authenticated caller.
pub struct Viewer(pub Actor);

/// The authenticated caller.
#[Object]
impl Viewer {
    /// The user acting.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let (s, actor) = call(ctx)?;
        s.admin.user(&actor, self.0.user_id).await.gql().map(User)
    }
    /// The caller's tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        let (s, actor) = call(ctx)?;
        s.admin.tenant(&actor).await.gql().map(Tenant)
    }
    /// The effective role: the user's role, limited by the API key's scopes.
    async fn role(&self) -> Role {
        self.0.role.into()
    }
    /// ID of the API key the request authenticated with, if one was used.
    async fn api_key_id(&self) -> Option<ID> {
        opt_id(self.0.api_key_id)
    }
}

/// Limits of a tenant, and what it has used of them.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Quota {
    /// Most novels the tenant may hold (archived ones count).
    pub max_novels: i64,
    /// Most chapters per novel.
    pub max_chapters_per_novel: i64,
    /// Most LLM tokens per UTC day.
    pub max_tokens_per_day: i64,
    /// Most bytes all the tenant's stored files (uploaded manuscripts, exported books)
    /// may take together.
    pub max_file_bytes: i64,
}

#[ComplexObject]
impl Quota {
    /// LLM tokens (prompt + completion) the tenant used since midnight UTC; generation
    /// is refused with `QUOTA_EXCEEDED` once it reaches `maxTokensPerDay`.
    async fn tokens_used_today(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let (s, actor) = call(ctx)?;
        s.admin
            .quota_usage(&actor)
            .await
            .gql()
            .map(|u| u.tokens_used_today)
    }
    /// Novels the tenant holds (archived ones count); creating one is refused with
    /// `QUOTA_EXCEEDED` once it reaches `maxNovels`.
    async fn novels(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let (s, actor) = call(ctx)?;
        s.admin.quota_usage(&actor).await.gql().map(|u| u.novels)
    }
    /// Bytes the tenant's stored files take; an upload, import or export that would
    /// pass `maxFileBytes` is refused with `QUOTA_EXCEEDED`.
    async fn file_bytes_used(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let (s, actor) = call(ctx)?;
        s.admin
            .quota_usage(&actor)
            .await
            .gql()
            .map(|u| u.file_bytes)
    }
}

/// A tenant: the isolation boundary; nothing crosses tenants.
pub struct Tenant(pub m::Tenant);

/// A tenant: the isolation boundary; nothing crosses tenants.
#[Object]
impl Tenant {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Unique URL-safe handle.
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Whether it is in service.
    async fn status(&self) -> TenantStatus {
        self.0.status.into()
    }
    /// Its limits.
    async fn quota(&self) -> Quota {
        let q = self.0.quota;
        Quota {
            max_novels: q.max_novels,
            max_chapters_per_novel: q.max_chapters_per_novel,
            max_tokens_per_day: q.max_tokens_per_day,
            max_file_bytes: q.max_file_bytes,
        }
    }
    /// What happens to a generated chapter with a continuity issue of severity ERROR
    /// (`OPEN` unless `updateValidationPolicy` set it).
    async fn validation_fail_mode(&self) -> ValidationFailMode {
        znovel_domain::services::fail_mode(&self.0.settings).into()
    }
    /// Tenant settings (model choice, validation policy, feature flags), a JSON object.
    async fn settings(&self) -> Json {
        Json::from(self.0.settings.clone())
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A user of a tenant.
pub struct User(pub m::User);

/// A user of a tenant.
#[Object]
impl User {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Email, unique per tenant, lower-case.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Name shown to others.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// What the user may do.
    async fn role(&self) -> Role {
        self.0.role.into()
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An API key. Its secret is shown once, by `createApiKey`; only a hash is stored.
pub struct ApiKey(pub m::ApiKey);

/// An API key. Its secret is shown once, by `createApiKey`; only a hash is stored.
#[Object]
impl ApiKey {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the user it acts as.
    async fn user_id(&self) -> ID {
        to_id(self.0.user_id)
    }
    /// The user it acts as.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let (s, actor) = call(ctx)?;
        s.admin.user(&actor, self.0.user_id).await.gql().map(User)
    }
    /// A label chosen by its creator.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The first and last characters of the key, to recognise it in lists.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    /// What it may do, further limited by its user's role.
    async fn scopes(&self) -> Vec<Scope> {
        self.0.scopes.iter().map(|s| (*s).into()).collect()
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Last time it authenticated a request (updated at most once a minute).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    /// When it was revoked; a revoked key never authenticates again.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// An audit-log entry: who did what to which resource, and when.
pub struct AuditEntry(pub m::AuditEntry);

/// An audit-log entry: who did what to which resource, and when.
#[Object]
impl AuditEntry {
    /// Global ID.
    pub async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// ID of the acting user, if a user acted.
    async fn actor_user_id(&self) -> Option<ID> {
        opt_id(self.0.actor_user_id)
    }
    /// What was done, e.g. `novel.create`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The resource's GraphQL type, e.g. `Novel`.
    async fn resource_type(&self) -> &str {
        &self.0.resource_type
    }
    /// The resource's global ID (usable with `node`), or its raw id when it has none.
    async fn resource_id(&self) -> ID {
        let raw = &self.0.resource_id;
        match uuid::Uuid::try_parse(raw) {
            Ok(uuid) if ids::TYPES.contains(&self.0.resource_type.as_str()) => {
                ID(ids::encode_raw(&self.0.resource_type, uuid))
            }
            _ => ID(raw.clone()),
        }
    }
    /// The request or trace id it happened in.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// Extra detail, a JSON object (never secrets or chapter text).
    async fn detail(&self) -> Json {
        Json::from(self.0.detail.clone())
    }
    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    UserConnection,
    UserEdge,
    User,
    m::User,
    "A page of users.",
    "A user in a page of users."
);
connection!(
    ApiKeyConnection,
    ApiKeyEdge,
    ApiKey,
    m::ApiKey,
    "A page of API keys.",
    "An API key in a page of API keys."
);
connection!(
    AuditEntryConnection,
    AuditEntryEdge,
    AuditEntry,
    m::AuditEntry,
    "A page of the audit log.",
    "An entry in a page of the audit log."
);

/// What a tenant does with a generated chapter that has a continuity issue of severity
/// ERROR.
#[derive(async_graphql::Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(remote = "znovel_domain::model::ValidationFailMode")]
pub enum ValidationFailMode {
    /// Fail open: store it for review with its report; the author decides.
    Open,
    /// Fail closed: keep it as a draft until the author fixes or accepts it.
    Closed,
}
