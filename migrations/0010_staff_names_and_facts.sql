-- People, not ids (issue 15): the name staff are shown by to other staff (« Validée par
-- Capitaine Martin ») when the configuration names them not (roles.names): the platform
-- display name seen at their first message with a role. Never used for roles, which stay
-- bound to the platform's user id; the audit trail keeps the id. Kept while the person
-- holds a role (bot/privacy.py; docs/data-register.md).
CREATE TABLE staff_names (
    identity TEXT PRIMARY KEY,   -- PLATFORM:ID
    name     TEXT NOT NULL,
    seen_at  TEXT NOT NULL
) WITHOUT ROWID;

-- Whether the operator said when the facts happened (« depuis 14:30 », the guided
-- question): only then, or under a category's fact-age rule, does a copy say
-- « Faits : aujourd'hui vers 14:30 ». Alerts filed before said nothing.
ALTER TABLE alerts ADD COLUMN facts_stated INTEGER NOT NULL DEFAULT 0;
