DROP TABLE memory_versions;
DROP TABLE memory_records;
DROP TABLE entity_appearances;
DROP TABLE chapter_memory;
ALTER TABLE generation_jobs DROP COLUMN context;
ALTER TABLE foreshadowing DROP COLUMN origin, DROP COLUMN origin_chapter_id, DROP COLUMN span_start, DROP COLUMN span_end;
ALTER TABLE events DROP COLUMN origin, DROP COLUMN origin_chapter_id, DROP COLUMN span_start, DROP COLUMN span_end;
ALTER TABLE relations DROP COLUMN origin, DROP COLUMN origin_chapter_id, DROP COLUMN span_start, DROP COLUMN span_end;
ALTER TABLE entity_states DROP COLUMN vital, DROP COLUMN location_id, DROP COLUMN holder_id,
    DROP COLUMN lost, DROP COLUMN injuries, DROP COLUMN origin, DROP COLUMN origin_chapter_id,
    DROP COLUMN span_start, DROP COLUMN span_end;
ALTER TABLE entities DROP COLUMN origin, DROP COLUMN origin_chapter_id, DROP COLUMN span_start, DROP COLUMN span_end;
ALTER TABLE chapters DROP COLUMN summary_origin;
