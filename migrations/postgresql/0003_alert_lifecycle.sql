-- PostgreSQL's text of 0003_alert_lifecycle.sql (bot/storage/dialect.py translates the rest):
-- SQLite accepts a reference to a table created further down, PostgreSQL does not, so
-- alerts.schedule_id is added once schedules exists. Same schema otherwise.
-- The life of an alert after its broadcast: updates and all-clears (child alerts sent to
-- the parent's recipients), recall, expiry, approval reminders, scheduled messages,
-- exercises, acknowledgements, and a hash-chained audit trail.

ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert';          -- alert | update | all_clear
ALTER TABLE alerts ADD COLUMN parent_id INTEGER REFERENCES alerts (id);
ALTER TABLE alerts ADD COLUMN exercise INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN prosecutor_ref TEXT;
ALTER TABLE alerts ADD COLUMN reminded_at TEXT;
ALTER TABLE alerts ADD COLUMN closed TEXT;                                  -- ended | expired | recalled
ALTER TABLE alerts ADD COLUMN closed_at TEXT;
ALTER TABLE alerts ADD COLUMN send_at TEXT;                                 -- scheduled messages
CREATE INDEX alerts_open ON alerts (status, closed, expires_at);
CREATE INDEX alerts_parent ON alerts (parent_id);

-- Deliveries gain actions (send, edit or delete a copy), reply threading, a 'dropped'
-- status for rows an expiry cancelled, and receipts. SQLite cannot change a CHECK or
-- UNIQUE constraint in place, hence the rebuild.
CREATE TABLE deliveries_new (
    id                  INTEGER PRIMARY KEY,
    alert_id            INTEGER NOT NULL REFERENCES alerts (id),
    recipient_kind      TEXT NOT NULL CHECK (recipient_kind IN ('subscriber', 'group')),
    recipient_id        INTEGER NOT NULL,
    platform            TEXT NOT NULL,
    chat_id             TEXT NOT NULL,
    action              TEXT NOT NULL DEFAULT 'send' CHECK (action IN ('send', 'edit', 'delete')),
    target_message_id   TEXT,
    reply_to_message_id TEXT,
    priority            INTEGER NOT NULL DEFAULT 0,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'blocked',
                                          'dropped')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_try_at         TEXT NOT NULL,
    last_error          TEXT,
    message_id          TEXT,
    sent_at             TEXT,
    maybe_duplicate     INTEGER NOT NULL DEFAULT 0,
    acknowledged_at     TEXT,
    UNIQUE (alert_id, platform, chat_id, action)
);
INSERT INTO deliveries_new (id, alert_id, recipient_kind, recipient_id, platform, chat_id,
    priority, status, attempts, next_try_at, last_error, message_id, sent_at, maybe_duplicate)
SELECT id, alert_id, recipient_kind, recipient_id, platform, chat_id, priority, status,
    attempts, next_try_at, last_error, message_id, sent_at, maybe_duplicate FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (platform, status, priority, next_try_at);
CREATE INDEX deliveries_alert ON deliveries (alert_id, status);
CREATE INDEX deliveries_chat ON deliveries (platform, chat_id, alert_id);

-- Recurring prevention messages, approved once; each occurrence becomes an alert row.
CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    rule         TEXT NOT NULL,          -- e.g. "weekly:4:17:00" (Friday 17:00) or "once"
    category     TEXT NOT NULL,
    perimeter    TEXT NOT NULL,
    communities  TEXT NOT NULL,          -- JSON list, empty = everyone
    body         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    next_run_at  TEXT,
    alert_id     INTEGER REFERENCES alerts (id),   -- the alert row its approval went through
    cancelled_at TEXT
);

-- Tips sent by recipients about an alert, forwarded to the officers.
CREATE TABLE tips (
    id            INTEGER PRIMARY KEY,
    alert_id      INTEGER NOT NULL REFERENCES alerts (id),
    subscriber_id INTEGER,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    body          TEXT NOT NULL,
    latitude      REAL,
    longitude     REAL,
    received_at   TEXT NOT NULL,
    answered_at   TEXT
);

-- Tamper evidence: each event carries the hash of the previous one.
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';

ALTER TABLE alerts ADD COLUMN schedule_id INTEGER REFERENCES schedules (id);
