-- Partners bring their members (issue 17): référents, invitations, vetted communities.

-- Référents granted at run time (/role PLATFORM:ID referent <communautés> : <partenaire>),
-- on top of the configuration's roles.referents: partner staff (a chamber, an association)
-- bound to the communities whose invitations and requests they handle.
CREATE TABLE referents (
    identity   TEXT NOT NULL,                  -- PLATFORM:ID
    community  TEXT NOT NULL,
    partner    TEXT NOT NULL,                  -- the name on their posters
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (identity, community)
);

-- An invitation: the link and QR code a partner hands out. Only the SHA-256 of its token
-- is kept: whoever reads the database cannot enroll anyone with it. The référent keeps the
-- link, QR code and poster sent at creation (the number on the poster names the row).
CREATE TABLE invitations (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    community  TEXT NOT NULL,
    communes   TEXT NOT NULL,                  -- INSEE codes pre-selected, space-separated
    partner    TEXT NOT NULL,
    created_by TEXT NOT NULL,                  -- PLATFORM:ID of the référent or admin
    created_at TEXT NOT NULL,
    expires_at TEXT,                           -- NULL: until revoked
    max_uses   INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
    uses       INTEGER NOT NULL DEFAULT 0,
    revoked_at TEXT,
    revoked_by TEXT
);

-- Which invitation brought which subscriber into which community: partners see counts,
-- never who. Goes with the subscriber (erasure).
CREATE TABLE subscriber_invitations (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    invitation_id INTEGER NOT NULL REFERENCES invitations(id),
    community     TEXT NOT NULL,
    used_at       TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, invitation_id)
);
CREATE INDEX subscriber_invitations_invitation ON subscriber_invitations (invitation_id);

-- A request to join a vetted community (maires, élus, réservistes) without an invitation:
-- what the person chose to write about themselves, for a référent of the community to
-- accept or decline. Deleted when decided or when it expires; nothing is delivered for
-- that community until it is accepted.
CREATE TABLE community_requests (
    id            INTEGER PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    community     TEXT NOT NULL,
    presentation  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    UNIQUE (subscriber_id, community)
);
CREATE INDEX community_requests_expiry ON community_requests (expires_at);
