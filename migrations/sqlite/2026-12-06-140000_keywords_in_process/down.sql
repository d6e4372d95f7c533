CREATE VIRTUAL TABLE memory_fts USING fts5 (scope, keywords, tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO memory_fts (rowid, scope, keywords)
    SELECT rowid, 'n' || replace(novel_id, '-', ''), keywords FROM memory_records;
CREATE TRIGGER memory_records_fts_insert AFTER INSERT ON memory_records BEGIN
    INSERT INTO memory_fts (rowid, scope, keywords)
    VALUES (new.rowid, 'n' || replace(new.novel_id, '-', ''), new.keywords);
END;
CREATE TRIGGER memory_records_fts_delete AFTER DELETE ON memory_records BEGIN
    DELETE FROM memory_fts WHERE rowid = old.rowid;
END;
