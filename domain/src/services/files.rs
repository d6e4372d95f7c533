//! Stored files: listing, deleting, and downloading through short-lived signed links.
//!
//! A download link is `/files/<file id>?token=<tenant>.<expiry>.<signature>`: the
//! signature is HMAC-SHA256 over the file id, the tenant and the expiry (Unix seconds)
//! with the server's file-link secret. It carries no credential: whoever has the link
//! may download that one file until it expires, and nothing else.

use super::{audit, now};
use crate::auth::Actor;
use crate::error::{Error, StoreResultExt};
use crate::ids::{FileId, JobId, NovelId, TenantId};
use crate::model::{DEFAULT_MAX_FILE_BYTES, StoredFile};
use crate::page::{Page, PageRequest};
use crate::ports::Store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Default lifetime of a download link (15 minutes).
pub const DEFAULT_LINK_TTL_SECS: i64 = 15 * 60;

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Signs and checks download links.
#[derive(Clone)]
pub struct FileLinks {
    key: Arc<[u8]>,
    ttl_secs: i64,
}

impl std::fmt::Debug for FileLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLinks")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Why a download link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not a link this server signed for this file.
    Forged,
    /// Signed, but past its expiry.
    Expired,
}

impl FileLinks {
    /// Links signed with `secret`, valid for `ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: i64) -> Self {
        Self {
            key: Arc::from(secret),
            ttl_secs: ttl_secs.max(1),
        }
    }

    /// Links signed with a key derived from another secret (HMAC of it under a label of
    /// its own, so the other secret's key is never used as is).
    pub fn derived(secret: &[u8], ttl_secs: i64) -> Self {
        Self::new(&hmac_sha256(secret, b"znovel file links"), ttl_secs)
    }

    /// Links signed with a random secret of this process (a link works only on the
    /// process that made it: for a single server, or tests).
    pub fn random(ttl_secs: i64) -> Self {
        let key: [u8; 32] = rand::random();
        Self::new(&key, ttl_secs)
    }

    fn signature(&self, tenant: TenantId, file: FileId, expires: i64) -> [u8; 32] {
        let message = format!(
            "znovel-file:{}:{}:{expires}",
            file.as_uuid(),
            tenant.as_uuid()
        );
        hmac_sha256(&self.key, message.as_bytes())
    }

    /// The token of a link to `file` of `tenant` that expires at `expires` (Unix seconds).
    pub fn token_expiring(&self, tenant: TenantId, file: FileId, expires: i64) -> String {
        format!(
            "{}.{expires}.{}",
            tenant.as_uuid().simple(),
            URL_SAFE_NO_PAD.encode(self.signature(tenant, file, expires))
        )
    }

    /// The token of a fresh link to `file` of `tenant`.
    pub fn token(&self, tenant: TenantId, file: FileId) -> String {
        self.token_expiring(tenant, file, now().timestamp() + self.ttl_secs)
    }

    /// Checks a token for `file` at `now_secs`: the tenant it was signed for.
    pub fn verify(&self, file: FileId, token: &str, now_secs: i64) -> Result<TenantId, LinkError> {
        let mut parts = token.splitn(3, '.');
        let (Some(tenant), Some(expires), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Forged);
        };
        let tenant = uuid::Uuid::try_parse(tenant)
            .map(TenantId::from_uuid)
            .map_err(|_| LinkError::Forged)?;
        let expires: i64 = expires.parse().map_err(|_| LinkError::Forged)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig.as_bytes())
            .map_err(|_| LinkError::Forged)?;
        let expected = self.signature(tenant, file, expires);
        // Constant time: every byte is compared.
        let same = sig.len() == expected.len()
            && sig
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(LinkError::Forged);
        }
        if now_secs > expires {
            return Err(LinkError::Expired);
        }
        Ok(tenant)
    }
}

/// Stored files.
#[derive(Clone)]
pub struct FileService {
    pub(super) store: Arc<dyn Store>,
    links: FileLinks,
    max_bytes: i64,
}

impl FileService {
    /// Builds the service: links signed by `links`, files up to `max_bytes`.
    pub fn new(store: Arc<dyn Store>, links: FileLinks, max_bytes: i64) -> Self {
        Self {
            store,
            links,
            max_bytes,
        }
    }

    /// The service with a random link secret and the default size limit.
    pub fn with_defaults(store: Arc<dyn Store>) -> Self {
        Self::new(
            store,
            FileLinks::random(DEFAULT_LINK_TTL_SECS),
            DEFAULT_MAX_FILE_BYTES,
        )
    }

    /// The largest file stored.
    pub fn max_bytes(&self) -> i64 {
        self.max_bytes
    }

    /// The signer of download links.
    pub fn links(&self) -> &FileLinks {
        &self.links
    }

