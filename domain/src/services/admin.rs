//! Admin service: tenants, users, API keys, and turning credentials into an [`Actor`].

use super::{audit, now};
use crate::StoreError;
use crate::auth::{self, Actor, Role, Scope};
use crate::error::{Error, StoreResultExt};
use crate::ids::*;
use crate::model::*;
use crate::page::{Page, PageRequest};
use crate::ports::{CredentialChange, CredentialChangeKind, CredentialEvents, Store};
use crate::text::{self, Email, MAX_NAME, Slug};
use chrono::TimeDelta;
use std::sync::Arc;

/// How stale `last_used_at` may get before an authentication refreshes it.
pub const LAST_USED_RESOLUTION: TimeDelta = TimeDelta::seconds(60);

/// Input of [`AdminService::create_tenant`].
#[derive(Debug, Clone)]
pub struct CreateTenant {
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub slug: String,
    /// Email of the first admin user.
    pub admin_email: String,
    /// Display name of the first admin; default: the email's local part.
    pub admin_name: Option<String>,
}

/// What a tenant has used of its [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Novels held (archived ones count).
    pub novels: i64,
    /// LLM tokens (prompt + completion) used since midnight UTC.
    pub tokens_used_today: i64,
    /// Bytes the tenant's stored files take.
    pub file_bytes: i64,
}

/// What [`AdminService::create_tenant`] made. `api_key` is the only copy of the secret.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first admin.
    pub admin: User,
    /// The admin's first API key, in plaintext.
    pub api_key: String,
}

/// Input of [`AdminService::create_user`].
#[derive(Debug, Clone)]
pub struct CreateUser {
    /// Email, unique per tenant.
    pub email: String,
    /// Display name; default: the email's local part.
    pub display_name: Option<String>,
    /// Role.
    pub role: Role,
}

/// Input of [`AdminService::create_api_key`].
#[derive(Debug, Clone)]
pub struct CreateApiKey {
    /// Label.
    pub name: String,
    /// Scopes; default: every scope the user's role allows.
    pub scopes: Option<Vec<Scope>>,
    /// The user the key acts as; default: the caller. Only an ADMIN may name another user.
    pub user_id: Option<UserId>,
}

/// Input of [`AdminService::update_quota`]: `None` leaves a limit unchanged.
#[derive(Debug, Clone, Default)]
pub struct UpdateQuota {
    /// New novel limit.
    pub max_novels: Option<i64>,
    /// New chapters-per-novel limit.
    pub max_chapters_per_novel: Option<i64>,
    /// New daily token limit.
    pub max_tokens_per_day: Option<i64>,
    /// New limit of the bytes all the tenant's files take.
    pub max_file_bytes: Option<i64>,
}

/// Input of [`AdminService::update_validation_policy`].
#[derive(Debug, Clone, Default)]
pub struct UpdateValidationPolicy {
    /// What happens to a generated chapter with an ERROR issue.
    pub fail_mode: Option<crate::model::ValidationFailMode>,
}

fn default_name(email: &Email) -> String {
    email
        .as_str()
        .split('@')
        .next()
        .unwrap_or("user")
        .to_owned()
}

/// How long an authenticated API key is trusted without asking the database again. A
/// revoked key or a changed role takes effect at once in the process that made the
/// change, and within this time in every other process.
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Most cached authentications (the cache is cleared when full).
const AUTH_CACHE_MAX: usize = 10_000;

/// Recently authenticated keys: key hash → (actor, when authenticated).
#[derive(Default)]
struct AuthCache(std::sync::Mutex<std::collections::HashMap<String, (Actor, std::time::Instant)>>);

impl AuthCache {
    fn get(&self, hash: &str) -> Option<Actor> {
        let map = self.0.lock().ok()?;
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < AUTH_CACHE_TTL)
            .map(|(a, _)| a.clone())
    }

    fn put(&self, hash: String, actor: Actor) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= AUTH_CACHE_MAX {
                map.clear();
            }
            map.insert(hash, (actor, std::time::Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
    }
}

