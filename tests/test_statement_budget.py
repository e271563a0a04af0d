"""What an incoming event costs the database: statements, and trips to aiosqlite's thread.

aiosqlite runs every call on one thread; under an enrollment spike that thread, not SQLite,
limits the bot (issue 14). Each trip ("hop") costs far more than the statement it carries,
so ``bot/storage/database.py`` packs a transaction into as few as it can. These budgets are
counts, not timings: an enrollment step or a receipt that needs more trips fails here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.context import Context
from bot.domain import Effects
from bot.storage.database import Database, insertion, statement
from bot.turns import Turns
from tests.harness import OFFICERS, TestBot

WHO = "telegram:5"


@dataclass(frozen=True)
class Budget:
    statements: int  # BEGIN and COMMIT included
    hops: int


# The benchmark's enrollment (benchmarks/incoming.py): what a person does on Telegram, and
# its budget. Before the budgets: 11 to 19 statements and 21 to 36 hops per step.
# A step: BEGIN + inbox row + subscriber + conversation (one hop); the conversation, the
# reply row and COMMIT (one hop); the reply marked sent (one hop, shared under load).
ENROLLMENT = (
    ("say", "/start", Budget(10, 3)),
    ("press", "yes", Budget(10, 3)),
    ("press", "t:citoyen", Budget(10, 3)),
    ("press", "done", Budget(10, 3)),
    ("say", "Vesoul", Budget(10, 3)),
    ("press", "done", Budget(10, 3)),
    # + the subscriber row (RETURNING it), its communes and communities
    ("press", "confirm", Budget(15, 4)),
)
RECEIPT = Budget(11, 4)  # before: 12 statements, 24 hops
COMMAND = Budget(9, 3)  # /aide; before: 9 statements, 16 hops


class Counting:
    """The statements SQLite ran (its trace callback) and the database's hops."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[str] = []
        self.hops = db.hops

    def __call__(self, sql: str) -> None:
        self.statements.append(" ".join(sql.split()))

    def restart(self) -> None:
        self.statements.clear()
        self.hops = self.db.hops

    def spent(self) -> Budget:
        return Budget(len(self.statements), self.db.hops - self.hops)


@pytest.fixture
async def counting(bot: TestBot) -> AsyncIterator[Counting]:
    db = bot.core.core.services.db
    # Someone else first: the reply sender's first look at the outbox (at start) is over.
    await bot.say("telegram:6", "/aide")
    counter = Counting(db)
    await db._connection.set_trace_callback(counter)
    yield counter  # the bot's database closes with it


def button(bot: TestBot, value: str) -> str:
    """The data of the conversation button offering ``value`` in the person's last prompt."""
    for post in reversed(bot.transports["telegram"].posted["5"]):
        for choice in post.current.choices:
            if choice.data.startswith("c:") and choice.data.split(":", 2)[2] == value:
                return choice.data
    raise AssertionError(f"no button {value!r}")


async def event(bot: TestBot, text: str = "", choice: str | None = None) -> str:
    """What the core does with one event from WHO (``TestBot.say`` also reads the outbox
    afterwards, for files: not the bot's cost); the replies' text."""
    posted = bot.transports["telegram"].posted["5"]
    before = len(posted)
    await bot.core.core.handle(bot._incoming(WHO, None, text=text, choice=choice))
    return "\n".join(post.message.text for post in posted[before:])


def within(spent: Budget, budget: Budget, counting: Counting, what: str) -> None:
    assert spent.statements <= budget.statements and spent.hops <= budget.hops, (
        what, spent, budget, counting.statements)


@pytest.mark.sqlite_only  # counted by SQLite's trace callback
async def test_each_enrollment_step_keeps_to_its_budget(bot: TestBot,
                                                        counting: Counting) -> None:
    reply = ""
    for action, value, budget in ENROLLMENT:
        counting.restart()
        reply = await (event(bot, value) if action == "say"
                       else event(bot, choice=button(bot, value)))
        within(counting.spent(), budget, counting, value)
    assert "C'est fait" in reply
    counting.restart()
    assert "/aide" in await event(bot, "/aide")
    within(counting.spent(), COMMAND, counting, "/aide")


