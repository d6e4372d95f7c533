//! Live announcements that a credential changed: an API key was revoked, a user's role
//! changed. Every process of a deployment hears them, so a long-lived connection
//! authenticated with that credential is re-checked at once instead of keeping the rights
//! it had when it connected.

use super::QueueError;
use crate::ids::{ApiKeyId, TenantId, UserId};
use async_trait::async_trait;

/// What changed about a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialChangeKind {
    /// An API key was revoked: connections authenticated with it lose all access.
    KeyRevoked,
    /// A user's role changed: connections acting as that user act with the new role.
    RoleChanged,
}

/// One credential change, scoped to its tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CredentialChange {
    /// The tenant the credential belongs to.
    pub tenant_id: TenantId,
    /// The user whose credentials changed (every key of that user for a role change).
    pub user_id: UserId,
    /// The revoked key, for [`CredentialChangeKind::KeyRevoked`].
    pub api_key_id: Option<ApiKeyId>,
    /// What changed.
    pub kind: CredentialChangeKind,
}

/// Live credential changes, across every process of a deployment.
///
/// Contract: a change published by any process reaches every subscriber subscribed at
/// that moment, in every process (including the publisher's). Delivery is live, not
/// durable: a lost announcement is caught up by the subscribers' periodic re-check, so
/// the database stays the record.
#[async_trait]
pub trait CredentialEvents: Send + Sync + 'static {
    /// Announces a change.
    async fn publish(&self, change: &CredentialChange) -> Result<(), QueueError>;
    /// Every change from now on, of every tenant. Ends only when the adapter shuts down.
    fn subscribe(&self) -> futures_core::stream::BoxStream<'static, CredentialChange>;
}
