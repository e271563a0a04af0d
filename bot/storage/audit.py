"""Append-only audit trail of privileged actions and refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import stamp
from bot.storage.database import Database, Row


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: str
    actor: str
    action: str
    alert_id: int | None
    detail: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> AuditEvent:
        return cls(row["id"], row["at"], row["actor"], row["action"], row["alert_id"],
                   json.loads(row["detail"]))


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, now: datetime, actor: str, action: str, alert_id: int | None = None,
                     **detail: Any) -> None:
        await self.db.execute(
            "INSERT INTO audit_events (at, actor, action, alert_id, detail) VALUES (?, ?, ?, ?, ?)",
            (stamp(now), actor, action, alert_id, json.dumps(detail, ensure_ascii=False)))

    async def recent(self, limit: int = 50, action: str | None = None) -> list[AuditEvent]:
        rows = await self.db.fetchall(
            "SELECT * FROM audit_events WHERE ? IS NULL OR action = ? ORDER BY id DESC LIMIT ?",
            (action, action, limit))
        return [AuditEvent.from_row(row) for row in rows]