@pytest.mark.sqlite_only  # counted by SQLite's trace callback
async def test_a_receipt_keeps_to_its_budget(bot: TestBot, counting: Counting) -> None:
    await bot.enroll(WHO, "commercant", "Vesoul")
    await bot.say("telegram:100", "/alerte cambriolage Vesoul : Vitrine forcée")
    await bot.say("telegram:200", "/valider 1", chat=OFFICERS)
    await bot.drain()
    counting.restart()
    assert "notée" in await event(bot, choice="ack:1")
    within(counting.spent(), RECEIPT, counting, "Reçu")
    counting.restart()
    assert "déjà notée" in await event(bot, choice="ack:1")
    within(counting.spent(), RECEIPT, counting, "Reçu again")


# -- the mechanisms the budgets rest on --------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "db.sqlite3")
    await database.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    yield database
    await database.close()


async def values(db: Database) -> dict[str, int]:
    return {row[0]: row[1] for row in await db.fetchall("SELECT k, v FROM t ORDER BY k")}


async def test_each_statement_is_one_hop_and_a_transaction_adds_none(db: Database) -> None:
    before = db.hops
    assert await db.insert("INSERT INTO t VALUES ('a', 1)") == 1
    assert (await db.fetchone("SELECT v FROM t WHERE k = 'a'") or [None])[0] == 1
    assert await db.execute("UPDATE t SET v = 2") == 1
    assert db.hops - before == 3
    before = db.hops
    async with db.transaction():
        pass
    assert db.hops == before  # nothing ran: no BEGIN, no COMMIT
    async with db.transaction():
        await db.execute("UPDATE t SET v = 3")  # with BEGIN
    assert db.hops - before == 2  # + COMMIT
    rows = await db.fetch_together([("SELECT v FROM t", ()), ("SELECT k FROM t", ())])
    assert [[tuple(row) for row in found] for found in rows] == [[(3,)], [("a",)]]


async def test_queued_writes_go_with_the_next_hop_and_reads_see_them(db: Database) -> None:
    before = db.hops
    async with db.transaction():
        queued = await db.later(statement("INSERT INTO t VALUES ('a', 1)"))
        await db.later(insertion("INSERT INTO t VALUES ('b', 1)"), key="b")
        await db.later(insertion("INSERT INTO t VALUES ('b', 2)"), key="b")  # replaces it
        assert db.hops == before  # nothing ran yet
        assert await values(db) == {"a": 1, "b": 2}
        assert db.hops - before == 1  # BEGIN, the queue and the read together
        assert await queued.answer() == 1
        await db.later(statement("UPDATE t SET v = 5 WHERE k = 'a'"))
    assert db.hops - before == 2  # the last write went with COMMIT
    assert await values(db) == {"a": 5, "b": 2}


async def test_a_failing_transaction_drops_its_queue(db: Database) -> None:
    told: list[str] = []
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('a', 1)")
            await db.later(statement("INSERT INTO t VALUES ('b', 1)"))
            db.on_commit(lambda: told.append("committed"))
            raise RuntimeError("the handler failed")
    with pytest.raises(sqlite3.IntegrityError):  # surfaces with COMMIT, and fails it
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('c', 1)")
            await db.later(statement("INSERT INTO t VALUES ('c', 2)"))
            db.on_commit(lambda: told.append("committed"))
    assert await values(db) == {} and told == []
    async with db.transaction():
        await db.later(statement("INSERT INTO t VALUES ('d', 1)"))
        db.on_commit(lambda: told.append("committed"))
    assert await values(db) == {"d": 1} and told == ["committed"]


