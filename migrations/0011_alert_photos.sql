-- Photos (issue 15, item 2): an operator may attach one photo to an alert (a missing
-- person, a suspect vehicle). Its bytes live only as long as the alert: deleted when the
-- alert is refused, withdrawn or expires unapproved, when it ends (/fin, /retirer,
-- expiry), and by the daily purge as a safety net (bot/privacy.py; docs/data-register.md).
-- Checked on the bytes before they get here (bot/photos.py); the checks below keep a bug
-- from storing anything else.
CREATE TABLE alert_photos (
    alert_id  INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE,  -- one per alert
    mime_type TEXT NOT NULL CHECK (mime_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size      INTEGER NOT NULL CHECK (size BETWEEN 1 AND 5242880),           -- 5 MB
    sha256    TEXT NOT NULL CHECK (length(sha256) = 64),
    width     INTEGER NOT NULL CHECK (width > 0),
    height    INTEGER NOT NULL CHECK (height > 0),
    data      BLOB NOT NULL CHECK (length(data) = size),
    stored_at TEXT NOT NULL
);

-- An operator's photo not attached yet, one per operator and chat: sent before the
-- command (on Matrix an image is its own event) or during the guided alert. Attached to
-- their next alert in that chat; forgotten after 10 minutes (bot/alert_photos.py).
CREATE TABLE photo_drafts (
    id          INTEGER PRIMARY KEY,
    identity    TEXT NOT NULL,                                               -- PLATFORM:ID
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    mime_type   TEXT NOT NULL CHECK (mime_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size        INTEGER NOT NULL CHECK (size BETWEEN 1 AND 5242880),
    sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
    width       INTEGER NOT NULL CHECK (width > 0),
    height      INTEGER NOT NULL CHECK (height > 0),
    data        BLOB NOT NULL CHECK (length(data) = size),
    received_at TEXT NOT NULL,
    UNIQUE (identity, platform, chat_id)
);
