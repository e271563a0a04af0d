"""The reply outbox: the effects of incoming events (and of the clock), sent after commit.

A row is written in the transaction that applied its event, and marked 'sent' only once
the platform accepted it, with the ids of the messages it made; its effect (text, files)
is cleared then, so that replies (a data export, say) do not stay in the database.

Once the transaction that wrote them committed, the rows are handed to ``listener`` (the
reply sender, which sends them without reading them back), and their ids noted in
``WRITTEN``, a context variable: the task that handled an event (or ran a clock job) then
waits for its own replies only (``ReplySender.drain``), never behind another chat's, whose
turn may be seconds away. The rows are written with the transaction's last trip to the
database (``Database.later``), and marked sent in groups (``Database.grouped``): under load,
one transaction marks the replies of many events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, Row, insertion, statement
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


Listener = Callable[[Sequence[ReplyRow]], None]


class ReplyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Told of the rows a transaction wrote as soon as it committed, before any other
        # task runs (so before anyone could read them back).
        self.listener: Listener | None = None

    async def add(self, source: tuple[str, str] | None, effects: Sequence[str],
                  now: datetime) -> None:
        """Write the rows in the caller's transaction; once it committed, they go to
        ``listener`` and their ids to ``WRITTEN``."""
        platform, event_id = source if source is not None else (None, None)
        moment = stamp(now)
        written: list[ReplyRow] = []
        for effect in effects:
            await self.db.later(insertion(
                "INSERT INTO replies (platform, event_id, effect, next_try_at, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (platform, event_id, effect, moment, moment)),
                then=_collect(written, effect, parse_stamp(moment)))
        self.db.on_commit(lambda: self._committed(written))

    def _committed(self, rows: list[ReplyRow]) -> None:
        WRITTEN.set(WRITTEN.get() + tuple(row.id for row in rows))
        if self.listener is not None:
            self.listener(rows)

    async def pending(self, after: int, limit: int) -> list[ReplyRow]:
        """Rows still to send with an id above ``after``, due or not, in id order."""
        rows = await self.db.fetchall(
            "SELECT id, effect, attempts, next_try_at FROM replies WHERE status = 'pending'"
            " AND id > ? ORDER BY id LIMIT ?", (after, limit))
        return [ReplyRow.from_row(row) for row in rows]

    async def mark_sent(self, reply_id: int, message_ids: list[str], now: datetime) -> None:
        """The ids alone: with the effect cleared, they name no chat (an erasure leaves
        nothing behind here). Committed with the other marks of the moment, or in the
        caller's transaction."""
        await self.db.grouped(statement(
            "UPDATE replies SET status = 'sent', effect = NULL, message_ids = ?, sent_at = ?,"
            " attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (json.dumps(message_ids), stamp(now), reply_id)))

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


def _collect(rows: list[ReplyRow], effect: str, due: datetime) -> Callable[[int], None]:
    """Note the row once its INSERT gave it an id."""
    return lambda row_id: rows.append(ReplyRow(row_id, effect, 0, due))
