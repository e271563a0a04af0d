"""Chat groups registered as alert targets, with their communes and communities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import stamp
from bot.storage.database import Database, Row


@dataclass(frozen=True, slots=True)
class ChatGroup:
    id: int
    platform: str
    chat_id: str
    title: str
    perimeter: str
    status: str

    @classmethod
    def from_row(cls, row: Row) -> ChatGroup:
        return cls(row["id"], row["platform"], row["chat_id"], row["title"], row["perimeter"],
                   row["status"])


class GroupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, platform: str, chat_id: str) -> ChatGroup | None:
        row = await self.db.fetchone(
            "SELECT * FROM chat_groups WHERE platform = ? AND chat_id = ?", (platform, chat_id))
        return None if row is None else ChatGroup.from_row(row)

    async def register(self, platform: str, chat_id: str, title: str, perimeter: str,
                       communes: list[str], communities: list[str], registered_by: str,
                       now: datetime) -> ChatGroup:
        async with self.db.transaction():
            await self.db.execute(
                "INSERT INTO chat_groups (platform, chat_id, title, perimeter, status,"
                " registered_by, registered_at) VALUES (?, ?, ?, ?, 'active', ?, ?)"
                " ON CONFLICT (platform, chat_id) DO UPDATE SET title = excluded.title,"
                " perimeter = excluded.perimeter, status = 'active',"
                " registered_by = excluded.registered_by, registered_at = excluded.registered_at",
                (platform, chat_id, title, perimeter, registered_by, stamp(now)))
            group = await self.get(platform, chat_id)
            assert group is not None
            await self.db.execute("DELETE FROM group_communes WHERE group_id = ?", (group.id,))
            await self.db.execute("DELETE FROM group_communities WHERE group_id = ?", (group.id,))
            await self.db.executemany(
                "INSERT INTO group_communes (group_id, insee) VALUES (?, ?)",
                [(group.id, code) for code in sorted(set(communes))])
            await self.db.executemany(
                "INSERT INTO group_communities (group_id, community) VALUES (?, ?)",
                [(group.id, key) for key in sorted(set(communities))])
        return group

    async def unregister(self, group: ChatGroup) -> None:
        await self.db.execute("DELETE FROM chat_groups WHERE id = ?", (group.id,))

    async def set_status_by_chat(self, platform: str, chat_id: str, status: str) -> int:
        return await self.db.execute(
            "UPDATE chat_groups SET status = ? WHERE platform = ? AND chat_id = ?",
            (status, platform, chat_id))

    async def move(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        await self.db.execute(
            "UPDATE chat_groups SET chat_id = ? WHERE platform = ? AND chat_id = ?",
            (new_chat_id, platform, old_chat_id))
