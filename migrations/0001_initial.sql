-- Initial schema. Times are ISO-8601 UTC text ("2026-11-22T21:59:48.123456+00:00").
-- Identities are written PLATFORM:ID (telegram:123, matrix:@a:b, console:alice).

CREATE TABLE subscribers (
    id               INTEGER PRIMARY KEY,
    platform         TEXT NOT NULL,
    platform_user_id TEXT NOT NULL,
    chat_id          TEXT NOT NULL,
    language         TEXT NOT NULL DEFAULT 'fr',
    status           TEXT NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'paused', 'blocked')),
    consent_at       TEXT NOT NULL,
    consent_version  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (platform, platform_user_id)
);
CREATE INDEX subscribers_chat ON subscribers (platform, chat_id);

CREATE TABLE subscriber_communes (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    insee         TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, insee)
) WITHOUT ROWID;
-- Recipient resolution starts from the alert's communes.
CREATE INDEX subscriber_communes_insee ON subscriber_communes (insee, subscriber_id);

CREATE TABLE subscriber_communities (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    community     TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, community)
) WITHOUT ROWID;

CREATE TABLE chat_groups (
    id             INTEGER PRIMARY KEY,
    platform       TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    title          TEXT NOT NULL DEFAULT '',
    perimeter      TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    registered_by  TEXT NOT NULL,
    registered_at  TEXT NOT NULL,
    UNIQUE (platform, chat_id)
);

CREATE TABLE group_communes (
    group_id INTEGER NOT NULL REFERENCES chat_groups (id) ON DELETE CASCADE,
    insee    TEXT NOT NULL,
    PRIMARY KEY (group_id, insee)
) WITHOUT ROWID;
CREATE INDEX group_communes_insee ON group_communes (insee, group_id);

CREATE TABLE group_communities (
    group_id  INTEGER NOT NULL REFERENCES chat_groups (id) ON DELETE CASCADE,
    community TEXT NOT NULL,
    PRIMARY KEY (group_id, community)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id                 INTEGER PRIMARY KEY,
    category           TEXT NOT NULL,
    perimeter          TEXT NOT NULL,
    perimeter_json     TEXT NOT NULL,
    all_communities    INTEGER NOT NULL CHECK (all_communities IN (0, 1)),
    body               TEXT NOT NULL,
    facts_at           TEXT NOT NULL,
    requested_by       TEXT NOT NULL,
    request_platform   TEXT NOT NULL,
    request_chat_id    TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN
                       ('pending', 'approved', 'rejected', 'broadcasting', 'done', 'expired',
                        'withdrawn')),
    required_approvals INTEGER NOT NULL,
    stale_override     INTEGER NOT NULL DEFAULT 0,
    rejection_reason   TEXT,
    created_at         TEXT NOT NULL,
    decided_at         TEXT,
    broadcast_started_at TEXT,
    completed_at       TEXT,
    reported_at        TEXT,
    expires_at         TEXT NOT NULL
);
CREATE INDEX alerts_requester ON alerts (requested_by, id);

-- Every state change of an alert, with its time and who caused it.
CREATE TABLE alert_transitions (
    id       INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    status   TEXT NOT NULL,
    actor    TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, id);

CREATE TABLE alert_communes (
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    insee    TEXT NOT NULL,
    PRIMARY KEY (alert_id, insee)
) WITHOUT ROWID;

CREATE TABLE alert_communities (
    alert_id  INTEGER NOT NULL REFERENCES alerts (id),
    community TEXT NOT NULL,
    PRIMARY KEY (alert_id, community)
) WITHOUT ROWID;

CREATE TABLE approvals (
    id         INTEGER PRIMARY KEY,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id),
    officer    TEXT NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason     TEXT,
    override_stale INTEGER NOT NULL DEFAULT 0,
    decided_at TEXT NOT NULL,
    UNIQUE (alert_id, officer)
);

-- The outbox: one row per (alert, recipient), written before anything is sent.
CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY,
    alert_id       INTEGER NOT NULL REFERENCES alerts (id),
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('subscriber', 'group')),
    recipient_id   INTEGER NOT NULL,
    platform       TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'blocked')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_try_at    TEXT NOT NULL,
    last_error     TEXT,
    message_id     TEXT,
    sent_at        TEXT,
    -- Set when a restart found the row 'sending': it may have reached the recipient twice.
    maybe_duplicate INTEGER NOT NULL DEFAULT 0,
    UNIQUE (alert_id, platform, chat_id)
);
CREATE INDEX deliveries_due ON deliveries (platform, status, priority, next_try_at);
CREATE INDEX deliveries_alert ON deliveries (alert_id, status);

-- Open conversations (enrollment, guided alert); one per identity.
CREATE TABLE conversations (
    identity   TEXT PRIMARY KEY,
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    step       TEXT NOT NULL,
    data       TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    language   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX conversations_expiry ON conversations (expires_at);

-- Messages the bot posted and may edit later (approval requests in officers' channels).
CREATE TABLE posted_messages (
    id         INTEGER PRIMARY KEY,
    purpose    TEXT NOT NULL,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id),
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    posted_at  TEXT NOT NULL
);
CREATE INDEX posted_messages_alert ON posted_messages (alert_id, purpose);

CREATE TABLE audit_events (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    alert_id INTEGER,
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_alert ON audit_events (alert_id, id);
