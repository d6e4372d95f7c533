//! Tenants, users, API keys and the audit log.

use super::str_enum;
use crate::auth::{Role, Scope};
use crate::ids::{ApiKeyId, AuditId, TenantId, UserId};
use chrono::{DateTime, Utc};

str_enum! {
    /// Whether a tenant may use the service.
    TenantStatus {
        /// In service.
        Active = "ACTIVE",
        /// Every request is refused.
        Suspended = "SUSPENDED",
    }
}

/// Limits of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Most novels the tenant may hold (archived ones count).
    pub max_novels: i64,
    /// Most chapters per novel.
    pub max_chapters_per_novel: i64,
    /// Most LLM tokens per UTC day.
    pub max_tokens_per_day: i64,
    /// Most bytes the tenant's stored files (uploaded manuscripts, exported books) may
    /// take together.
    pub max_file_bytes: i64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_novels: 1_000,
            max_chapters_per_novel: 5_000,
            max_tokens_per_day: 10_000_000,
            max_file_bytes: 1 << 30,
        }
    }
}

/// A tenant: the isolation boundary; nothing crosses tenants.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Identity.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Unique URL-safe handle.
    pub slug: String,
    /// Whether it is in service.
    pub status: TenantStatus,
    /// Its limits.
    pub quota: Quota,
    /// Tenant settings (model choice, validation policy, feature flags), free-form JSON.
    pub settings: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Identity.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Email, unique per tenant, lower-case.
    pub email: String,
    /// Name shown to others.
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An API key. Only its SHA-256 hash is stored; the secret is shown once at creation.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Identity.
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The user it acts as.
    pub user_id: UserId,
    /// A label chosen by its creator.
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub secret_hash: String,
    /// What it may do, further limited by its user's role.
    pub scopes: Vec<Scope>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key never authenticates again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who did what to which resource, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Identity.
    pub id: AuditId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The acting user, if a user acted.
    pub actor_user_id: Option<UserId>,
    /// What was done, e.g. `novel.create`.
    pub action: String,
    /// Resource type, e.g. `Novel`.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// The request or trace id it happened in.
    pub request_id: Option<String>,
    /// Extra detail (never secrets or chapter text).
    pub detail: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}
