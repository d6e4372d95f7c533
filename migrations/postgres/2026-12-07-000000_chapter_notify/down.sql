DROP TRIGGER chapters_notify ON chapters;
DROP FUNCTION znovel_chapters_notify();
