"""The figures of ``/stats``: counts only, exercises kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import stamp
from bot.storage.database import Database


@dataclass(frozen=True, slots=True)
class SubscriberCounts:
    by_status: dict[str, int]
    by_community: list[tuple[str, int]]  # active subscribers, most first
    by_commune: list[tuple[str, int]]  # INSEE code, active subscribers; the ``top`` first


@dataclass(frozen=True, slots=True)
class AlertCounts:
    real: list[tuple[str, int]]  # category, broadcast alerts; most first
    exercises: int


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    sent: int
    failed: int
    blocked: int
    receipts: int


class StatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def subscribers(self, top: int) -> SubscriberCounts:
        by_status = {row[0]: int(row[1]) for row in await self.db.fetchall(
            "SELECT status, count(*) FROM subscribers GROUP BY status")}
        by_community = await self.db.fetchall(
            "SELECT community, count(*) FROM subscriber_communities c JOIN subscribers s"
            " ON s.id = c.subscriber_id AND s.status = 'active' GROUP BY community"
            " ORDER BY count(*) DESC")
        by_commune = await self.db.fetchall(
            "SELECT insee, count(*) FROM subscriber_communes c JOIN subscribers s"
            " ON s.id = c.subscriber_id AND s.status = 'active' GROUP BY insee"
            " ORDER BY count(*) DESC, insee LIMIT ?", (top,))
        return SubscriberCounts(by_status, [(row[0], int(row[1])) for row in by_community],
                                [(row[0], int(row[1])) for row in by_commune])

    async def alerts(self, since: datetime) -> AlertCounts:
        rows = await self.db.fetchall(
            "SELECT category, exercise, count(*) FROM alerts WHERE kind = 'alert'"
            " AND status IN ('broadcasting', 'done') AND created_at >= ?"
            " GROUP BY category, exercise ORDER BY count(*) DESC", (stamp(since),))
        return AlertCounts([(category, int(n)) for category, exercise, n in rows if not exercise],
                           sum(int(n) for _, exercise, n in rows if exercise))

    async def deliveries(self, since: datetime) -> DeliveryCounts:
        sent, failed, blocked, receipts = await self.db.fetchone(
            "SELECT coalesce(sum(d.status = 'sent'), 0), coalesce(sum(d.status = 'failed'), 0),"
            " coalesce(sum(d.status = 'blocked'), 0), count(d.acknowledged_at) FROM deliveries d"
            " JOIN alerts a ON a.id = d.alert_id WHERE d.action = 'send' AND a.exercise = 0"
            " AND a.created_at >= ?", (stamp(since),)) or (0, 0, 0, 0)
        return DeliveryCounts(int(sent), int(failed), int(blocked), int(receipts))
