-- Audit pseudonyms are now keyed by the deployment's secret key (bot/keys.py), which the
-- database does not hold. The salt of the old ones goes: with it, whoever held the file could
-- recompute any subscriber's pseudonym from their messaging id, erased or not, and re-link
-- them to what the trail says they did. (The bot now opens the database with secure_delete:
-- the deleted salt is overwritten, not left in a free page.)
DELETE FROM meta WHERE key = 'pseudonym_salt';
-- Rows deleted before secure_delete was on may still lie in free pages: the bot rewrites the
-- file once (VACUUM) at its next start (bot/privacy.py scrub_free_pages_once).
INSERT OR REPLACE INTO meta (key, value) VALUES ('vacuum_pending', '0008');
