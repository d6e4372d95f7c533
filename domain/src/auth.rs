//! Who is calling and what they may do: roles, API-key scopes, the [`Actor`] every
//! service call carries, and the API-key format.
//!
//! An API key reads `znk_<tenant id, 32 hex>_<secret, 43 base64url chars>`. The tenant id
//! in the key lets the server set the tenant (and PostgreSQL row-level security) before
//! it looks the key up; only the SHA-256 of the whole key is stored.

use crate::Error;
use crate::ids::{ApiKeyId, TenantId, UserId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

crate::model::str_enum! {
    /// A user's role in its tenant.
    Role {
        /// Manages users, keys, quotas and settings; may do everything a member may.
        Admin = "ADMIN",
        /// Creates and changes novels and everything in them.
        Member = "MEMBER",
        /// Reads only.
        Viewer = "VIEWER",
    }
}

impl Role {
    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Member => 1,
            Role::Admin => 2,
        }
    }

    /// Whether this role includes everything `other` may do.
    pub fn includes(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

crate::model::str_enum! {
    /// What an API key may do (never more than its user's role allows).
    Scope {
        /// Read queries.
        Read = "READ",
        /// Create and change story data.
        Write = "WRITE",
        /// Administer users, keys and settings.
        Admin = "ADMIN",
    }
}

/// The authenticated caller of a service operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The tenant every operation is scoped to.
    pub tenant_id: TenantId,
    /// The user acting.
    pub user_id: UserId,
    /// The effective role: the user's role, limited by the key's scopes.
    pub role: Role,
    /// The API key used, if one was.
    pub api_key_id: Option<ApiKeyId>,
    /// The request or trace id the actor is acting in, for the audit log.
    pub request_id: Option<String>,
}

impl Actor {
    /// Builds an actor whose role is the user's role limited by `scopes` (None = no limit).
    pub fn new(
        tenant_id: TenantId,
        user_id: UserId,
        user_role: Role,
        scopes: Option<&[Scope]>,
        api_key_id: Option<ApiKeyId>,
    ) -> Self {
        let role = match scopes {
            None => user_role,
            Some(scopes) => {
                let cap = if scopes.contains(&Scope::Admin) {
                    Role::Admin
                } else if scopes.contains(&Scope::Write) {
                    Role::Member
                } else {
                    Role::Viewer
                };
                if user_role.includes(cap) {
                    cap
                } else {
                    user_role
                }
            }
        };
        Self {
            tenant_id,
            user_id,
            role,
            api_key_id,
            request_id: None,
        }
    }

    /// The same actor, acting within the request `request_id`.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Fails with `Forbidden` unless the actor's role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), Error> {
        if self.role.includes(needed) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "this operation needs the {needed} role; you have {}",
                self.role
            )))
        }
    }

    /// Fails unless the actor may change story data (MEMBER or ADMIN).
    pub fn require_write(&self) -> Result<(), Error> {
        self.require(Role::Member)
    }

    /// Fails unless the actor administers its tenant.
    pub fn require_admin(&self) -> Result<(), Error> {
        self.require(Role::Admin)
    }
}

/// The prefix every API key starts with.
pub const API_KEY_PREFIX: &str = "znk_";

/// A freshly generated API key: the plaintext (shown once) and what is stored.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The whole key, to give to the client once.
    pub plaintext: String,
    /// Displayable beginning of the key.
    pub prefix: String,
    /// Hex SHA-256 of the whole key, to store.
    pub hash: String,
}

/// Generates a new API key for `tenant` with 256 bits of randomness.
pub fn generate_api_key(tenant: TenantId) -> GeneratedKey {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let plaintext = format!(
        "{API_KEY_PREFIX}{}_{}",
        tenant.as_uuid().simple(),
        URL_SAFE_NO_PAD.encode(secret)
    );
    let prefix = format!("{}…{}", &plaintext[..12], &plaintext[plaintext.len() - 4..]);
    let hash = hash_api_key(&plaintext);
    GeneratedKey {
        plaintext,
        prefix,
        hash,
    }
}

/// Hex SHA-256 of a key, as stored.
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the tenant out of a presented key; `Unauthenticated` if it is not shaped like one.
pub fn parse_api_key_tenant(key: &str) -> Result<TenantId, Error> {
    let rest = key
        .strip_prefix(API_KEY_PREFIX)
        .ok_or(Error::Unauthenticated)?;
    let (tenant, secret) = rest.split_once('_').ok_or(Error::Unauthenticated)?;
    if tenant.len() != 32 || secret.len() != 43 {
        return Err(Error::Unauthenticated);
    }
    Uuid::try_parse(tenant)
        .map(TenantId::from_uuid)
        .map_err(|_| Error::Unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_to_their_tenant() {
        let tenant = TenantId::new();
        let key = generate_api_key(tenant);
        assert_eq!(parse_api_key_tenant(&key.plaintext).ok(), Some(tenant));
        assert_eq!(key.hash, hash_api_key(&key.plaintext));
        assert!(!key.prefix.contains(&key.plaintext[20..40]));
        assert_ne!(generate_api_key(tenant).plaintext, key.plaintext);
    }

    #[test]
    fn malformed_keys_are_unauthenticated() {
        for bad in [
            "",
            "znk_",
            "znk_abc_def",
            "Bearer x",
            "znk_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(
                matches!(parse_api_key_tenant(bad), Err(Error::Unauthenticated)),
                "{bad}"
            );
        }
    }

    #[test]
    fn scopes_limit_but_never_raise_the_role() {
        let (t, u) = (TenantId::new(), UserId::new());
        assert_eq!(
            Actor::new(t, u, Role::Admin, Some(&[Scope::Read]), None).role,
            Role::Viewer
        );
        assert_eq!(
            Actor::new(t, u, Role::Viewer, Some(&[Scope::Admin]), None).role,
            Role::Viewer
        );
        assert_eq!(
            Actor::new(t, u, Role::Member, Some(&[Scope::Read, Scope::Write]), None).role,
            Role::Member
        );
        assert!(
            Actor::new(t, u, Role::Viewer, None, None)
                .require_write()
                .is_err()
        );
    }
}
