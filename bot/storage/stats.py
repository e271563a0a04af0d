"""The figures of ``/stats``: counts only, exercises kept apart."""

from __future__ import annotations

from collections.abc import Collection
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


def scope(organisations: Collection[str] | None, column: str = "a.organisation",
          ) -> tuple[str, tuple[str, ...]]:
    """A condition keeping the alerts of these organisations (None: every alert)."""
    if organisations is None:
        return "", ()
    keys = tuple(sorted(organisations))
    if not keys:
        return " AND 0 = 1", ()
    return f" AND {column} IN ({', '.join('?' * len(keys))})", keys


def _living_in(communes: Collection[str] | None) -> tuple[str, tuple[str, ...]]:
    """A condition on ``s`` keeping subscribers with a commune among these (None: all)."""
    if communes is None:
        return "", ()
    codes = tuple(sorted(communes))
    if not codes:
        return " AND 0 = 1", ()
    return (" AND s.id IN (SELECT subscriber_id FROM subscriber_communes WHERE insee IN"
            f" ({', '.join('?' * len(codes))}))"), codes


class StatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def subscribers(self, top: int,
                          communes: Collection[str] | None = None) -> SubscriberCounts:
        """``communes``: only subscribers with at least one of them, and only those communes
        in the list by commune (an organisation's territory); None: everyone."""
        where, codes = _living_in(communes)
        by_status = {row[0]: int(row[1]) for row in await self.db.fetchall(
            f"SELECT status, count(*) FROM subscribers s WHERE 1 = 1{where} GROUP BY status",
            codes)}
        by_community = await self.db.fetchall(
            "SELECT community, count(*) FROM subscriber_communities c JOIN subscribers s"
            f" ON s.id = c.subscriber_id AND s.status = 'active'{where} GROUP BY community"
            " ORDER BY count(*) DESC", codes)
        in_list = "" if communes is None else f" AND c.insee IN ({', '.join('?' * len(codes))})"
        by_commune = await self.db.fetchall(
            "SELECT insee, count(*) FROM subscriber_communes c JOIN subscribers s"
            f" ON s.id = c.subscriber_id AND s.status = 'active' WHERE 1 = 1{in_list}"
            " GROUP BY insee ORDER BY count(*) DESC, insee LIMIT ?",
            (*(codes if communes is not None else ()), top))
        return SubscriberCounts(by_status, [(row[0], int(row[1])) for row in by_community],
                                [(row[0], int(row[1])) for row in by_commune])

    async def alerts(self, since: datetime,
                     organisations: Collection[str] | None = None) -> AlertCounts:
        """``organisations``: only their alerts (bot/organisations.py); None: all."""
        where, keys = scope(organisations, "organisation")
        rows = await self.db.fetchall(
            "SELECT category, exercise, count(*) FROM alerts WHERE kind = 'alert'"
            f" AND status IN ('broadcasting', 'done') AND created_at >= ?{where}"
            " GROUP BY category, exercise ORDER BY count(*) DESC", (stamp(since), *keys))
        return AlertCounts([(category, int(n)) for category, exercise, n in rows if not exercise],
                           sum(int(n) for _, exercise, n in rows if exercise))

    async def deliveries(self, since: datetime,
                         organisations: Collection[str] | None = None) -> DeliveryCounts:
        where, keys = scope(organisations)
        sent, failed, blocked, receipts = await self.db.fetchone(
            "SELECT coalesce(sum(d.status = 'sent'), 0), coalesce(sum(d.status = 'failed'), 0),"
            " coalesce(sum(d.status = 'blocked'), 0), count(d.acknowledged_at) FROM deliveries d"
            " JOIN alerts a ON a.id = d.alert_id WHERE d.action = 'send' AND a.exercise = 0"
            f" AND a.created_at >= ?{where}", (stamp(since), *keys)) or (0, 0, 0, 0)
        return DeliveryCounts(int(sent), int(failed), int(blocked), int(receipts))
