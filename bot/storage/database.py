"""One aiosqlite connection shared by the whole bot, with explicit transactions.

aiosqlite runs every statement of a connection on one thread, so two tasks that
interleave statements would silently share a transaction. A lock serialises
transactions; statements issued inside ``transaction()`` by the same task join it
(tracked with a context variable) instead of waiting for the lock they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.resources import migrations_dir

MIGRATIONS_DIR = migrations_dir()
MEMORY = ":memory:"
BUSY_SECONDS = 5.0  # how long a statement waits for another connection's lock
PROBE_SECONDS = 2.0  # the same wait for check_writable, for health probes
# One row rewritten as it is; the probe rolls it back.
WRITE_PROBE = ("UPDATE schema_version SET name = name"
               " WHERE version = (SELECT max(version) FROM schema_version)")
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Migration 0008 asks for one rewrite of the file at the next start (VACUUM, bot/privacy.py)
# to scrub rows deleted before secure_delete was on. A database created by this code had it
# on from its first row: there is nothing to scrub, and rewriting a large new file (an
# import, the benchmarks' 100,000 seeded subscribers) cost start-up time and 4 MB of memory.
SCRUB_REQUESTED_BY = 8

Row = aiosqlite.Row
Params = Sequence[Any] | dict[str, Any]


class DatabaseError(Exception):
    """The database cannot be used as it is (newer than the code, broken migration,
    read-only, locked, not a database); the message is one line for the operator."""


READ_ONLY_FOLDER = ("its folder is read-only, and SQLite must create the -wal and -shm files"
                    " beside the database (check the folder's owner and permissions, and that"
                    " its disk is mounted read-write)")
# What SQLite's error codes mean for the operator (extended codes fall back to their
# primary code: SQLITE_IOERR_WRITE → SQLITE_IOERR).
CAUSES = {
    "SQLITE_READONLY_DIRECTORY": READ_ONLY_FOLDER,
    "SQLITE_READONLY": "the database is read-only (check the owner and permissions of the file"
                       " and of its -wal and -shm files)",
    "SQLITE_NOTADB": "not an SQLite database (a wrong path, or a damaged file: restore a backup)",
    "SQLITE_CORRUPT": "the database file is damaged (restore a backup)",
    "SQLITE_CANTOPEN": "cannot open the database file (check the path, and the owner and"
                       " permissions of the file and its folder)",
    "SQLITE_BUSY": "the database is locked by another process (is another bot using it?)",
    "SQLITE_LOCKED": "the database is locked by another process (is another bot using it?)",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR": "input/output error (check the disk)",
    "SQLITE_PERM": "access denied (check the file's owner and permissions)",
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class Database:
    def __init__(self, connection: aiosqlite.Connection, path: str = MEMORY) -> None:
        self._connection = connection
        self.path = path
        self._lock = asyncio.Lock()
        # One flag per database. Tasks started inside a transaction inherit it and
        # would write into that transaction: start tasks outside transactions.
        self._in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"in_transaction_{id(self)}", default=False)
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._committed: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    async def open(cls, path: str | Path, migrations_dir: Path = MIGRATIONS_DIR, *,
                   writable: bool = True) -> Database:
        """Connect, migrate and (``writable``) prove that a write goes through. Any failure
        closes the connection and raises DatabaseError: one line naming the file and why."""
        migrations = load_migrations(migrations_dir)  # first: a broken one needs no cleanup
        name = str(path)
        try:
            if name != MEMORY:
                _make_folder(Path(name))
                await asyncio.to_thread(_preflight, name)
            connection = await aiosqlite.connect(name, isolation_level=None)
        except sqlite3.Error as error:
            raise DatabaseError(explain(name, error)) from None
        connection.row_factory = aiosqlite.Row
        database = cls(connection, name)
        try:
            await database._prepare(migrations, writable)
        except BaseException as error:
            # The connection's worker thread is not a daemon: left open, it would keep the
            # process alive after the error, looking like a bot that started.
            with contextlib.suppress(Exception):
                await connection.close()
            if isinstance(error, sqlite3.Error):
                raise DatabaseError(explain(name, error)) from None
            raise
        return database

    async def _prepare(self, migrations: list[Migration], writable: bool) -> None:
        # secure_delete: a deleted row is overwritten with zeros, not left in a free page
        # where the file would still hold what an erasure removed (docs/data-register.md).
        for pragma in ("journal_mode = WAL", "foreign_keys = ON",
                       f"busy_timeout = {BUSY_SECONDS * 1000:.0f}", "synchronous = NORMAL",
                       "secure_delete = ON"):
            await self._connection.execute(f"PRAGMA {pragma}")
        try:
            await self.migrate(migrations)
        except DatabaseError as error:
            raise DatabaseError(f"{self.path}: {error}") from None
        if writable:  # a migrated database on a read-only file gets this far
            await self.check_writable(BUSY_SECONDS)

    async def close(self) -> None:
        await self._connection.close()

    async def reader(self) -> Database:
        """A read-only connection of its own to the same file, for monitoring: WAL lets it
        read beside the bot's writes, so neither waits for the other. An in-memory database
        has no file to share: it reads on this connection."""
        if self.path == MEMORY:
            return self
        uri = Path(self.path).absolute().as_uri() + "?mode=ro"
        try:
            connection = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise DatabaseError(explain(self.path, error)) from None
        connection.row_factory = aiosqlite.Row
        reader = Database(connection, self.path)
        try:
            await reader.fetchval("PRAGMA schema_version")  # opens the file now, not later
        except BaseException as error:
            await connection.close()
            if isinstance(error, sqlite3.Error):
                raise DatabaseError(explain(self.path, error)) from None
            raise
        return reader

    async def check_writable(self, timeout: float = PROBE_SECONDS) -> None:
        """Raise DatabaseError unless a write would go through now.

        On a connection of its own (so it neither waits for nor holds up the bot's
        transactions), a transaction rewrites one row and rolls back: BEGIN IMMEDIATE alone
        succeeds on a read-only file in WAL mode. Waits at most ``timeout`` seconds for
        another process's lock; a disk that does not answer fails a second later.
        """
        if self.path == MEMORY:
            return  # nothing outside this process can lock it or take it away
        uri = Path(self.path).absolute().as_uri() + "?mode=rw"  # never creates a file
        try:
            await asyncio.wait_for(asyncio.to_thread(_probe_write, uri, timeout), timeout + 1)
        except TimeoutError:
            raise DatabaseError(f"{self.path}: no answer within {timeout + 1:g} s") from None
        except sqlite3.Error as error:
            raise DatabaseError(explain(self.path, error)) from None

    @property
    def in_transaction(self) -> bool:
        """Whether the caller runs inside a transaction of this database (its context)."""
        return self._in_transaction.get()

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
        it (``run_committed``; the core: once the event's replies that are ready are sent,
        a file still being built being left to the reply sender), at once outside a
        transaction: for what cannot run inside one, such as a WAL checkpoint."""
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
        if current == 0 and latest >= SCRUB_REQUESTED_BY:
            await self.execute("DELETE FROM meta WHERE key = 'vacuum_pending'")

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
            if _cause(error) is not None:  # the file's fault, not the migration's
                raise
            raise DatabaseError(f"migration {migration.name} failed: {error}") from error


