"""Roles granted at run time by admins (the configuration's lists come on top)."""

from __future__ import annotations

from datetime import datetime

from bot.clock import stamp
from bot.storage.database import Database


class RoleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[tuple[str, str]]:
        rows = await self.db.fetchall("SELECT identity, role FROM granted_roles ORDER BY 1, 2")
        return [(row[0], row[1]) for row in rows]

    async def grant(self, identity: str, role: str, by: str, now: datetime) -> bool:
        return await self.db.execute(
            "INSERT OR IGNORE INTO granted_roles (identity, role, granted_by, granted_at)"
            " VALUES (?, ?, ?, ?)", (identity, role, by, stamp(now))) == 1

    async def revoke(self, identity: str, role: str) -> bool:
        return await self.db.execute(
            "DELETE FROM granted_roles WHERE identity = ? AND role = ?", (identity, role)) == 1
