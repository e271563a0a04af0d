"""Scheduled prevention messages: one-off or weekly, approved once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, Row


@dataclass(frozen=True, slots=True)
class Schedule:
    id: int
    rule: str  # "once" or "weekly:<weekday 0=Monday>:<HH:MM>"
    category: str
    perimeter: str
    communities: list[str]
    body: str
    created_by: str
    next_run_at: datetime | None
    alert_id: int | None
    cancelled_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> Schedule:
        return cls(row["id"], row["rule"], row["category"], row["perimeter"],
                   json.loads(row["communities"]), row["body"], row["created_by"],
                   _moment(row["next_run_at"]), row["alert_id"], _moment(row["cancelled_at"]))

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The first occurrence strictly after ``moment``, in local wall-clock time."""
        if not self.rule.startswith("weekly:"):
            return None
        _, weekday, clock = self.rule.split(":", 2)
        return next_weekly(moment, int(weekday), time.fromisoformat(clock), zone)


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_stamp(text)


def next_weekly(moment: datetime, weekday: int, at: time, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    days = (weekday - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=days), at, zone)
    if candidate <= local:
        candidate = datetime.combine(candidate.date() + timedelta(days=7), at, zone)
    return candidate


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, rule: str, category: str, perimeter: str, communities: list[str],
                     body: str, created_by: str, first_run: datetime, now: datetime) -> int:
        return await self.db.insert(
            "INSERT INTO schedules (rule, category, perimeter, communities, body, created_by,"
            " created_at, next_run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (rule, category, perimeter, json.dumps(communities), body, created_by,
             stamp(now), stamp(first_run)))

    async def get(self, schedule_id: int) -> Schedule | None:
        row = await self.db.fetchone("SELECT * FROM schedules WHERE id = ?", (schedule_id,))
        return None if row is None else Schedule.from_row(row)

    async def active(self) -> list[Schedule]:
        rows = await self.db.fetchall(
            "SELECT * FROM schedules WHERE cancelled_at IS NULL ORDER BY next_run_at, id")
        return [Schedule.from_row(row) for row in rows]

    async def set_next(self, schedule_id: int, next_run: datetime, alert_id: int) -> None:
        await self.db.execute(
            "UPDATE schedules SET next_run_at = ?, alert_id = ? WHERE id = ?",
            (stamp(next_run), alert_id, schedule_id))

    async def cancel(self, schedule_id: int, now: datetime) -> bool:
        changed = await self.db.execute(
            "UPDATE schedules SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL",
            (stamp(now), schedule_id))
        return changed == 1

    async def withdraw_unsent(self, schedule_id: int, actor: str, now: datetime) -> int:
        """Withdraw the schedule's occurrences that have not gone out yet."""
        rows = await self.db.fetchall(
            "SELECT id FROM alerts WHERE schedule_id = ? AND status IN ('pending', 'approved')",
            (schedule_id,))
        for row in rows:
            await self.db.execute(
                "UPDATE alerts SET status = 'withdrawn' WHERE id = ?", (row[0],))
            await self.db.execute(
                "INSERT INTO alert_transitions (alert_id, status, actor, at)"
                " VALUES (?, 'withdrawn', ?, ?)", (row[0], actor, stamp(now)))
        return len(rows)
