-- The bytes a tenant's stored files may take together (uploaded manuscripts, exported
-- books); 1 GiB unless an admin changes it.
ALTER TABLE tenants ADD COLUMN max_file_bytes BIGINT NOT NULL DEFAULT 1073741824;
