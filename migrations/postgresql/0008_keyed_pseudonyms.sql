-- PostgreSQL's text of 0008_keyed_pseudonyms.sql: INSERT OR REPLACE is SQLite's; an upsert on
-- meta's key says the same. (The one-time VACUUM it asks for is SQLite's: bot/privacy.py only
-- clears the request on PostgreSQL.)
DELETE FROM meta WHERE key = 'pseudonym_salt';
INSERT INTO meta (key, value) VALUES ('vacuum_pending', '0008')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
