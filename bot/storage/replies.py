"""The reply outbox: the effects of incoming events (and of the clock), sent after commit.

A row is written in the transaction that applied its event, and marked 'sent' only once
the platform accepted it, with the ids of the messages it made; its effect (text, files)
is cleared then, so that replies (a data export, say) do not stay in the database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, Row
from bot.storage.inbox import RETENTION


@dataclass(frozen=True, slots=True)
class ReplyRow:
    id: int
    effect: str  # JSON, bot/broadcast/replies.py
    attempts: int

    @classmethod
    def from_row(cls, row: Row) -> ReplyRow:
        return cls(row["id"], row["effect"], row["attempts"])


class ReplyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, source: tuple[str, str] | None, effects: Sequence[str],
                  now: datetime) -> None:
        platform, event_id = source if source is not None else (None, None)
        await self.db.executemany(
            "INSERT INTO replies (platform, event_id, effect, next_try_at, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(platform, event_id, effect, stamp(now), stamp(now)) for effect in effects])

    async def due(self, now: datetime, limit: int) -> list[ReplyRow]:
        rows = await self.db.fetchall(
            "SELECT id, effect, attempts FROM replies WHERE status = 'pending'"
            " AND next_try_at <= ? ORDER BY id LIMIT ?", (stamp(now), limit))
        return [ReplyRow.from_row(row) for row in rows]

    async def next_due(self) -> datetime | None:
        value = await self.db.fetchval(
            "SELECT min(next_try_at) FROM replies WHERE status = 'pending'")
        return None if value is None else parse_stamp(str(value))

    async def mark_sent(self, reply_id: int, message_ids: list[str], now: datetime) -> None:
        """The ids alone: with the effect cleared, they name no chat (an erasure leaves
        nothing behind here)."""
        await self.db.execute(
            "UPDATE replies SET status = 'sent', effect = NULL, message_ids = ?, sent_at = ?,"
            " attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (json.dumps(message_ids), stamp(now), reply_id))

    async def retry_later(self, reply_id: int, next_try: datetime, error: str) -> None:
        await self.db.execute(
            "UPDATE replies SET next_try_at = ?, attempts = attempts + 1, last_error = ?"
            " WHERE id = ?", (stamp(next_try), error[:500], reply_id))

    async def replace(self, reply_id: int, effect: str, now: datetime, error: str) -> None:
        """Another effect in the row's place (and so in its chat's order), due now, with
        its own attempts."""
        await self.db.execute(
            "UPDATE replies SET effect = ?, next_try_at = ?, attempts = 0, last_error = ?"
            " WHERE id = ?", (effect, stamp(now), error[:500], reply_id))

    async def mark_failed(self, reply_id: int, error: str) -> None:
        await self.db.execute(
            "UPDATE replies SET status = 'failed', effect = NULL, attempts = attempts + 1,"
            " last_error = ? WHERE id = ?", (error[:500], reply_id))

    async def prune(self, now: datetime) -> int:
        """Finished rows go with the inbox rows of their events."""
        return await self.db.execute(
            "DELETE FROM replies WHERE status != 'pending' AND created_at <= ?",
            (stamp(now - RETENTION),))
