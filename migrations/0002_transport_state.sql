-- Small durable state a transport needs across restarts (e.g. the Matrix sync token).
CREATE TABLE transport_state (
    platform   TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, key)
) WITHOUT ROWID;
