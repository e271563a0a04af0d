"""The inbox: which incoming events were handled, so that a replayed one is skipped."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.clock import stamp
from bot.storage.database import Database, Queued, statement

# No platform replays an event this old: Telegram keeps unconfirmed updates 24 hours,
# a Matrix sync token is saved after every sync.
RETENTION = timedelta(days=7)


class InboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def first_time(self, platform: str, event_id: str, now: datetime) -> bool:
        """Record the event as handled; False when it already was. Call it inside the
        transaction that applies the event, so the record and its effects commit together."""
        return await (await self.record(platform, event_id, now)).answer() == 1

    async def record(self, platform: str, event_id: str, now: datetime) -> Queued[int]:
        """``first_time``, queued for the transaction's next trip to the database (the
        core's reads of the sender): its answer is 1 the first time, else 0."""
        return await self.db.later(statement(
            "INSERT INTO inbox (platform, event_id, handled_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING", (platform, event_id, stamp(now))))

    async def prune(self, now: datetime) -> int:
        return await self.db.execute("DELETE FROM inbox WHERE handled_at <= ?",
                                     (stamp(now - RETENTION),))
