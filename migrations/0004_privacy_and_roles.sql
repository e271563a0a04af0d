-- Roles granted at run time by admins (/role), on top of the configuration's lists.
CREATE TABLE granted_roles (
    identity   TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'officer')),
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (identity, role)
) WITHOUT ROWID;

-- Values the bot generates once and keeps (e.g. the salt of audit pseudonyms).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Retention jobs look for subscribers by status and age.
CREATE INDEX subscribers_status ON subscribers (status, updated_at);
CREATE INDEX deliveries_recipient ON deliveries (recipient_kind, recipient_id);
CREATE INDEX tips_subscriber ON tips (subscriber_id);
