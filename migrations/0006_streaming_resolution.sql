-- Recipients are written in chunks so the first messages leave while later rows are
-- still being resolved: the last subscriber id written so far, NULL once complete.
ALTER TABLE alerts ADD COLUMN resolve_after INTEGER;
