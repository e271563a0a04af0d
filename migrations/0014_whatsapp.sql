-- WhatsApp (issue 19): what the rules of the Cloud API need the bot to remember.
-- A person WhatsApp id (wa_id) is their phone number, digits only: kept here only as long
-- as it serves (docs/data-register.md).

-- The 24-hour window: free text may go to a person only within 24 hours of their last
-- message; otherwise only an approved template. And the unreachable mark (error 131026),
-- cleared when they write again.
CREATE TABLE whatsapp_contacts (
    wa_id            TEXT PRIMARY KEY,
    last_inbound_at  TEXT,            -- their last message (ISO), opens the window
    unreachable_at   TEXT,            -- 131026 met (ISO), NULL when reachable
    unreachable_code INTEGER
);

-- Every message the bot sent on WhatsApp (its wamid, the id stored in deliveries and
-- replies) with the last status the webhooks of Meta gave: sent, delivered, read, failed.
-- Joined to the outbox on deliveries.message_id. A template message is billed (cost).
CREATE TABLE whatsapp_messages (
    message_id  TEXT PRIMARY KEY,
    template    INTEGER NOT NULL DEFAULT 0,   -- 1: sent as the approved template
    billable    INTEGER NOT NULL DEFAULT 0,   -- 1: charged (a template, unless Meta says not)
    status      TEXT NOT NULL,                -- accepted, sent, delivered, read, failed
    status_rank INTEGER NOT NULL,             -- statuses only move forward (0 accepted .. 3 read, 9 failed)
    error_code  INTEGER,
    sent_at     TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX whatsapp_messages_sent_at ON whatsapp_messages (sent_at);

-- Webhook deliveries already handled, by the SHA-256 of their body: Meta delivers the
-- same webhook again when it did not see our 200 in time; the copy is ignored.
CREATE TABLE whatsapp_webhooks (
    digest      TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
CREATE INDEX whatsapp_webhooks_received_at ON whatsapp_webhooks (received_at);
