//! First start of the embedded default: a local tenant with an ADMIN user and an API key,
//! printed once and kept in `$ZNOVEL_DATA_DIR/admin.key` (mode 0600). Later starts reuse
//! the key in that file; if the file is gone (or its key no longer works), a new key is
//! issued for the existing local admin.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use znovel_domain::Error;
use znovel_domain::services::{AdminService, CreateTenant};

/// Slug of the tenant the embedded default creates.
pub const LOCAL_TENANT: &str = "local";
/// Email of its first admin.
pub const LOCAL_ADMIN: &str = "admin@localhost.localdomain";

/// The admin key in effect after bootstrap.
#[derive(Debug, Clone)]
pub struct AdminKey {
    /// The key.
    pub key: String,
    /// The file it is kept in.
    pub path: PathBuf,
    /// Whether it was created by this start (and so is printed).
    pub created: bool,
}

/// Ensures the local tenant, its admin and a working admin key exist.
pub async fn ensure_local_admin(admin: &AdminService, data_dir: &Path) -> anyhow::Result<AdminKey> {
    let path = data_dir.join("admin.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = existing.trim().to_owned();
        match admin.authenticate_api_key(&key).await {
            Ok(_) => {
                return Ok(AdminKey {
                    key,
                    path,
                    created: false,
                });
            }
            Err(Error::Unauthenticated) => {
                tracing::warn!(path = %path.display(), "the stored admin key no longer works; issuing a new one");
            }
            Err(e) => return Err(anyhow::anyhow!("cannot check the stored admin key: {e}")),
        }
    }
    let key = match admin.tenant_by_slug(LOCAL_TENANT).await {
        Ok(tenant) => {
            admin
                .create_api_key_for(tenant.id, LOCAL_ADMIN, "admin key (reissued)")
                .await
                .map_err(|e| anyhow::anyhow!("cannot issue an admin key: {e}"))?
                .1
        }
        Err(Error::NotFound { .. }) => {
            admin
                .create_tenant(CreateTenant {
                    name: "Local".into(),
                    slug: LOCAL_TENANT.into(),
                    admin_email: LOCAL_ADMIN.into(),
                    admin_name: Some("Local admin".into()),
                })
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the local tenant: {e}"))?
                .api_key
        }
        Err(e) => return Err(anyhow::anyhow!("cannot read the local tenant: {e}")),
    };
    write_private(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(AdminKey {
        key,
        path,
        created: true,
    })
}

/// Writes `content` to `path` readable by the owner only, atomically (temp file + rename).
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
