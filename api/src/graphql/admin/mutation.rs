//! Admin mutations: users, API keys, quota.

use super::inputs::*;
use super::types::{ApiKey, Tenant, User};
use crate::graphql::call;
use crate::graphql::errors::ResultExt;
use crate::graphql::ids::{decode, decode_opt};
use async_graphql::{Context, Object};
use znovel_domain::services as svc;

/// Admin mutations.
#[derive(Default)]
pub struct AdminMutation;

/// Admin mutations.
#[Object]
impl AdminMutation {
    /// Adds a user to the tenant. Needs ADMIN.
    #[tracing::instrument(skip_all, name = "createUser")]
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserInput,
    ) -> async_graphql::Result<CreateUserPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateUser {
            email: input.email,
            display_name: input.display_name,
            role: input.role.into(),
        };
        let user = User(s.admin.create_user(&actor, input).await.gql()?);
        Ok(CreateUserPayload { user })
    }

    /// Changes a user's role or display name. Needs ADMIN.
    #[tracing::instrument(skip_all, name = "updateUser")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user and the fields to change.")] input: UpdateUserInput,
    ) -> async_graphql::Result<UpdateUserPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let role = input.role.map(Into::into);
        let user = s
            .admin
            .update_user(&actor, id, role, input.display_name)
            .await
            .gql()?;
        Ok(UpdateUserPayload { user: User(user) })
    }

    /// Creates an API key and returns its secret, shown only this once. Anyone may create
    /// keys for themselves; only an ADMIN for others. A key never grants more than the
    /// caller's own role.
    #[tracing::instrument(skip_all, name = "createApiKey")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new key.")] input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let (s, actor) = call(ctx)?;
        let input = svc::CreateApiKey {
            name: input.name,
            scopes: input
                .scopes
                .map(|list| list.into_iter().map(Into::into).collect()),
            user_id: decode_opt(input.user_id.as_ref(), "userId")?,
        };
        let (key, secret) = s.admin.create_api_key(&actor, input).await.gql()?;
        Ok(CreateApiKeyPayload {
            api_key: ApiKey(key),
            secret,
        })
    }

    /// Revokes an API key (your own, or any for an ADMIN). Idempotent.
    #[tracing::instrument(skip_all, name = "revokeApiKey")]
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key to revoke.")] input: RevokeApiKeyInput,
    ) -> async_graphql::Result<RevokeApiKeyPayload> {
        let (s, actor) = call(ctx)?;
        let id = decode(&input.id, "id")?;
        let key = s.admin.revoke_api_key(&actor, id).await.gql()?;
        Ok(RevokeApiKeyPayload {
            api_key: ApiKey(key),
        })
    }

    /// Changes the tenant's quota. Needs ADMIN.
    #[tracing::instrument(skip_all, name = "updateQuota")]
    async fn update_quota(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The limits to change.")] input: UpdateQuotaInput,
    ) -> async_graphql::Result<UpdateQuotaPayload> {
        let (s, actor) = call(ctx)?;
        let change = svc::UpdateQuota {
            max_novels: input.max_novels,
            max_chapters_per_novel: input.max_chapters_per_novel,
            max_tokens_per_day: input.max_tokens_per_day,
            max_file_bytes: input.max_file_bytes,
        };
        let tenant = s.admin.update_quota(&actor, change).await.gql()?;
        Ok(UpdateQuotaPayload {
            tenant: Tenant(tenant),
        })
    }

    /// Changes the tenant's validation policy: whether a generated chapter with a
    /// continuity issue of severity ERROR is kept as a draft (`CLOSED`) or stored for
    /// review with its report (`OPEN`, the default). Needs ADMIN.
    #[tracing::instrument(skip_all, name = "updateValidationPolicy")]
    async fn update_validation_policy(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The policy to change.")] input: UpdateValidationPolicyInput,
    ) -> async_graphql::Result<UpdateValidationPolicyPayload> {
        let (s, actor) = call(ctx)?;
        let change = svc::UpdateValidationPolicy {
            fail_mode: input.fail_mode.map(Into::into),
        };
        let tenant = s
            .admin
            .update_validation_policy(&actor, change)
            .await
            .gql()?;
        Ok(UpdateValidationPolicyPayload {
            tenant: Tenant(tenant),
        })
    }
}