async def test_grouped_writes_share_one_transaction(db: Database) -> None:
    before = db.hops
    await asyncio.gather(*(db.grouped(statement("INSERT INTO t VALUES (?, 1)", (key,)))
                           for key in "abcde"))
    assert db.hops - before == 1
    assert await values(db) == dict.fromkeys("abcde", 1)
    before = db.hops
    async with db.transaction():  # inside a transaction: part of it
        await db.execute("DELETE FROM t")
        await db.grouped(statement("INSERT INTO t VALUES ('z', 1)"))
    assert db.hops - before == 2
    assert await values(db) == {"z": 1}
    before = db.hops
    waiting = asyncio.create_task(db.grouped(statement("INSERT INTO t VALUES ('x', 1)")))
    await asyncio.sleep(0)  # queued, its own transaction not begun
    async with db.transaction():  # the next transaction takes it
        await db.execute("INSERT INTO t VALUES ('w', 1)")
    await waiting
    assert db.hops - before == 2
    assert await values(db) == {"w": 1, "x": 1, "z": 1}
    await db.execute("DELETE FROM t WHERE k IN ('w', 'x')")
    outcome = await asyncio.gather(db.grouped(statement("INSERT INTO t VALUES ('z', 2)")),
                                   db.grouped(statement("INSERT INTO t VALUES ('y', 2)")),
                                   return_exceptions=True)
    assert all(isinstance(error, sqlite3.IntegrityError) for error in outcome)
    assert await values(db) == {"z": 1}  # all of the group, or none
    waiting = asyncio.create_task(db.grouped(statement("INSERT INTO t VALUES ('x', 1)")))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        async with db.transaction():  # took it, and failed: it is written on its own
            await db.execute("INSERT INTO t VALUES ('w', 1)")
            raise RuntimeError("the handler failed")
    await waiting
    assert await values(db) == {"x": 1, "z": 1}


async def test_a_rolled_back_reply_is_never_sent(bot: TestBot) -> None:
    """Reply rows reach the sender as their transaction commits, never before: a failed
    handler's replies are rolled back, and the apology that takes their ids is sent."""
    core = bot.core.core

    async def failing(ctx: Context) -> Effects:
        await core.runner.write(await core.router.route(ctx), ctx.incoming)
        await core.services.db.flush()  # the rows are written, then rolled back
        raise RuntimeError("the handler failed after writing its replies")

    core.pipeline = failing
    replies = await bot.say(WHO, "/aide")
    assert "/aide" not in replies and "erreur interne" in replies
    assert bot.inbox(WHO) == [replies]


async def test_the_next_transaction_starts_while_the_last_one_commits(db: Database) -> None:
    order: list[str] = []

    async def first() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('a', 1)")
        order.append("a committed")

    async def second() -> None:
        await asyncio.sleep(0)  # the first holds the lock
        async with db.transaction():
            order.append("b began")
            order.append(f"b sees {await values(db)}")

    await asyncio.gather(first(), second())
    assert order == ["b began", "a committed", "b sees {'a': 1}"]


async def test_a_failed_commit_is_rolled_back_and_the_next_transaction_goes_on(
        db: Database) -> None:
    await db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await db.execute("CREATE TABLE child (parent_id INTEGER"
                     " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    told: list[str] = []

    async def failing() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('a', 1)")
            await db.later(statement("INSERT INTO child VALUES (7)"))  # checked at COMMIT
            db.on_commit(lambda: told.append("committed"))

    async def next_one() -> None:
        await asyncio.sleep(0)
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('b', 1)")

    outcome = await asyncio.gather(failing(), next_one(), return_exceptions=True)
    assert isinstance(outcome[0], sqlite3.IntegrityError) and outcome[1] is None
    assert await values(db) == {"b": 1} and told == []
    assert await db.fetchval("SELECT count(*) FROM child") == 0


async def test_a_job_alone_waits_for_shared_work_and_holds_new_work_back() -> None:
    turns = Turns()
    order: list[str] = []
    inside = asyncio.Event()

    async def event(name: str, wait: bool = False) -> None:
        async with turns.shared():
            order.append(f"{name} in")
            inside.set()
            if wait:
                await asyncio.sleep(0.01)
            order.append(f"{name} out")

    async def job() -> None:
        await inside.wait()
        async with turns.alone():
            order.append("job")

    async def late() -> None:
        await inside.wait()
        await asyncio.sleep(0)  # the job is waiting by now
        await event("late")

    await asyncio.gather(event("early", wait=True), event("other", wait=True), job(), late())
    assert order[:2] == ["early in", "other in"]  # shared work overlaps
    assert order.index("job") > max(order.index("early out"), order.index("other out"))
    assert order.index("late in") > order.index("job")
    assert not turns.locked()
