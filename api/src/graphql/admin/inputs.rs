//! Admin mutation inputs and payloads.

use super::types::{ApiKey, Role, Scope, Tenant, User};
use async_graphql::{ID, InputObject, SimpleObject};

/// Input of `createUser`.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Email, unique per tenant.
    pub email: String,
    /// Name shown to others; default: the email's local part.
    pub display_name: Option<String>,
    /// What the user may do.
    pub role: Role,
}

/// Input of `updateUser`: unset fields are left unchanged.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The user.
    pub id: ID,
    /// New role (an admin cannot remove its own ADMIN role).
    pub role: Option<Role>,
    /// New display name.
    pub display_name: Option<String>,
}

/// Input of `createApiKey`.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// A label for the key.
    pub name: String,
    /// What it may do; default: every scope (still limited by the user's role).
    pub scopes: Option<Vec<Scope>>,
    /// The user it acts as; default: the caller. Only an ADMIN may name another user.
    pub user_id: Option<ID>,
}

/// Input of `revokeApiKey`.
#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    /// The key (your own, or any key of the tenant for an ADMIN).
    pub id: ID,
}

/// Input of `updateQuota`: unset limits are left unchanged.
#[derive(InputObject)]
pub struct UpdateQuotaInput {
    /// Most novels the tenant may hold.
    pub max_novels: Option<i64>,
    /// Most chapters per novel.
    pub max_chapters_per_novel: Option<i64>,
    /// Most LLM tokens per UTC day.
    pub max_tokens_per_day: Option<i64>,
    /// Most bytes all the tenant's stored files (manuscripts, exported books) may take.
    pub max_file_bytes: Option<i64>,
}

/// Result of `createUser`.
#[derive(SimpleObject)]
pub struct CreateUserPayload {
    /// The new user.
    pub user: User,
}

/// Result of `updateUser`.
#[derive(SimpleObject)]
pub struct UpdateUserPayload {
    /// The changed user.
    pub user: User,
}

/// Result of `createApiKey`.
#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The new key.
    pub api_key: ApiKey,
    /// The key itself, to send as `Authorization: Bearer <secret>`. Shown only this once.
    pub secret: String,
}

/// Result of `revokeApiKey`.
#[derive(SimpleObject)]
pub struct RevokeApiKeyPayload {
    /// The revoked key.
    pub api_key: ApiKey,
}

/// Result of `updateQuota`.
#[derive(SimpleObject)]
pub struct UpdateQuotaPayload {
    /// The tenant with its new quota.
    pub tenant: Tenant,
}

/// Input of `updateValidationPolicy`.
#[derive(InputObject)]
pub struct UpdateValidationPolicyInput {
    /// What happens to a generated chapter with an ERROR issue: `OPEN` stores it for
    /// review with its report, `CLOSED` keeps it as a draft. Unchanged when omitted.
    pub fail_mode: Option<super::types::ValidationFailMode>,
}

/// Result of `updateValidationPolicy`.
#[derive(SimpleObject)]
pub struct UpdateValidationPolicyPayload {
    /// The tenant with its new policy.
    pub tenant: Tenant,
}
