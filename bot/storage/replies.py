"""The reply outbox: the effects of incoming events (and of the clock), sent after commit.

A row is written in the transaction that applied its event, and marked 'sent' only once
the platform accepted it, with the ids of the messages it made; its effect (text, files)
is cleared then, so that replies (a data export, say) do not stay in the database.

``add`` also notes the ids it wrote in ``WRITTEN``, a context variable: the task that
handled an event (or ran a clock job) then waits for its own replies only
(``ReplySender.drain``), never behind another chat's, whose turn may be seconds away.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, Row
from bot.storage.inbox import RETENTION

# The reply rows this task wrote and has not waited for yet (ReplySender.drain takes them).
WRITTEN: ContextVar[tuple[int, ...]] = ContextVar("replies_written", default=())


def take_written() -> tuple[int, ...]:
    """The rows this task wrote since it last asked, forgotten once returned."""
    written = WRITTEN.get()
    WRITTEN.set(())
    return written


@dataclass(frozen=True, slots=True)
class ReplyRow:
    id: int
    effect: str  # JSON, bot/broadcast/replies.py
    attempts: int
    next_try_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ReplyRow:
        return cls(row["id"], row["effect"], row["attempts"],
                   parse_stamp(str(row["next_try_at"])))


class ReplyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, source: tuple[str, str] | None, effects: Sequence[str],
                  now: datetime) -> list[int]:
        """Write the rows (in the caller's transaction); their ids, also noted in
        ``WRITTEN``. An event writes a handful: one statement each is no cost."""
        platform, event_id = source if source is not None else (None, None)
        ids = [await self.db.insert(
            "INSERT INTO replies (platform, event_id, effect, next_try_at, created_at)"
            " VALUES (?, ?, ?, ?, ?)", (platform, event_id, effect, stamp(now), stamp(now)))
            for effect in effects]
        WRITTEN.set(WRITTEN.get() + tuple(ids))
        return ids

    async def pending(self, after: int, limit: int) -> list[ReplyRow]:
        """Rows still to send with an id above ``after``, due or not, in id order."""
        rows = await self.db.fetchall(
            "SELECT id, effect, attempts, next_try_at FROM replies WHERE status = 'pending'"
            " AND id > ? ORDER BY id LIMIT ?", (after, limit))
        return [ReplyRow.from_row(row) for row in rows]

    async def mark_sent(self, reply_id: int, message_ids: list[str], now: datetime) -> None:
        """The ids alone: with the effect cleared, they name no chat (an erasure leaves
        nothing behind here)."""
        await self.db.execute(
            "UPDATE replies SET status = 'sent', effect = NULL, message_ids = ?, sent_at = ?,"
            " attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (json.dumps(message_ids), stamp(now), reply_id))

    async def retry_later(self, reply_id: int, next_try: datetime, error: str,
                          count_attempt: bool = True) -> None:
        """Due again at ``next_try``; a wait for the platform's budget (a 429) is no
        attempt: only real failures count towards giving up."""
        await self.db.execute(
            "UPDATE replies SET next_try_at = ?, attempts = attempts + ?, last_error = ?"
            " WHERE id = ?", (stamp(next_try), int(count_attempt), error[:500], reply_id))

    async def retarget(self, reply_id: int, effect: str) -> None:
        """The same effect, for the chat's new id (a group that moved)."""
        await self.db.execute("UPDATE replies SET effect = ? WHERE id = ?", (effect, reply_id))

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
