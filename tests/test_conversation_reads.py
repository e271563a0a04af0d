"""One conversation read per incoming event (ConversationStore.memo), never a stale one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.storage.conversations import ConversationState, ConversationStore
from bot.storage.database import Database, Row
from tests.harness import TestBot

NOW = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


class CountingReads:
    """Wraps a database's fetchone to count the conversation reads."""

    def __init__(self, db: Database) -> None:
        self.db, self.original, self.reads = db, db.fetchone, 0

    async def __call__(self, sql: str, params: Any = ()) -> Row | None:
        if "FROM conversations" in sql:
            self.reads += 1
        return await self.original(sql, params)


async def test_each_enrollment_step_reads_the_conversation_once(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    db = bot.core.services.db
    counting = CountingReads(db)
    monkeypatch.setattr(db, "fetchone", counting)
    who = "telegram:5"
    steps = [("say", "/start"), ("press", "accepte"), ("say", "commercant"),
             ("say", "valider"), ("say", "Vesoul"), ("say", "terminer"), ("say", "oui")]
    for action, text in steps:
        counting.reads = 0
        reply = await (bot.say(who, text) if action == "say" else bot.press(who, text))
        assert counting.reads <= 1, (text, counting.reads)
    assert "C'est fait" in reply


@pytest.fixture
async def store() -> AsyncIterator[ConversationStore]:
    db = await Database.open(":memory:")
    yield ConversationStore(db)
    await db.close()


def state(step: str = "one") -> ConversationState:
    return ConversationState("telegram:1", "telegram", "1", "enrollment", step,
                             {"communities": ["a"]}, "abc123", "fr",
                             NOW + timedelta(minutes=30, microseconds=7))


async def test_the_memo_answers_as_the_database_would(store: ConversationStore) -> None:
    await store.save(state(), NOW)
    outside = await store.get("telegram:1")
    async with store.db.transaction(), store.memo():
        first = await store.get("telegram:1")
        assert first == outside
        assert first is not None
        first.data["communities"].append("b")  # changed, not saved
        first.step = "two"
        assert await store.get("telegram:1") == outside  # a fresh copy, as read
        await store.save(state("three"), NOW)
        again = await store.get("telegram:1")
        assert again is not None and again.step == "three"
        assert again == await ConversationStore(store.db).get("telegram:1")  # no memo
        await store.delete("telegram:1")
        assert await store.get("telegram:1") is None
        await store.save(state("four"), NOW)
    async with store.db.transaction(), store.memo():
        assert await store.get("telegram:2") is None  # absence is remembered too
        fresh = await store.get("telegram:1")
        assert fresh is not None and fresh.step == "four"


async def test_a_rollback_leaves_no_memory(store: ConversationStore) -> None:
    await store.save(state(), NOW)
    with pytest.raises(RuntimeError):
        async with store.db.transaction(), store.memo():
            await store.save(state("rolled back"), NOW)
            raise RuntimeError("the handler failed")
    async with store.db.transaction(), store.memo():
        found = await store.get("telegram:1")
        assert found is not None and found.step == "one"