/// Tenants, users, keys and authentication.
#[derive(Clone)]
pub struct AdminService {
    store: Arc<dyn Store>,
    auth_cache: Arc<AuthCache>,
    events: Option<Arc<dyn CredentialEvents>>,
}

impl AdminService {
    /// Builds the service.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            auth_cache: Arc::default(),
            events: None,
        }
    }

    /// The same service, announcing every revocation and role change on `events`, so
    /// every process re-checks the connections that used the credential.
    pub fn with_credential_events(mut self, events: Arc<dyn CredentialEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Forgets every cached authentication: the next one asks the database. Called when
    /// another process announces a credential change.
    pub fn forget_cached(&self) {
        self.auth_cache.clear();
    }

    /// Announces a credential change (a failure is logged: the subscribers' periodic
    /// re-check still catches the change).
    async fn announce(&self, change: CredentialChange) {
        if let Some(events) = &self.events
            && let Err(e) = events.publish(&change).await
        {
            tracing::warn!(error = %e, "cannot announce a credential change");
        }
    }

    /// Creates a tenant with its first ADMIN user and that user's API key. An operator
    /// operation (CLI), not reachable through the API.
    pub async fn create_tenant(&self, input: CreateTenant) -> Result<NewTenant, Error> {
        let name = text::required("name", &input.name, MAX_NAME)?;
        let slug = Slug::parse(&input.slug)?;
        let email = Email::parse(&input.admin_email)?;
        let admin_name = match input.admin_name {
            Some(n) => text::required("adminName", &n, MAX_NAME)?,
            None => default_name(&email),
        };
        let t = now();
        let tenant = Tenant {
            id: TenantId::new(),
            name,
            slug: slug.as_str().to_owned(),
            status: TenantStatus::Active,
            quota: Quota::default(),
            settings: serde_json::json!({}),
            created_at: t,
            updated_at: t,
        };
        self.store
            .insert_tenant(&tenant)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    Error::Conflict(format!("the slug '{}' is taken", tenant.slug))
                }
                other => other.into(),
            })?;
        let admin = User {
            id: UserId::new(),
            tenant_id: tenant.id,
            email: email.as_str().to_owned(),
            display_name: admin_name,
            role: Role::Admin,
            created_at: t,
            updated_at: t,
        };
        self.store.insert_user(&admin).await?;
        let actor = Actor::new(tenant.id, admin.id, Role::Admin, None, None);
        let (_, api_key) = self
            .issue_key(
                &actor,
                &admin,
                "initial admin key".into(),
                Scope::ALL.to_vec(),
            )
            .await?;
        Ok(NewTenant {
            tenant,
            admin,
            api_key,
        })
    }

    /// Reads a tenant by slug (operator CLI).
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant, Error> {
        self.store
            .find_tenant_by_slug(slug)
            .await
            .or_not_found("tenant")
    }

    /// Issues a new API key for the first ADMIN user found by `email` in `tenant`
    /// (operator CLI). Returns the plaintext key.
    pub async fn create_api_key_for(
        &self,
        tenant: TenantId,
        email: &str,
        name: &str,
    ) -> Result<(ApiKey, String), Error> {
        let email = Email::parse(email)?;
        let user = self
            .store
            .find_user_by_email(tenant, email.as_str())
            .await
            .or_not_found("user")?;
        let actor = Actor::new(tenant, user.id, user.role, None, None);
        let name = text::required("name", name, MAX_NAME)?;
        self.issue_key(&actor, &user, name, Scope::ALL.to_vec())
            .await
    }

    /// Authenticates a presented API key. Any failure — malformed, unknown, revoked,
    /// suspended tenant — is `Unauthenticated`, so callers learn nothing about which.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Actor, Error> {
        self.authenticate_key(presented, true).await
    }

    /// [`Self::authenticate_api_key`] without the cache: the key's state in the database
    /// now (to re-check a long-lived connection after a credential change).
    pub async fn authenticate_api_key_fresh(&self, presented: &str) -> Result<Actor, Error> {
        self.authenticate_key(presented, false).await
    }

    async fn authenticate_key(&self, presented: &str, cached: bool) -> Result<Actor, Error> {
        let tenant_id = auth::parse_api_key_tenant(presented)?;
        let hash = auth::hash_api_key(presented);
        if cached && let Some(actor) = self.auth_cache.get(&hash) {
            return Ok(actor);
        }
        let key = match self.store.find_api_key_by_hash(tenant_id, &hash).await {
            Ok(k) => k,
            Err(StoreError::NotFound) => return Err(Error::Unauthenticated),
            Err(e) => return Err(e.into()),
        };
        if key.revoked_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        let user = self.active_user(tenant_id, key.user_id).await?;
        let t = now();
        if key
            .last_used_at
            .is_none_or(|at| t - at >= LAST_USED_RESOLUTION)
        {
            self.store.touch_api_key(tenant_id, key.id, t).await?;
        }
        let actor = Actor::new(
            tenant_id,
            user.id,
            user.role,
            Some(&key.scopes),
            Some(key.id),
        );
        self.auth_cache.put(hash, actor.clone());
        Ok(actor)
    }

    /// The actor for a user named by a verified bearer token.
    pub async fn actor_for_user(&self, tenant: TenantId, user: UserId) -> Result<Actor, Error> {
        let user = self.active_user(tenant, user).await?;
        Ok(Actor::new(tenant, user.id, user.role, None, None))
    }

    async fn active_user(&self, tenant: TenantId, user: UserId) -> Result<User, Error> {
        match self.store.get_tenant(tenant).await {
            Ok(t) if t.status == TenantStatus::Active => {}
            Ok(_) | Err(StoreError::NotFound) => return Err(Error::Unauthenticated),
            Err(e) => return Err(e.into()),
        }
        match self.store.get_user(tenant, user).await {
            Ok(u) => Ok(u),
            Err(StoreError::NotFound) => Err(Error::Unauthenticated),
            Err(e) => Err(e.into()),
        }
    }

    /// The actor's tenant.
    pub async fn tenant(&self, actor: &Actor) -> Result<Tenant, Error> {
        self.store
            .get_tenant(actor.tenant_id)
            .await
            .or_not_found("tenant")
    }

    /// What the actor's tenant has used of its quota: novels held, LLM tokens today, bytes
    /// of stored files.
    pub async fn quota_usage(&self, actor: &Actor) -> Result<QuotaUsage, Error> {
        let novels = self.store.count_novels(actor.tenant_id).await?;
        let tokens_used_today = self
            .store
            .tokens_used(actor.tenant_id, now().date_naive())
            .await?;
        let file_bytes = self.store.file_bytes_used(actor.tenant_id).await?;
        Ok(QuotaUsage {
            novels,
            tokens_used_today,
            file_bytes,
        })
    }

    /// Changes the tenant's quota. Needs ADMIN.
    pub async fn update_quota(&self, actor: &Actor, input: UpdateQuota) -> Result<Tenant, Error> {
        actor.require_admin()?;
        let mut t = self.tenant(actor).await?;
        let limit = |f: &str, v: i64| text::in_range(f, v, 0, i64::MAX / 2);
        if let Some(v) = input.max_novels {
            t.quota.max_novels = limit("maxNovels", v)?;
        }
        if let Some(v) = input.max_chapters_per_novel {
            t.quota.max_chapters_per_novel = limit("maxChaptersPerNovel", v)?;
        }
        if let Some(v) = input.max_tokens_per_day {
            t.quota.max_tokens_per_day = limit("maxTokensPerDay", v)?;
        }
        if let Some(v) = input.max_file_bytes {
            t.quota.max_file_bytes = limit("maxFileBytes", v)?;
        }
        t.updated_at = now();
        self.store.update_tenant(&t).await?;
        audit(&*self.store, actor, "tenant.quota", "Tenant", t.id).await;
        Ok(t)
    }

    /// Changes the tenant's validation policy (kept in its settings as
    /// `validation.failMode`; other settings are untouched). Needs ADMIN.
    pub async fn update_validation_policy(
        &self,
        actor: &Actor,
        input: UpdateValidationPolicy,
    ) -> Result<Tenant, Error> {
        actor.require_admin()?;
        let mut t = self.tenant(actor).await?;
        if let Some(mode) = input.fail_mode {
            if !t.settings.is_object() {
                t.settings = serde_json::json!({});
            }
            let validation = &mut t.settings["validation"];
            if !validation.is_object() {
                *validation = serde_json::json!({});
            }
            validation["failMode"] = serde_json::Value::from(mode.as_str());
        }
        t.updated_at = now();
        self.store.update_tenant(&t).await?;
        audit(&*self.store, actor, "tenant.validation", "Tenant", t.id).await;
        Ok(t)
    }

    /// Reads a user of the actor's tenant.
    pub async fn user(&self, actor: &Actor, id: UserId) -> Result<User, Error> {
        self.store
            .get_user(actor.tenant_id, id)
            .await
            .or_not_found("user")
    }

    /// Lists the tenant's users. Needs ADMIN.
    pub async fn users(&self, actor: &Actor, page: PageRequest) -> Result<Page<User>, Error> {
        actor.require_admin()?;
        Ok(self.store.list_users(actor.tenant_id, page).await?)
    }

    /// Adds a user. Needs ADMIN.
    pub async fn create_user(&self, actor: &Actor, input: CreateUser) -> Result<User, Error> {
        actor.require_admin()?;
        let email = Email::parse(&input.email)?;
        let display_name = match input.display_name {
            Some(n) => text::required("displayName", &n, MAX_NAME)?,
            None => default_name(&email),
        };
        let t = now();
        let user = User {
            id: UserId::new(),
            tenant_id: actor.tenant_id,
            email: email.as_str().to_owned(),
            display_name,
            role: input.role,
            created_at: t,
            updated_at: t,
        };
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                Error::Conflict(format!("a user with email {} exists", user.email))
            }
            other => other.into(),
        })?;
        audit(&*self.store, actor, "user.create", "User", user.id).await;
        Ok(user)
    }

    /// Changes a user's role or display name. Needs ADMIN; an admin cannot demote itself.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        role: Option<Role>,
        display_name: Option<String>,
    ) -> Result<User, Error> {
        actor.require_admin()?;
        let mut u = self.user(actor, id).await?;
        let role_changed = role.is_some_and(|r| r != u.role);
        if let Some(r) = role {
            if u.id == actor.user_id && r != Role::Admin {
                return Err(Error::invalid(
                    "role",
                    "you cannot remove your own ADMIN role",
                ));
            }
            u.role = r;
        }
        if let Some(n) = display_name {
            u.display_name = text::required("displayName", &n, MAX_NAME)?;
        }
        u.updated_at = now();
        self.store.update_user(&u).await.or_not_found("user")?;
        self.auth_cache.clear();
        if role_changed {
            self.announce(CredentialChange {
                tenant_id: u.tenant_id,
                user_id: u.id,
                api_key_id: None,
                kind: CredentialChangeKind::RoleChanged,
            })
            .await;
        }
        audit(&*self.store, actor, "user.update", "User", u.id).await;
        Ok(u)
    }

    /// Creates an API key; returns it with its plaintext, shown only this once.
    /// Any user may create keys for itself; only an ADMIN for others.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        input: CreateApiKey,
    ) -> Result<(ApiKey, String), Error> {
        let name = text::required("name", &input.name, MAX_NAME)?;
        let user = match input.user_id {
            Some(id) if id != actor.user_id => {
                actor.require_admin()?;
                self.user(actor, id).await?
            }
            _ => self.user(actor, actor.user_id).await?,
        };
        let scopes = match input.scopes {
            Some(s) if s.is_empty() => return Err(Error::invalid("scopes", "must not be empty")),
            Some(s) => s,
            None => Scope::ALL.to_vec(),
        };
        // A key never grants more than the actor creating it has.
        let granted = Actor::new(actor.tenant_id, user.id, user.role, Some(&scopes), None).role;
        if !actor.role.includes(granted) {
            return Err(Error::Forbidden(
                "a key cannot grant more than your own role".into(),
            ));
        }
        let (key, plaintext) = self.issue_key(actor, &user, name, scopes).await?;
        audit(&*self.store, actor, "apikey.create", "ApiKey", key.id).await;
        Ok((key, plaintext))
    }

    async fn issue_key(
        &self,
        _actor: &Actor,
        user: &User,
        name: String,
        mut scopes: Vec<Scope>,
    ) -> Result<(ApiKey, String), Error> {
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        let generated = auth::generate_api_key(user.tenant_id);
        let key = ApiKey {
            id: ApiKeyId::new(),
            tenant_id: user.tenant_id,
            user_id: user.id,
            name,
            prefix: generated.prefix,
            secret_hash: generated.hash,
            scopes,
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_api_key(&key).await?;
        Ok((key, generated.plaintext))
    }

    /// Lists API keys: an ADMIN sees all of the tenant's, others their own.
    pub async fn api_keys(&self, actor: &Actor, page: PageRequest) -> Result<Page<ApiKey>, Error> {
        let user = if actor.role == Role::Admin {
            None
        } else {
            Some(actor.user_id)
        };
        Ok(self
            .store
            .list_api_keys(actor.tenant_id, user, page)
            .await?)
    }

    /// Reads an API key: an ADMIN sees any of the tenant's, others only their own
    /// (another user's key is `NotFound`, exactly like a missing one).
    pub async fn api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<ApiKey, Error> {
        let key = self
            .store
            .get_api_key(actor.tenant_id, id)
            .await
            .or_not_found("API key")?;
        if key.user_id != actor.user_id && actor.role != Role::Admin {
            return Err(Error::NotFound {
                resource: "API key",
            });
        }
        Ok(key)
    }

    /// Revokes a key. Idempotent. Any key of the tenant for an ADMIN; otherwise one of
    /// the caller's own keys that grants no more than the caller's credential does (a
    /// READ-scoped key cannot revoke its user's admin key), or the very key in use.
    pub async fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<ApiKey, Error> {
        let key = self.api_key(actor, id).await?;
        if actor.api_key_id != Some(key.id) {
            let user = self.user(actor, key.user_id).await?;
            let grants = Actor::new(actor.tenant_id, user.id, user.role, Some(&key.scopes), None);
            if !actor.role.includes(grants.role) {
                return Err(Error::Forbidden(format!(
                    "this key grants {}; your credential acts as {}",
                    grants.role, actor.role
                )));
            }
        }
        self.store
            .revoke_api_key(actor.tenant_id, id, now())
            .await
            .or_not_found("API key")?;
        self.auth_cache.clear();
        self.announce(CredentialChange {
            tenant_id: key.tenant_id,
            user_id: key.user_id,
            api_key_id: Some(key.id),
            kind: CredentialChangeKind::KeyRevoked,
        })
        .await;
        audit(&*self.store, actor, "apikey.revoke", "ApiKey", id).await;
        self.store
            .get_api_key(actor.tenant_id, id)
            .await
            .or_not_found("API key")
    }

    /// The tenant's audit log, newest first. Needs ADMIN.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, Error> {
        actor.require_admin()?;
        Ok(self.store.list_audit(actor.tenant_id, page).await?)
    }
}
