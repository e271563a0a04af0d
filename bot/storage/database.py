"""One aiosqlite connection shared by the whole bot, with explicit transactions.

aiosqlite runs every statement of a connection on one thread, so two tasks that
interleave statements would silently share a transaction. A lock serialises
transactions; statements issued inside ``transaction()`` by the same task join it
(tracked with a context variable) instead of waiting for the lock they hold.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.resources import migrations_dir

MIGRATIONS_DIR = migrations_dir()
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Row = aiosqlite.Row
Params = Sequence[Any] | dict[str, Any]


class DatabaseError(Exception):
    """The database cannot be used as it is (newer than the code, broken migration)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class Database:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        # One flag per database. Tasks started inside a transaction inherit it and
        # would write into that transaction: start tasks outside transactions.
        self._in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"in_transaction_{id(self)}", default=False)
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._committed: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    async def open(cls, path: str | Path, migrations_dir: Path = MIGRATIONS_DIR) -> Database:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(str(path), isolation_level=None)
        connection.row_factory = aiosqlite.Row
        # secure_delete: a deleted row is overwritten with zeros, not left in a free page
        # where the file would still hold what an erasure removed (docs/data-register.md).
        for pragma in ("journal_mode = WAL", "foreign_keys = ON", "busy_timeout = 5000",
                       "synchronous = NORMAL", "secure_delete = ON"):
            await connection.execute(f"PRAGMA {pragma}")
        database = cls(connection)
        try:
            await database.migrate(load_migrations(migrations_dir))
        except BaseException:
            await connection.close()  # its worker thread would keep the process alive
            raise
        return database

    async def close(self) -> None:
        await self._connection.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_transaction.get():
            yield  # nested: the outer transaction commits
            return
        async with self._lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            token = self._in_transaction.set(True)
            try:
                yield
            except BaseException:
                self._after_commit.clear()
                await self._connection.execute("ROLLBACK")
                raise
            else:
                await self._connection.execute("COMMIT")
            finally:
                self._in_transaction.reset(token)
            self._committed.extend(self._after_commit)
            self._after_commit.clear()

    async def after_commit(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` once the current transaction committed and its owner is done with
        it (``run_committed``; the core: once the event's replies are sent), at once
        outside a transaction: for what cannot run inside one, such as a WAL checkpoint."""
        if self._in_transaction.get():
            self._after_commit.append(work)
        else:
            await work()

    async def run_committed(self) -> None:
        """The work ``after_commit`` kept for transactions that committed."""
        while self._committed:
            await self._committed.pop(0)()

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the affected row count."""
        async with self._statement():
            cursor = await self._connection.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT; returns the new row id."""
        async with self._statement():
            cursor = await self._connection.execute(sql, params)
            row_id = cursor.lastrowid
            await cursor.close()
            assert row_id is not None
            return row_id

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        async with self._statement():
            await self._connection.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._statement():
            cursor = await self._connection.execute(sql, params)
            row = await cursor.fetchone()
            await cursor.close()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._statement():
            cursor = await self._connection.execute(sql, params)
            rows = await cursor.fetchall()
            await cursor.close()
            return list(rows)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[None]:
        if self._in_transaction.get():
            yield
        else:
            async with self._lock:
                yield

    async def schema_version(self) -> int:
        await self.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        return int(await self.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    async def migrate(self, migrations: list[Migration]) -> None:
        current = await self.schema_version()
        latest = migrations[-1].version if migrations else 0
        if current > latest:
            raise DatabaseError(
                f"the database is at schema version {current} but this code knows only up to "
                f"{latest}: it was written by a newer version of the bot. Upgrade the bot, "
                "or restore a backup made by this version."
            )
        for migration in migrations:
            if migration.version > current:
                await self._apply(migration)

    async def _apply(self, migration: Migration) -> None:
        # executescript() would commit on its own; run statement by statement so the
        # whole migration and its version row share one transaction.
        try:
            async with self.transaction():
                for statement in split_sql(migration.sql):
                    await self.execute(statement)
                await self.execute(
                    "INSERT INTO schema_version (version, name, applied_at) "
                    "VALUES (?, ?, datetime('now'))",
                    (migration.version, migration.name),
                )
        except aiosqlite.Error as error:
            raise DatabaseError(f"migration {migration.name} failed: {error}") from error


def load_migrations(directory: Path) -> list[Migration]:
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise DatabaseError(f"{path}: migration files are named NNNN_description.sql")
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text("utf-8")))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise DatabaseError(f"{directory}: migrations must be numbered 0001, 0002, … without gaps")
    return migrations


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations keep ';' out of literals)."""
    without_comments = "\n".join(
        line for line in script.splitlines() if not line.lstrip().startswith("--")
    )
    return [part.strip() for part in without_comments.split(";") if part.strip()]
