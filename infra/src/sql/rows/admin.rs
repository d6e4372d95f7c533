//! Rows of tenants, users, API keys, the audit log and trusted documents.

use super::{enum_from, from_string_array, string_array};
use crate::sql::schema::{api_keys, audit_logs, tenants, trusted_documents, users};
use crate::sql::types::{DbJson, DbTime, DbUuid, ToDb, opt_db};
use diesel::prelude::*;
use znovel_domain::StoreError;
use znovel_domain::auth::{Role, Scope};
use znovel_domain::ids::*;
use znovel_domain::model::*;

/// A row of `tenants`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TenantRow {
    pub id: DbUuid,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub max_novels: i64,
    pub max_chapters_per_novel: i64,
    pub max_tokens_per_day: i64,
    pub settings: DbJson,
    pub created_at: DbTime,
    pub updated_at: DbTime,
    pub max_file_bytes: i64,
}

impl From<&Tenant> for TenantRow {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.db(),
            name: t.name.clone(),
            slug: t.slug.clone(),
            status: t.status.as_str().to_owned(),
            max_novels: t.quota.max_novels,
            max_chapters_per_novel: t.quota.max_chapters_per_novel,
            max_tokens_per_day: t.quota.max_tokens_per_day,
            settings: DbJson(t.settings.clone()),
            created_at: DbTime(t.created_at),
            updated_at: DbTime(t.updated_at),
            max_file_bytes: t.quota.max_file_bytes,
        }
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<Self, StoreError> {
        Ok(Tenant {
            id: TenantId::from_uuid(r.id.0),
            name: r.name,
            slug: r.slug,
            status: enum_from("tenant status", &r.status, TenantStatus::parse)?,
            quota: Quota {
                max_novels: r.max_novels,
                max_chapters_per_novel: r.max_chapters_per_novel,
                max_tokens_per_day: r.max_tokens_per_day,
                max_file_bytes: r.max_file_bytes,
            },
            settings: r.settings.0,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct UserRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub created_at: DbTime,
    pub updated_at: DbTime,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.db(),
            tenant_id: u.tenant_id.db(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role.as_str().to_owned(),
            created_at: DbTime(u.created_at),
            updated_at: DbTime(u.updated_at),
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            email: r.email,
            display_name: r.display_name,
            role: enum_from("user role", &r.role, Role::parse)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// A row of `api_keys`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ApiKeyRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub user_id: DbUuid,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: DbJson,
    pub created_at: DbTime,
    pub last_used_at: Option<DbTime>,
    pub revoked_at: Option<DbTime>,
}

impl From<&ApiKey> for ApiKeyRow {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.db(),
            tenant_id: k.tenant_id.db(),
            user_id: k.user_id.db(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            secret_hash: k.secret_hash.clone(),
            scopes: DbJson(string_array(k.scopes.iter().map(|s| s.as_str()))),
            created_at: DbTime(k.created_at),
            last_used_at: k.last_used_at.map(DbTime),
            revoked_at: k.revoked_at.map(DbTime),
        }
    }
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKey {
            id: ApiKeyId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            user_id: UserId::from_uuid(r.user_id.0),
            name: r.name,
            prefix: r.prefix,
            secret_hash: r.secret_hash,
            scopes: from_string_array("api key scopes", &r.scopes.0, Scope::parse)?,
            created_at: r.created_at.0,
            last_used_at: r.last_used_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        })
    }
}

/// A row of `audit_logs`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_logs, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditRow {
    pub id: DbUuid,
    pub tenant_id: DbUuid,
    pub actor_user_id: Option<DbUuid>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub request_id: Option<String>,
    pub detail: DbJson,
    pub created_at: DbTime,
}

impl From<&AuditEntry> for AuditRow {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id.db(),
            tenant_id: a.tenant_id.db(),
            actor_user_id: opt_db(a.actor_user_id),
            action: a.action.clone(),
            resource_type: a.resource_type.clone(),
            resource_id: a.resource_id.clone(),
            request_id: a.request_id.clone(),
            detail: DbJson(a.detail.clone()),
            created_at: DbTime(a.created_at),
        }
    }
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            id: AuditId::from_uuid(r.id.0),
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            actor_user_id: r.actor_user_id.map(|u| UserId::from_uuid(u.0)),
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            request_id: r.request_id,
            detail: r.detail.0,
            created_at: r.created_at.0,
        })
    }
}

/// A row of `trusted_documents`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = trusted_documents, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TrustedDocumentRow {
    pub sha256: String,
    pub document: String,
    pub operation_name: Option<String>,
    pub registered_at: DbTime,
}

impl From<&TrustedDocument> for TrustedDocumentRow {
    fn from(d: &TrustedDocument) -> Self {
        Self {
            sha256: d.hash.as_str().to_owned(),
            document: d.document.clone(),
            operation_name: d.operation_name.clone(),
            registered_at: DbTime(d.registered_at),
        }
    }
}

impl TryFrom<TrustedDocumentRow> for TrustedDocument {
    type Error = StoreError;
    fn try_from(r: TrustedDocumentRow) -> Result<Self, StoreError> {
        let hash = DocumentHash::parse(&r.sha256)
            .ok_or_else(|| StoreError::Internal(format!("bad document hash {:?}", r.sha256)))?;
        Ok(TrustedDocument {
            hash,
            document: r.document,
            operation_name: r.operation_name,
            registered_at: r.registered_at.0,
        })
    }
}
