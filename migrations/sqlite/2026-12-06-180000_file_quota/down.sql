ALTER TABLE tenants DROP COLUMN max_file_bytes;
