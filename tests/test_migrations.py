"""The database layer (bot/storage/database.py): migrations, pragmas, transactions."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.storage.database import (
    MIGRATIONS_DIR,
    Database,
    DatabaseError,
    load_migrations,
    split_sql,
)

TABLES = {
    "subscribers", "subscriber_communes", "subscriber_communities", "chat_groups",
    "group_communes", "group_communities", "alerts", "alert_transitions", "alert_communes",
    "alert_communities", "approvals", "deliveries", "conversations", "posted_messages",
    "audit_events",
}
MIGRATION_FILES = sorted(MIGRATIONS_DIR.glob("*.sql"))
SUBSCRIBER = ("INSERT INTO subscribers (platform, platform_user_id, chat_id, consent_at,"
              " consent_version, created_at, updated_at) VALUES (?, ?, ?, 't', 'v', 't', 't')")


@pytest.fixture
async def connections(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    """Every aiosqlite connection opened during the test, closed afterwards.

    ``Database.open`` does not close its connection when a migration is refused (see
    test_refused_open_closes_its_connection); aiosqlite's worker thread is not a daemon, so
    a leaked connection could keep the test process alive.
    """
    opened: list[Any] = []
    real_connect = aiosqlite.connect

    def recording_connect(*args: Any, **kwargs: Any) -> Any:
        connection = real_connect(*args, **kwargs)
        opened.append(connection)
        return connection

    monkeypatch.setattr(aiosqlite, "connect", recording_connect)
    yield opened
    for connection in opened:
        await connection.close()


@pytest.fixture
async def db(tmp_path: Path, connections: list[Any]) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "bot.sqlite3")
    yield database
    await database.close()


def sync_query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read with plain sqlite3, independently of the code under test."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def tables(path: Path) -> set[str]:
    return {name for (name,) in sync_query(path, "SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table'")}


def migration_dir(tmp_path: Path, files: dict[str, str], with_initial: bool = True) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    if with_initial:
        shutil.copy(MIGRATIONS_DIR / "0001_initial.sql", folder / "0001_initial.sql")
    for name, sql in files.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder


@pytest.fixture
def newer_database(tmp_path: Path) -> Iterator[Path]:
    """A database stamped by a future version of the bot."""
    path = tmp_path / "future.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                       "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    connection.execute("INSERT INTO schema_version VALUES (1, '0001_initial.sql', 'x')")
    connection.execute("INSERT INTO schema_version VALUES (99, '0099_future.sql', 'x')")
    connection.commit()
    connection.close()
    yield path


# --- fresh database -------------------------------------------------------------------


def test_shipped_migrations_are_well_formed() -> None:
    migrations = load_migrations(MIGRATIONS_DIR)
    assert len(migrations) == len(MIGRATION_FILES) >= 1
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "0001_initial.sql"


async def test_fresh_database_has_every_table(tmp_path: Path, db: Database) -> None:
    assert await db.schema_version() == len(MIGRATION_FILES)
    path = tmp_path / "bot.sqlite3"
    assert TABLES | {"schema_version"} <= tables(path)
    rows = sync_query(path, "SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(i + 1, f.name) for i, f in enumerate(MIGRATION_FILES)]


async def test_wal_and_foreign_keys(tmp_path: Path, db: Database) -> None:
    assert await db.fetchval("PRAGMA journal_mode") == "wal"
    assert await db.fetchval("PRAGMA foreign_keys") == 1
    assert sync_query(tmp_path / "bot.sqlite3", "PRAGMA journal_mode") == [("wal",)]
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.execute("INSERT INTO subscriber_communes (subscriber_id, insee) "
                         "VALUES (999, '70550')")
    subscriber = await db.insert(SUBSCRIBER, ("telegram", "1", "1"))
    await db.execute("INSERT INTO subscriber_communes VALUES (?, '70550')", (subscriber,))
    await db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber,))
    assert await db.fetchval("SELECT count(*) FROM subscriber_communes") == 0  # cascade


async def test_parent_folder_is_created(tmp_path: Path, connections: list[Any]) -> None:
    database = await Database.open(tmp_path / "var" / "deep" / "bot.sqlite3")
    await database.close()
    assert (tmp_path / "var" / "deep" / "bot.sqlite3").is_file()


async def test_memory_database(connections: list[Any]) -> None:
    database = await Database.open(":memory:")
    try:
        assert await database.schema_version() == len(MIGRATION_FILES)
        assert await database.fetchval("PRAGMA foreign_keys") == 1
    finally:
        await database.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path, connections: list[Any]) -> None:
    path = tmp_path / "bot.sqlite3"
    first = await Database.open(path)
    await first.insert(SUBSCRIBER, ("telegram", "1", "1"))
    await first.close()
    before = sync_query(path, "SELECT version, name, applied_at FROM schema_version")
    for _ in range(2):
        again = await Database.open(path)
        assert await again.fetchval("SELECT count(*) FROM subscribers") == 1
        await again.close()
    assert sync_query(path, "SELECT version, name, applied_at FROM schema_version") == before


# --- refusals -------------------------------------------------------------------------


async def test_newer_database_is_refused(newer_database: Path, connections: list[Any]) -> None:
    with pytest.raises(DatabaseError) as caught:
        await Database.open(newer_database)
    message = str(caught.value)
    assert "99" in message
    assert f"only up to {len(MIGRATION_FILES)}" in message
    # nothing was changed in the newer database
    assert sync_query(newer_database, "SELECT max(version) FROM schema_version") == [(99,)]
    assert "subscribers" not in tables(newer_database)


async def test_refused_open_closes_its_connection(newer_database: Path,
                                                  connections: list[Any]) -> None:
    with pytest.raises(DatabaseError):
        await Database.open(newer_database)
    assert len(connections) == 1
    with pytest.raises(ValueError, match=r"closed|no active connection"):
        await connections[0].execute("SELECT 1")


async def test_broken_second_migration_leaves_version_1(tmp_path: Path,
                                                        connections: list[Any]) -> None:
    folder = migration_dir(tmp_path, {"0002_broken.sql": (
        "-- creates a table, then fails\n"
        "CREATE TABLE partial_one (id INTEGER PRIMARY KEY);\n"
        "ALTER TABLE subscribers ADD COLUMN nickname TEXT;\n"
        "INSERT INTO no_such_table VALUES (1);\n"
        "CREATE TABLE partial_two (id INTEGER PRIMARY KEY);\n")})
    path = tmp_path / "bot.sqlite3"
    with pytest.raises(DatabaseError) as caught:
        await Database.open(path, folder)
    assert "0002_broken.sql" in str(caught.value)
    assert "no_such_table" in str(caught.value)
    assert sync_query(path, "SELECT version FROM schema_version") == [(1,)]
    found = tables(path)
    assert found >= TABLES  # migration 1 committed
    assert "partial_one" not in found and "partial_two" not in found
    columns = {row[1] for row in sync_query(path, "PRAGMA table_info(subscribers)")}
    assert "nickname" not in columns


async def test_old_database_gets_new_migration_and_keeps_data(
        tmp_path: Path, connections: list[Any]) -> None:
    folder = migration_dir(tmp_path, {})
    path = tmp_path / "bot.sqlite3"
    old = await Database.open(path, folder)
    assert await old.schema_version() == 1
    subscriber = await old.insert(SUBSCRIBER, ("telegram", "42", "42"))
    await old.execute("INSERT INTO subscriber_communes VALUES (?, '70550')", (subscriber,))
    await old.close()

    migration_dir(tmp_path, {"0002_add_note.sql": (
        "ALTER TABLE subscribers ADD COLUMN note TEXT NOT NULL DEFAULT '';\n"
        "CREATE TABLE notes (id INTEGER PRIMARY KEY,\n"
        "    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id));\n"
        "INSERT INTO notes (subscriber_id) SELECT id FROM subscribers;\n")},
        with_initial=False)
    new = await Database.open(path, folder)
    try:
        assert await new.schema_version() == 2
        row = await new.fetchone("SELECT platform_user_id, note FROM subscribers")
        assert row is not None and tuple(row) == ("42", "")
        assert await new.fetchval("SELECT subscriber_id FROM notes") == subscriber
        assert await new.fetchval("SELECT insee FROM subscriber_communes") == "70550"
    finally:
        await new.close()
    assert sync_query(path, "SELECT version, name FROM schema_version ORDER BY version") == [
        (1, "0001_initial.sql"), (2, "0002_add_note.sql")]


@pytest.mark.parametrize("names", [
    ["0001_a.sql", "0003_c.sql"],
    ["0002_b.sql"],
    ["0001_a.sql", "0001_b.sql"],
])
def test_gaps_in_numbering_are_refused(tmp_path: Path, names: list[str]) -> None:
    folder = migration_dir(tmp_path, dict.fromkeys(names, "SELECT 1;"), with_initial=False)
    with pytest.raises(DatabaseError, match="without gaps"):
        load_migrations(folder)


@pytest.mark.parametrize("bad", ["1_short.sql", "0002-dash.sql", "0002_Upper.sql",
                                 "0002.sql", "00002_five.sql", "0002_spa ce.sql"])
def test_badly_named_files_are_refused(tmp_path: Path, bad: str) -> None:
    folder = migration_dir(tmp_path, {bad: "SELECT 1;"})
    with pytest.raises(DatabaseError, match=r"NNNN_description\.sql") as caught:
        load_migrations(folder)
    assert bad in str(caught.value)


def test_other_files_are_ignored(tmp_path: Path) -> None:
    folder = migration_dir(tmp_path, {"README.md": "notes", "0002_next.sql.bak": "x"})
    assert [m.name for m in load_migrations(folder)] == ["0001_initial.sql"]


async def test_open_refuses_a_gap(tmp_path: Path, connections: list[Any]) -> None:
    folder = migration_dir(tmp_path, {"0003_skip.sql": "SELECT 1;"})
    with pytest.raises(DatabaseError, match="without gaps"):
        await Database.open(tmp_path / "bot.sqlite3", folder)


def test_split_sql() -> None:
    script = ("-- header; with a semicolon\nCREATE TABLE a (x INTEGER);\n\n"
              "  -- indented comment;\nCREATE INDEX a_x ON a (x);\n;\n")
    assert split_sql(script) == ["CREATE TABLE a (x INTEGER)", "CREATE INDEX a_x ON a (x)"]


# --- transactions ---------------------------------------------------------------------


async def make_table(db: Database) -> None:
    await db.execute("CREATE TABLE t (task TEXT NOT NULL, step INTEGER NOT NULL)")


async def test_transaction_commits(db: Database) -> None:
    await make_table(db)
    async with db.transaction():
        await db.execute("INSERT INTO t VALUES ('a', 1)")
        await db.execute("INSERT INTO t VALUES ('a', 2)")
    assert await db.fetchval("SELECT count(*) FROM t") == 2


async def test_transaction_rolls_back_on_exception(db: Database) -> None:
    await make_table(db)
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('a', 1)")
            assert await db.fetchval("SELECT count(*) FROM t") == 1
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT count(*) FROM t") == 0
    # the lock was released and the connection is out of the transaction
    async with db.transaction():
        await db.execute("INSERT INTO t VALUES ('b', 1)")
    assert await db.fetchval("SELECT count(*) FROM t") == 1


async def test_failed_statement_rolls_back_the_whole_transaction(db: Database) -> None:
    await make_table(db)
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('a', 1)")
            await db.execute("INSERT INTO t VALUES (NULL, 2)")
    assert await db.fetchval("SELECT count(*) FROM t") == 0


async def test_nested_transaction_joins_the_outer_one(db: Database) -> None:
    await make_table(db)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            async with db.transaction():
                await db.execute("INSERT INTO t VALUES ('inner', 1)")
            raise RuntimeError
    assert await db.fetchval("SELECT count(*) FROM t") == 0


async def test_cancelled_transaction_rolls_back_and_releases_the_lock(db: Database) -> None:
    await make_table(db)
    inside = asyncio.Event()

    async def slow() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('slow', 1)")
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(slow())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):
        assert await db.fetchval("SELECT count(*) FROM t") == 0


async def test_concurrent_transactions_do_not_interleave(db: Database) -> None:
    await make_table(db)
    events: list[tuple[str, str]] = []

    async def worker(name: str) -> None:
        for _ in range(3):
            async with db.transaction():
                events.append((name, "begin"))
                before = await db.fetchval("SELECT count(*) FROM t")
                for step in range(4):
                    await db.execute("INSERT INTO t VALUES (?, ?)", (name, step))
                    await asyncio.sleep(0)
                # only this task's rows appeared during its transaction
                assert await db.fetchval("SELECT count(*) FROM t") == before + 4
                assert await db.fetchval(
                    "SELECT count(*) FROM t WHERE rowid > (SELECT max(rowid) - 4 FROM t) "
                    "AND task != ?", (name,)) == 0
                events.append((name, "end"))

    await asyncio.gather(*(worker(name) for name in ("a", "b", "c")))
    assert await db.fetchval("SELECT count(*) FROM t") == 3 * 3 * 4
    # each begin is immediately followed by the end of the same task
    assert len(events) == 18
    for begin, end in zip(events[::2], events[1::2], strict=True):
        assert begin[1] == "begin" and end == (begin[0], "end")
    assert len({name for name, _ in events[:6]}) > 1  # the tasks really ran concurrently


async def test_statement_outside_waits_for_a_transaction(db: Database) -> None:
    """A plain statement from another task must not slip into (and roll back with) an
    open transaction on the shared connection."""
    await make_table(db)
    inside = asyncio.Event()

    async def failing() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t VALUES ('tx', 1)")
            inside.set()
            for _ in range(5):
                await asyncio.sleep(0)
            raise RuntimeError("abandoned")

    async def bystander() -> None:
        await inside.wait()
        await db.execute("INSERT INTO t VALUES ('bystander', 1)")

    results = await asyncio.gather(failing(), bystander(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] is None
    rows = await db.fetchall("SELECT task FROM t")
    assert [row["task"] for row in rows] == ["bystander"]


async def test_failed_begin_does_not_poison_the_task(tmp_path: Path, db: Database,
                                                     connections: list[Any]) -> None:
    await make_table(db)
    other = await Database.open(tmp_path / "bot.sqlite3")  # e.g. a backup script
    try:
        await db.execute("PRAGMA busy_timeout = 0")
        await other.execute("BEGIN IMMEDIATE")

        async def task() -> int:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                async with db.transaction():  # BEGIN goes with the first statement
                    await db.execute("INSERT INTO t VALUES ('never', 1)")
            await other.execute("ROLLBACK")
            with pytest.raises(RuntimeError):
                async with db.transaction():
                    await db.execute("INSERT INTO t VALUES ('a', 1)")
                    raise RuntimeError
            return int(await db.fetchval("SELECT count(*) FROM t"))

        # a child task, so the leaked context variable dies with it
        assert await asyncio.create_task(task()) == 0
    finally:
        await other.close()


async def test_transactions_of_two_databases_are_independent(
        tmp_path: Path, db: Database, connections: list[Any]) -> None:
    other = await Database.open(tmp_path / "other.sqlite3")
    try:
        await make_table(other)

        async def task() -> None:
            with pytest.raises(RuntimeError):
                async with db.transaction(), other.transaction():
                    await other.execute("INSERT INTO t VALUES ('a', 1)")
                    raise RuntimeError

        await asyncio.create_task(task())
        assert await other.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await other.close()


async def test_outbox_rekeyed_by_recipient_keeps_every_row(tmp_path: Path) -> None:
    """0007 rebuilds the outbox: rows kept as they were, erased subscribers' rows (all
    recipient 0 before) each get their own negative id, the dropped indexes are gone."""
    folder = tmp_path / "upto-0006"
    folder.mkdir()
    for file in MIGRATION_FILES[:6]:
        shutil.copy(file, folder / file.name)
    path = tmp_path / "bot.sqlite3"
    old = await Database.open(path, folder)
    await old.execute("INSERT INTO alerts (id, category, perimeter, perimeter_json,"
                      " all_communities, body, facts_at, requested_by, request_platform,"
                      " request_chat_id, status, required_approvals, created_at, expires_at)"
                      " VALUES (1, 'vol', 'Vesoul', '{}', 0, 'x', 't', 'op', 'telegram', '1',"
                      " 'done', 1, 't', 't')")
    rows = [(11, 5, "telegram", "5", "sent"), (12, 0, "telegram", "erased:12", "sent"),
            (13, 0, "matrix", "erased:13", "blocked")]
    for row_id, recipient, platform, chat, status in rows:
        await old.execute(
            "INSERT INTO deliveries (id, alert_id, recipient_kind, recipient_id, platform,"
            " chat_id, status, next_try_at, acknowledged_at) VALUES"
            " (?, 1, 'subscriber', ?, ?, ?, ?, 't', 'ack')",
            (row_id, recipient, platform, chat, status))
    await old.close()

    new = await Database.open(path)
    try:
        kept = await new.fetchall("SELECT id, recipient_id, chat_id, status, acknowledged_at"
                                  " FROM deliveries ORDER BY id")
        assert [tuple(row) for row in kept] == [
            (11, 5, "5", "sent", "ack"), (12, -12, "erased:12", "sent", "ack"),
            (13, -13, "erased:13", "blocked", "ack")]
        indexes = {row[0] for row in await new.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'"
            " AND sql IS NOT NULL")}
        assert indexes == {"deliveries_alert", "deliveries_recipient", "deliveries_claim"}
    finally:
        await new.close()
