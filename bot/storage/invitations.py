"""Invitations, the enrollments they brought, référents granted at run time, and the
requests to join a vetted community (issue 17; migration 0013)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, Row


class InvitationState(StrEnum):
    """Whether an invitation still enrolls people, and if not, why."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"  # used its ``max N`` times


@dataclass(frozen=True, slots=True)
class Invitation:
    id: int
    community: str
    communes: tuple[str, ...]
    partner: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Invitation:
        return cls(row["id"], row["community"], tuple(row["communes"].split()), row["partner"],
                   row["created_by"], parse_stamp(row["created_at"]),
                   _moment(row["expires_at"]), row["max_uses"], int(row["uses"]),
                   _moment(row["revoked_at"]))

    def state(self, now: datetime) -> InvitationState:
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return InvitationState.EXPIRED
        if self.max_uses is not None and self.uses >= self.max_uses:
            return InvitationState.EXHAUSTED
        return InvitationState.ACTIVE


@dataclass(frozen=True, slots=True)
class InvitationCounts:
    """What a partner may know of an invitation: how many it brought, never who."""

    invitation: Invitation
    enrolled: int  # people it brought in (its uses)
    still_active: int  # of those, still subscribed and receiving


@dataclass(frozen=True, slots=True)
class CommunityRequest:
    id: int
    subscriber_id: int
    community: str
    presentation: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> CommunityRequest:
        return cls(row["id"], row["subscriber_id"], row["community"], row["presentation"],
                   parse_stamp(row["created_at"]), parse_stamp(row["expires_at"]))


@dataclass(frozen=True, slots=True)
class ReferentGrant:
    identity: str
    community: str
    partner: str


def _moment(value: str | None) -> datetime | None:
    return None if value is None else parse_stamp(value)


class InvitationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- invitations ----------------------------------------------------------------------

    async def create(self, token_hash: str, community: str, communes: list[str], partner: str,
                     created_by: str, now: datetime, expires_at: datetime | None,
                     max_uses: int | None) -> int:
        return await self.db.insert(
            "INSERT INTO invitations (token_hash, community, communes, partner, created_by,"
            " created_at, expires_at, max_uses) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (token_hash, community, " ".join(communes), partner, created_by, stamp(now),
             None if expires_at is None else stamp(expires_at), max_uses))

    async def by_hash(self, token_hash: str) -> Invitation | None:
        row = await self.db.fetchone("SELECT * FROM invitations WHERE token_hash = ?",
                                     (token_hash,))
        return None if row is None else Invitation.from_row(row)

    async def get(self, invitation_id: int) -> Invitation | None:
        row = await self.db.fetchone("SELECT * FROM invitations WHERE id = ?", (invitation_id,))
        return None if row is None else Invitation.from_row(row)

    async def revoke(self, invitation_id: int, by: str, now: datetime) -> bool:
        return await self.db.execute(
            "UPDATE invitations SET revoked_at = ?, revoked_by = ? WHERE id = ?"
            " AND revoked_at IS NULL", (stamp(now), by, invitation_id)) == 1

    async def use(self, invitation: Invitation, subscriber_id: int, now: datetime) -> bool:
        """Count one use, unless it was the last allowed meanwhile; and note which
        subscriber it brought (False, nothing written: it could not be used)."""
        counted = await self.db.execute(
            "UPDATE invitations SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL"
            " AND (max_uses IS NULL OR uses < max_uses)", (invitation.id,))
        if counted != 1:
            return False
        await self.db.execute(
            "INSERT INTO subscriber_invitations (subscriber_id, invitation_id, community,"
            " used_at) VALUES (?, ?, ?, ?) ON CONFLICT (subscriber_id, invitation_id)"
            " DO NOTHING", (subscriber_id, invitation.id, invitation.community, stamp(now)))
        return True

    async def counts(self, communities: frozenset[str] | None) -> list[InvitationCounts]:
        """Each invitation (of these communities; None: all), newest first, with its counts."""
        rows = await self.db.fetchall(
            "SELECT i.*, (SELECT count(*) FROM subscriber_invitations si JOIN subscribers s"
            "  ON s.id = si.subscriber_id AND s.status = 'active'"
            "  JOIN subscriber_communities c ON c.subscriber_id = s.id"
            "  AND c.community = i.community WHERE si.invitation_id = i.id) AS still_active"
            " FROM invitations i ORDER BY i.id DESC")
        found = [InvitationCounts(Invitation.from_row(row), int(row["uses"]),
                                  int(row["still_active"])) for row in rows]
        return [c for c in found if communities is None or c.invitation.community in communities]

    async def used_by(self, subscriber_id: int) -> list[Row]:
        """The invitations a subscriber came through (their /mesdonnees)."""
        return await self.db.fetchall(
            "SELECT si.invitation_id, si.community, i.partner, si.used_at"
            " FROM subscriber_invitations si JOIN invitations i ON i.id = si.invitation_id"
            " WHERE si.subscriber_id = ? ORDER BY si.used_at", (subscriber_id,))

    async def by_partner(self) -> list[tuple[str, int, int]]:
        """(partner, people enrolled through its invitations, of those still active)."""
        rows = await self.db.fetchall(
            "SELECT i.partner, sum(i.uses), (SELECT count(*) FROM subscriber_invitations si"
            "  JOIN invitations j ON j.id = si.invitation_id AND j.partner = i.partner"
            "  JOIN subscribers s ON s.id = si.subscriber_id AND s.status = 'active')"
            " FROM invitations i GROUP BY i.partner ORDER BY sum(i.uses) DESC, i.partner")
        return [(str(row[0]), int(row[1]), int(row[2])) for row in rows]

    # -- requests to join a vetted community ----------------------------------------------

    async def request(self, subscriber_id: int, community: str, presentation: str,
                      now: datetime, expires_at: datetime) -> int:
        """A new request, or the pending one renewed with these words; its number."""
        rows = await self.db.fetchall(
            "INSERT INTO community_requests (subscriber_id, community, presentation,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (subscriber_id, community) DO UPDATE SET"
            " presentation = excluded.presentation, expires_at = excluded.expires_at"
            " RETURNING id", (subscriber_id, community, presentation, stamp(now),
                              stamp(expires_at)))
        return int(rows[0][0])

    async def pending(self, communities: frozenset[str] | None) -> list[CommunityRequest]:
        rows = await self.db.fetchall("SELECT * FROM community_requests ORDER BY id")
        found = [CommunityRequest.from_row(row) for row in rows]
        return [r for r in found if communities is None or r.community in communities]

    async def pending_of(self, subscriber_id: int) -> list[CommunityRequest]:
        rows = await self.db.fetchall(
            "SELECT * FROM community_requests WHERE subscriber_id = ? ORDER BY id",
            (subscriber_id,))
        return [CommunityRequest.from_row(row) for row in rows]

    async def get_request(self, request_id: int) -> CommunityRequest | None:
        row = await self.db.fetchone("SELECT * FROM community_requests WHERE id = ?",
                                     (request_id,))
        return None if row is None else CommunityRequest.from_row(row)

    async def close_request(self, request_id: int) -> bool:
        """Decided or expired: the person's words go (True if it was still there)."""
        return await self.db.execute("DELETE FROM community_requests WHERE id = ?",
                                     (request_id,)) == 1

    async def expired_requests(self, now: datetime) -> list[CommunityRequest]:
        rows = await self.db.fetchall(
            "SELECT * FROM community_requests WHERE expires_at <= ? ORDER BY id", (stamp(now),))
        return [CommunityRequest.from_row(row) for row in rows]

    async def add_community(self, subscriber_id: int, community: str) -> None:
        await self.db.execute(
            "INSERT INTO subscriber_communities (subscriber_id, community) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING", (subscriber_id, community))


class ReferentStore:
    """Référents granted with /role (the configuration's come on top, bot/roles.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[ReferentGrant]:
        rows = await self.db.fetchall(
            "SELECT identity, community, partner FROM referents ORDER BY 1, 2")
        return [ReferentGrant(row[0], row[1], row[2]) for row in rows]

    async def grant(self, identity: str, communities: list[str], partner: str, by: str,
                    now: datetime) -> None:
        for community in communities:
            await self.db.execute(
                "INSERT INTO referents (identity, community, partner, granted_by, granted_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (identity, community) DO UPDATE SET"
                " partner = excluded.partner", (identity, community, partner, by, stamp(now)))
        # One partner per person: their older grants now carry the same name.
        await self.db.execute("UPDATE referents SET partner = ? WHERE identity = ?",
                              (partner, identity))

    async def revoke(self, identity: str, communities: list[str] | None) -> int:
        if communities is None:
            return await self.db.execute("DELETE FROM referents WHERE identity = ?",
                                         (identity,))
        revoked = 0
        for community in communities:
            revoked += await self.db.execute(
                "DELETE FROM referents WHERE identity = ? AND community = ?",
                (identity, community))
        return revoked
