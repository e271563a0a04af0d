"""Durable key/value state for one transport, so the database stays the only truth."""

from __future__ import annotations

from bot.storage.database import Database


class TransportState:
    def __init__(self, db: Database, platform: str) -> None:
        self.db = db
        self.platform = platform

    async def get(self, key: str) -> str | None:
        value = await self.db.fetchval(
            "SELECT value FROM transport_state WHERE platform = ? AND key = ?",
            (self.platform, key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO transport_state (platform, key, value, updated_at)"
            " VALUES (?, ?, ?, datetime('now')) ON CONFLICT (platform, key)"
            " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (self.platform, key, value))

    async def delete(self, key: str) -> None:
        await self.db.execute("DELETE FROM transport_state WHERE platform = ? AND key = ?",
                              (self.platform, key))

    async def starting_with(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) whose key starts with ``prefix``, in key order."""
        rows = await self.db.fetchall(
            "SELECT key, value FROM transport_state WHERE platform = ? AND substr(key, 1, ?) = ?"
            " ORDER BY key", (self.platform, len(prefix), prefix))
        return [(str(row["key"]), str(row["value"])) for row in rows]
