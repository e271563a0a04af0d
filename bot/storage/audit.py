"""Append-only audit trail of privileged actions and refusals, hash-chained.

Each event stores the SHA-256 of (previous hash + its own content), so editing or
deleting any past event breaks every hash after it: ``verify`` finds where.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from bot.clock import stamp
from bot.keys import Keys
from bot.storage.database import Database


def chain_hash(previous: str, content: tuple[Any, ...]) -> str:
    canonical = json.dumps([previous, *content], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditStore:
    def __init__(self, db: Database, keys: Keys) -> None:
        self.db = db
        self.keys = keys

    async def record(self, now: datetime, actor: str, action: str, alert_id: int | None = None,
                     **detail: Any) -> None:
        content = (stamp(now), actor, action, alert_id,
                   json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str))
        async with self.db.transaction():  # the chain's tail must not move under us
            previous = await self.db.fetchval(
                "SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1") or ""
            await self.db.execute(
                "INSERT INTO audit_events (at, actor, action, alert_id, detail, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*content, previous, chain_hash(previous, content)))

    def pseudonym(self, identity: str) -> str:
        """A stable stand-in for a subscriber in this append-only trail, which cannot be
        edited when the subscriber is erased: keyed by the secret key, which the database
        does not hold, so the file alone cannot tell whose it is (bot/keys.py)."""
        return self.keys.pseudonym_of(identity)

    async def last_hash(self) -> str:
        return str(await self.db.fetchval(
            "SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1") or "")

    async def verify(self) -> tuple[int, int | None]:
        """(events checked, id of the first event that does not match or None)."""
        previous, checked = "", 0
        rows = await self.db.fetchall(
            "SELECT id, at, actor, action, alert_id, detail, prev_hash, hash"
            " FROM audit_events ORDER BY id")
        for row in rows:
            if not row[7] and not previous:
                continue  # written before the chain existed (migration 0003)
            content = (row[1], row[2], row[3], row[4], row[5])
            if row[6] != previous or row[7] != chain_hash(previous, content):
                return checked, int(row[0])
            previous, checked = row[7], checked + 1
        return checked, None
