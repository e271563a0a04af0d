"""Information sent by recipients about an alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import stamp
from bot.storage.database import Database, Row


@dataclass(frozen=True, slots=True)
class Tip:
    id: int
    alert_id: int
    subscriber_id: int | None
    platform: str
    chat_id: str
    body: str
    location: tuple[float, float] | None

    @classmethod
    def from_row(cls, row: Row) -> Tip:
        located = row["latitude"] is not None and row["longitude"] is not None
        return cls(row["id"], row["alert_id"], row["subscriber_id"], row["platform"],
                   row["chat_id"], row["body"],
                   (row["latitude"], row["longitude"]) if located else None)


class TipStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, alert_id: int, subscriber_id: int | None, platform: str, chat_id: str,
                  body: str, location: tuple[float, float] | None, now: datetime) -> int:
        lat, lon = location if location else (None, None)
        return await self.db.insert(
            "INSERT INTO tips (alert_id, subscriber_id, platform, chat_id, body, latitude,"
            " longitude, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, subscriber_id, platform, chat_id, body, lat, lon, stamp(now)))

    async def get(self, tip_id: int) -> Tip | None:
        row = await self.db.fetchone("SELECT * FROM tips WHERE id = ?", (tip_id,))
        return None if row is None else Tip.from_row(row)

    async def mark_answered(self, tip_id: int, now: datetime) -> None:
        await self.db.execute("UPDATE tips SET answered_at = ? WHERE id = ?",
                              (stamp(now), tip_id))
