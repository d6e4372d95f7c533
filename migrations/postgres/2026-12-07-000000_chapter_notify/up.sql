-- Every process keeps chapters in memory for display reads and must forget one as soon as
-- any process writes it: each written row (insert, update, delete, also by a cascade or a
-- foreign key's SET NULL) notifies `znovel_chapters` with its id, delivered when the
-- transaction commits (and not at all when it rolls back).
CREATE FUNCTION znovel_chapters_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('znovel_chapters', OLD.id::text);
    ELSE
        PERFORM pg_notify('znovel_chapters', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER chapters_notify
    AFTER INSERT OR UPDATE OR DELETE ON chapters
    FOR EACH ROW EXECUTE FUNCTION znovel_chapters_notify();
