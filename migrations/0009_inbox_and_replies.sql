-- Exactly once per incoming event (issue 13). The core records each event's platform id in
-- `inbox` in the same transaction as the handler's state changes and the replies it wrote
-- to `replies`: a replayed event (Telegram update, Matrix event) meets its row and is
-- skipped, whatever the order the transport saved its sync token in. Kept 7 days
-- (bot/storage/inbox.py): no platform replays an event that old.
CREATE TABLE inbox (
    platform   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (platform, event_id)
) WITHOUT ROWID;
CREATE INDEX inbox_handled ON inbox (handled_at);

-- The reply outbox: one row per effect of an event (a reply, a notice, a post in an
-- officers' channel, an edit or deletion of tracked posts), written with the event and
-- sent after commit. Marked 'sent' only once the platform accepted it, with the ids of
-- every message it made; the effect itself (text, files) is cleared then.
CREATE TABLE replies (
    id          INTEGER PRIMARY KEY,
    platform    TEXT,           -- the incoming event's, NULL for the clock's own effects
    event_id    TEXT,
    effect      TEXT,           -- JSON (bot/storage/replies.py), NULL once sent or failed
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_at TEXT NOT NULL,
    last_error  TEXT,
    message_ids TEXT,           -- JSON list of the platform's message ids (no chat)
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX replies_due ON replies (status, next_try_at);
CREATE INDEX replies_created ON replies (created_at);
