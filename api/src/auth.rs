//! Turns presented credentials into an [`Actor`]: API keys (`znk_…`, in
//! `Authorization: Bearer`, `X-Api-Key`, or the WebSocket `connection_init` payload) and
//! signed JWT bearer tokens (HS256 with `JWT_SECRET` or RS256 with `JWT_PUBLIC_KEY`;
//! `iss`/`aud` checked when configured). A token names its tenant in the `tid` claim and
//! its user in `sub`; the user's current role applies.

use crate::config::JwtSettings;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use znovel_domain::Error;
use znovel_domain::auth::{API_KEY_PREFIX, Actor};
use znovel_domain::ids::{TenantId, UserId};
use znovel_domain::services::AdminService;

/// The claims Z-Novel reads from a bearer token.
#[derive(Debug, Deserialize)]
struct Claims {
    /// The user id.
    sub: uuid::Uuid,
    /// The tenant id.
    tid: uuid::Uuid,
    /// When the token expires (seconds since the epoch).
    exp: Option<i64>,
}

/// Verifies credentials.
#[derive(Clone)]
pub struct Authenticator {
    admin: AdminService,
    jwt: Option<(DecodingKey, Validation)>,
}

impl Authenticator {
    /// Builds the authenticator; fails on an unreadable JWT key (naming the variable).
    pub fn new(admin: AdminService, settings: &JwtSettings) -> anyhow::Result<Self> {
        let key = match (&settings.public_key, &settings.secret) {
            (Some(pem), _) => Some((
                DecodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|e| {
                    anyhow::anyhow!(
                        "invalid value for JWT_PUBLIC_KEY: not an RSA public key in PEM: {e}"
                    )
                })?,
                Algorithm::RS256,
            )),
            (None, Some(secret)) => Some((
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                Algorithm::HS256,
            )),
            (None, None) => None,
        };
        let jwt = key.map(|(key, alg)| {
            let mut v = Validation::new(alg);
            v.set_required_spec_claims(&["exp", "sub"]);
            v.leeway = 30;
            // A token not yet valid (`nbf` in the future) is refused like an expired one.
            v.validate_nbf = true;
            if let Some(iss) = &settings.issuer {
                v.set_issuer(&[iss]);
            }
            match &settings.audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            (key, v)
        });
        Ok(Self { admin, jwt })
    }

    /// Authenticates a bearer credential: an API key or a JWT. Every failure is
    /// `Unauthenticated`.
    pub async fn authenticate(&self, credential: &str) -> Result<Actor, Error> {
        self.authenticate_until(credential, false)
            .await
            .map(|(actor, _)| actor)
    }

    /// Authenticates like [`Self::authenticate`] and says until when the credential is
    /// valid: a JWT's `exp` (seconds since the epoch); `None` for an API key (valid until
    /// revoked). `fresh` skips the cache of recent API key authentications.
    pub async fn authenticate_until(
        &self,
        credential: &str,
        fresh: bool,
    ) -> Result<(Actor, Option<i64>), Error> {
        let credential = credential.trim();
        if credential.starts_with(API_KEY_PREFIX) {
            let actor = if fresh {
                self.admin.authenticate_api_key_fresh(credential).await?
            } else {
                self.admin.authenticate_api_key(credential).await?
            };
            return Ok((actor, None));
        }
        let Some((key, validation)) = &self.jwt else {
            return Err(Error::Unauthenticated);
        };
        let data = decode::<Claims>(credential, key, validation).map_err(|e| {
            tracing::debug!(error = %e, "bearer token rejected");
            Error::Unauthenticated
        })?;
        let actor = self
            .admin
            .actor_for_user(
                TenantId::from_uuid(data.claims.tid),
                UserId::from_uuid(data.claims.sub),
            )
            .await?;
        Ok((actor, data.claims.exp))
    }

    /// The admin service credentials are checked against.
    pub fn admin(&self) -> &AdminService {
        &self.admin
    }

    /// Extracts the credential from an `Authorization` header value (`Bearer x`, any case).
    pub fn from_authorization(value: &str) -> Option<&str> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }

    /// Extracts the credential from a `connection_init` payload: `{"Authorization":
    /// "Bearer …"}` (any key case), `{"apiKey": "…"}` or `{"token": "…"}`.
    pub fn from_connection_params(payload: &serde_json::Value) -> Option<String> {
        let obj = payload.as_object()?;
        for (k, v) in obj {
            let Some(v) = v.as_str() else { continue };
            match k.to_ascii_lowercase().as_str() {
                "authorization" => return Self::from_authorization(v).map(str::to_owned),
                "apikey" | "api_key" | "x-api-key" | "token" => return Some(v.to_owned()),
                _ => {}
            }
        }
        // Some clients nest headers: {"headers": {"Authorization": "Bearer …"}}.
        obj.get("headers").and_then(Self::from_connection_params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_are_found_where_clients_put_them() {
        assert_eq!(Authenticator::from_authorization("Bearer abc"), Some("abc"));
        assert_eq!(
            Authenticator::from_authorization("bearer  abc "),
            Some("abc")
        );
        assert_eq!(Authenticator::from_authorization("Basic abc"), None);
        assert_eq!(
            Authenticator::from_connection_params(&json!({"Authorization": "Bearer k"})),
            Some("k".into())
        );
        assert_eq!(
            Authenticator::from_connection_params(&json!({"apiKey": "k"})),
            Some("k".into())
        );
        assert_eq!(
            Authenticator::from_connection_params(
                &json!({"headers": {"authorization": "Bearer k"}})
            ),
            Some("k".into())
        );
        assert_eq!(Authenticator::from_connection_params(&json!({})), None);
    }
}
