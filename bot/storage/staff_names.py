"""The names staff are shown by when the configuration gives none: the platform's display
name, seen at the person's first message with a role (docs/data-register.md)."""

from __future__ import annotations

from datetime import datetime

from bot.clock import stamp
from bot.storage.database import Database


class StaffNameStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, identity: str) -> str | None:
        value = await self.db.fetchval("SELECT name FROM staff_names WHERE identity = ?",
                                       (identity,))
        return None if value is None else str(value)

    async def remember(self, identity: str, name: str, now: datetime) -> bool:
        """Keep the first name seen: True if it was new. A later change of display name is
        not followed, so what officers read about a person does not shift under them."""
        return await self.db.execute(
            "INSERT OR IGNORE INTO staff_names (identity, name, seen_at) VALUES (?, ?, ?)",
            (identity, name, stamp(now))) == 1

    async def identities(self) -> list[str]:
        rows = await self.db.fetchall("SELECT identity FROM staff_names ORDER BY identity")
        return [str(row[0]) for row in rows]

    async def forget(self, identities: list[str]) -> int:
        """Erase these people's names; how many were held."""
        forgotten = 0
        for identity in identities:
            forgotten += await self.db.execute("DELETE FROM staff_names WHERE identity = ?",
                                               (identity,))
        return forgotten