    /// Refuses `size` bytes when over the limit (`field`: what to name).
    pub fn check_size(&self, field: &str, size: usize) -> Result<(), Error> {
        if size as i64 > self.max_bytes {
            return Err(Error::invalid(
                field,
                format!(
                    "the file is {size} bytes; the largest file allowed is {} bytes",
                    self.max_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Stores a file (the caller has authorized it): refuses one over the size limit,
    /// and one that would take the tenant's files past its quota (`QUOTA_EXCEEDED`).
    pub async fn save(&self, file: &StoredFile, bytes: &[u8]) -> Result<(), Error> {
        self.check_size("file", bytes.len())?;
        self.check_quota(file.tenant_id, bytes.len() as i64).await?;
        self.store
            .insert_file(file, bytes)
            .await
            .or_not_found("novel")
    }

    /// `QUOTA_EXCEEDED` when `more` bytes would take the tenant's files past its
    /// `max_file_bytes`. (Two uploads racing may both pass; the quota is a budget, not a
    /// hard disk limit — the per-file size limit bounds the overshoot.)
    pub async fn check_quota(&self, tenant: TenantId, more: i64) -> Result<(), Error> {
        let max = self
            .store
            .get_tenant(tenant)
            .await
            .or_not_found("tenant")?
            .quota
            .max_file_bytes;
        let used = self.store.file_bytes_used(tenant).await?;
        if used + more > max {
            return Err(Error::QuotaExceeded(format!(
                "the tenant's files take {used} bytes; {more} more would pass its quota of {max} bytes (delete files or ask an admin to raise maxFileBytes)"
            )));
        }
        Ok(())
    }

    /// Stores an uploaded file of a novel (`POST /files`). Needs MEMBER; refuses a file
    /// over the size limit, a missing name, another tenant's novel.
    pub async fn upload(
        &self,
        actor: &Actor,
        novel: NovelId,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<StoredFile, Error> {
        actor.require_write()?;
        self.check_size("file", bytes.len())?;
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let name = crate::text::required("name", base, crate::text::MAX_TITLE)?;
        let content_type = crate::text::bounded("contentType", content_type.trim(), 200)?;
        self.store
            .get_novel(actor.tenant_id, novel)
            .await
            .or_not_found("novel")?;
        let file = StoredFile {
            id: FileId::new(),
            tenant_id: actor.tenant_id,
            novel_id: novel,
            job_id: None,
            name,
            content_type: if content_type.is_empty() {
                "application/octet-stream".into()
            } else {
                content_type
            },
            size: bytes.len() as i64,
            created_by: Some(actor.user_id),
            created_at: now(),
        };
        self.save(&file, bytes).await?;
        audit(&*self.store, actor, "file.upload", "StoredFile", file.id).await;
        Ok(file)
    }

    /// Reads a file's metadata.
    pub async fn file(&self, actor: &Actor, id: FileId) -> Result<StoredFile, Error> {
        self.store
            .get_file(actor.tenant_id, id)
            .await
            .or_not_found("file")
    }

    /// The file a job produced (EXPORT) or read (IMPORT), if any.
    pub async fn for_job(&self, actor: &Actor, job: JobId) -> Result<Option<StoredFile>, Error> {
        Ok(self.store.find_file_by_job(actor.tenant_id, job).await?)
    }

    /// Lists a novel's files, newest first.
    pub async fn files(
        &self,
        actor: &Actor,
        novel: NovelId,
        page: PageRequest,
    ) -> Result<Page<StoredFile>, Error> {
        self.store
            .get_novel(actor.tenant_id, novel)
            .await
            .or_not_found("novel")?;
        Ok(self.store.list_files(actor.tenant_id, novel, page).await?)
    }

    /// Deletes a file. Needs MEMBER.
    pub async fn delete(&self, actor: &Actor, id: FileId) -> Result<(), Error> {
        actor.require_write()?;
        self.store
            .delete_file(actor.tenant_id, id)
            .await
            .or_not_found("file")?;
        audit(&*self.store, actor, "file.delete", "StoredFile", id).await;
        Ok(())
    }

    /// The total size of the tenant's files.
    pub async fn bytes_used(&self, actor: &Actor) -> Result<i64, Error> {
        Ok(self.store.file_bytes_used(actor.tenant_id).await?)
    }

    /// A fresh download token for a file the actor may read.
    pub fn download_token(&self, file: &StoredFile) -> String {
        self.links.token(file.tenant_id, file.id)
    }

    /// A download through a link: the file and its bytes. `Forbidden` for a forged or
    /// expired token; `NotFound` when the file is gone.
    pub async fn download(&self, id: FileId, token: &str) -> Result<(StoredFile, Vec<u8>), Error> {
        let tenant = self
            .links
            .verify(id, token, now().timestamp())
            .map_err(|e| match e {
                LinkError::Forged => Error::Forbidden("the download link is not valid".into()),
                LinkError::Expired => {
                    Error::Forbidden("the download link has expired; ask for a new one".into())
                }
            })?;
        let file = self.store.get_file(tenant, id).await.or_not_found("file")?;
        let bytes = self
            .store
            .get_file_content(tenant, id)
            .await
            .or_not_found("file")?;
        Ok((file, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn tokens_bind_file_tenant_and_expiry() {
        let links = FileLinks::new(b"secret", 60);
        let (t, f) = (TenantId::new(), FileId::new());
        let token = links.token_expiring(t, f, 1_000);
        assert_eq!(links.verify(f, &token, 999), Ok(t));
        assert_eq!(links.verify(f, &token, 1_001), Err(LinkError::Expired));
        assert_eq!(
            links.verify(FileId::new(), &token, 999),
            Err(LinkError::Forged)
        );
        let other = TenantId::new();
        let moved = token.replacen(
            &t.as_uuid().simple().to_string(),
            &other.as_uuid().simple().to_string(),
            1,
        );
        assert_eq!(links.verify(f, &moved, 999), Err(LinkError::Forged));
        let later = token.replacen(".1000.", ".9000.", 1);
        assert_eq!(links.verify(f, &later, 999), Err(LinkError::Forged));
        let foreign = FileLinks::new(b"other", 60).token_expiring(t, f, 1_000);
        assert_eq!(links.verify(f, &foreign, 999), Err(LinkError::Forged));
        assert_eq!(links.verify(f, "garbage", 999), Err(LinkError::Forged));
    }
}