def explain(path: str, error: sqlite3.Error) -> str:
    """``path: cause`` in the operator's words, or SQLite's own when it is unexpected."""
    cause = _cause(error) or str(error)
    if (error.sqlite_errorname or "").startswith("SQLITE_CANTOPEN"):
        cause = _cannot_open(Path(path)) or cause
    return f"{path}: {cause}"


def _cannot_open(path: Path) -> str | None:
    """SQLite says only "unable to open": the file system can say why."""
    if path.is_dir():
        return "a folder, not a database file"
    if not os.access(path.parent, os.W_OK):  # also False on a read-only file system
        return READ_ONLY_FOLDER
    return None


def _cause(error: sqlite3.Error) -> str | None:
    name = error.sqlite_errorname or ""
    return CAUSES.get(name) or CAUSES.get("_".join(name.split("_")[:2]))


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(f"{path}: cannot create its folder ({error.strerror})") from None


def _preflight(path: str) -> None:
    """Open the file and switch it to WAL with plain sqlite3 first. When aiosqlite cannot
    connect, it stops its worker thread without waiting for it, and the thread prints a
    traceback if the event loop has closed by then; failing here leaves no thread."""
    connection = sqlite3.connect(path, timeout=BUSY_SECONDS)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def _probe_write(uri: str, timeout: float) -> None:
    """check_writable's work, on a worker thread."""
    connection = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(WRITE_PROBE)
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
    finally:
        connection.close()


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
