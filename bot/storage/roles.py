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

    async def organisations(self) -> dict[str, str]:
        """PLATFORM:ID → the organisation its granted roles belong to (its granter's)."""
        rows = await self.db.fetchall(
            "SELECT identity, organisation FROM granted_roles ORDER BY granted_at")
        return {row[0]: row[1] for row in rows}

    async def grant(self, identity: str, role: str, by: str, now: datetime,
                    organisation: str = "defaut") -> bool:
        return await self.db.execute(
            "INSERT OR IGNORE INTO granted_roles (identity, role, granted_by, granted_at,"
            " organisation) VALUES (?, ?, ?, ?, ?)",
            (identity, role, by, stamp(now), organisation)) == 1

    async def revoke(self, identity: str, role: str) -> bool:
        return await self.db.execute(
            "DELETE FROM granted_roles WHERE identity = ? AND role = ?", (identity, role)) == 1
