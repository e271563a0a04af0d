"""Subscribers, their communes and their communities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import stamp
from bot.storage.database import Database, Row


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    platform: str
    platform_user_id: str
    chat_id: str
    language: str
    status: str
    consent_at: str
    consent_version: str

    @classmethod
    def from_row(cls, row: Row) -> Subscriber:
        return cls(row["id"], row["platform"], row["platform_user_id"], row["chat_id"],
                   row["language"], row["status"], row["consent_at"], row["consent_version"])


@dataclass(frozen=True, slots=True)
class Profile:
    subscriber: Subscriber
    communes: list[str]
    communities: list[str]


class SubscriberStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, platform: str, user_id: str) -> Subscriber | None:
        row = await self.db.fetchone(
            "SELECT * FROM subscribers WHERE platform = ? AND platform_user_id = ?",
            (platform, user_id))
        return None if row is None else Subscriber.from_row(row)

    async def language_of(self, subscriber_id: int) -> str | None:
        """A subscriber's language, by id (None once they are gone)."""
        value = await self.db.fetchval("SELECT language FROM subscribers WHERE id = ?",
                                       (subscriber_id,))
        return None if value is None else str(value)

    async def profile(self, subscriber: Subscriber) -> Profile:
        communes = await self.db.fetchall(
            "SELECT insee FROM subscriber_communes WHERE subscriber_id = ? ORDER BY insee",
            (subscriber.id,))
        communities = await self.db.fetchall(
            "SELECT community FROM subscriber_communities WHERE subscriber_id = ? "
            "ORDER BY community", (subscriber.id,))
        return Profile(subscriber, [r[0] for r in communes], [r[0] for r in communities])

    async def enroll(self, platform: str, user_id: str, chat_id: str, language: str,
                     consent_version: str, now: datetime, communes: list[str],
                     communities: list[str]) -> Subscriber:
        moment = stamp(now)
        async with self.db.transaction():
            await self.db.execute(
                "INSERT INTO subscribers (platform, platform_user_id, chat_id, language, status,"
                " consent_at, consent_version, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?)"
                " ON CONFLICT (platform, platform_user_id) DO UPDATE SET"
                " chat_id = excluded.chat_id, language = excluded.language, status = 'active',"
                " consent_at = excluded.consent_at, consent_version = excluded.consent_version,"
                " updated_at = excluded.updated_at",
                (platform, user_id, chat_id, language, moment, consent_version, moment, moment))
            subscriber = await self.get(platform, user_id)
            assert subscriber is not None
            await self.set_communes(subscriber, communes, now)
            await self.set_communities(subscriber, communities, now)
        return subscriber

    async def set_communes(self, subscriber: Subscriber, codes: list[str], now: datetime) -> None:
        async with self.db.transaction():
            await self.db.execute("DELETE FROM subscriber_communes WHERE subscriber_id = ?",
                                  (subscriber.id,))
            await self.db.executemany(
                "INSERT INTO subscriber_communes (subscriber_id, insee) VALUES (?, ?)",
                [(subscriber.id, code) for code in sorted(set(codes))])
            await self._touch(subscriber, now)

    async def set_communities(self, subscriber: Subscriber, keys: list[str],
                              now: datetime) -> None:
        async with self.db.transaction():
            await self.db.execute("DELETE FROM subscriber_communities WHERE subscriber_id = ?",
                                  (subscriber.id,))
            await self.db.executemany(
                "INSERT INTO subscriber_communities (subscriber_id, community) VALUES (?, ?)",
                [(subscriber.id, key) for key in sorted(set(keys))])
            await self._touch(subscriber, now)

    async def set_status(self, subscriber_id: int, status: str, now: datetime) -> None:
        await self.db.execute(
            "UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
            (status, stamp(now), subscriber_id))

    async def set_status_by_chat(self, platform: str, chat_id: str, status: str,
                                 now: datetime) -> int:
        return await self.db.execute(
            "UPDATE subscribers SET status = ?, updated_at = ? WHERE platform = ? AND chat_id = ?",
            (status, stamp(now), platform, chat_id))

    async def renew_consent(self, subscriber: Subscriber, version: str, now: datetime) -> None:
        await self.db.execute(
            "UPDATE subscribers SET consent_at = ?, consent_version = ?, updated_at = ?"
            " WHERE id = ?", (stamp(now), version, stamp(now), subscriber.id))

    async def rejoin(self, platform: str, user_id: str, chat_id: str, now: datetime) -> int:
        """The person is reachable again, possibly in a new chat (Matrix: a new DM room)."""
        return await self.db.execute(
            "UPDATE subscribers SET chat_id = ?, status = 'active', updated_at = ?"
            " WHERE platform = ? AND platform_user_id = ? AND status = 'blocked'",
            (chat_id, stamp(now), platform, user_id))

    async def set_language(self, subscriber: Subscriber, language: str, now: datetime) -> None:
        await self.db.execute(
            "UPDATE subscribers SET language = ?, updated_at = ? WHERE id = ?",
            (language, stamp(now), subscriber.id))

    async def delete(self, subscriber: Subscriber) -> None:
        # Communes and communities go with it (ON DELETE CASCADE); deliveries keep
        # only the chat id needed to count them.
        await self.db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber.id,))

    async def _touch(self, subscriber: Subscriber, now: datetime) -> None:
        await self.db.execute("UPDATE subscribers SET updated_at = ? WHERE id = ?",
                              (stamp(now), subscriber.id))
