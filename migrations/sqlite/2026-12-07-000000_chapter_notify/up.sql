-- PostgreSQL's version adds the trigger that tells other processes a chapter changed.
-- A SQLite file's readers see any commit through `PRAGMA data_version` instead: nothing
-- to add here.
SELECT 1;
