"""One aiosqlite connection shared by the whole bot, with explicit transactions.

aiosqlite runs every statement of a connection on one thread, so two tasks that
interleave statements would silently share a transaction. A lock serialises
transactions; statements issued inside ``transaction()`` by the same task join it
(tracked with a context variable) instead of waiting for the lock they hold.

Each trip to that thread (a *hop*) costs far more than the statement it carries: the event
loop hands the work over, the thread waits for the interpreter's lock, the answer comes
back through the loop. Under load the thread, not SQLite, is what limits the bot. So:

* every statement is one hop (statement, rows and cursor together);
* a transaction's ``BEGIN IMMEDIATE`` goes with its first statement, and ``COMMIT`` with
  the writes still queued;
* writes whose answer nobody needs at once are queued (``later``) and go with the next
  hop of the transaction, before its statement, so every read still sees them;
* several reads can share a hop (``fetch_together``);
* writes that need a transaction but no company (the reply sender's marks) are committed
  with the next transaction to start, or together in one of their own (``grouped``).

``hops`` counts the trips (tests hold the incoming path to a budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import aiosqlite
import psycopg

from bot.resources import migrations_dir
from bot.storage.dialect import Dialect

if TYPE_CHECKING:
    import psycopg

    PgConnection = psycopg.AsyncConnection[Any]
else:
    PgConnection = Any

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

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


class Row(Protocol):
    """A row of either backend (sqlite3.Row, or bot/storage/postgresql.py's): by position
    or by column name."""

    def __getitem__(self, key: Any, /) -> Any: ...
    def keys(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...


def is_postgresql(database: str | Path) -> bool:
    """``database: postgresql://…`` in the configuration; anything else is SQLite's path."""
    return str(database).startswith(POSTGRESQL_SCHEMES)


# What a statement may raise, on either backend.
ENGINE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)


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
    # migrations/postgresql/<name>: that dialect's own text, only where translating the
    # portable one cannot work (bot/storage/dialect.py translates the rest).
    postgresql: str | None = None


# -- work for one hop: one statement each, its cursor closed where it ran ----------------------


class Work(Generic[T]):
    """What one hop runs: on SQLite, on the connection's thread (``on_sqlite``); on
    PostgreSQL, awaited on the connection, in the order hops were submitted (``on_postgresql``)."""

    def on_sqlite(self, connection: sqlite3.Connection) -> T:
        raise NotImplementedError

    async def on_postgresql(self, connection: PgConnection) -> T:
        raise NotImplementedError


class Kind(Enum):
    COUNT = "count"  # the affected row count
    INSERT = "insert"  # the new row's id
    MANY = "many"  # one statement for each of several rows; no answer
    ROWS = "rows"  # every row


@dataclass(frozen=True, eq=False)
class Statement(Work[T]):
    """One statement, described: each backend runs it its own way. ``postgresql``: that
    dialect's own SQL, only where bot/storage/dialect.py cannot rewrite SQLite's."""

    kind: Kind
    sql: str
    params: Any = ()
    postgresql: str | None = None

    def on_sqlite(self, connection: sqlite3.Connection) -> T:
        if self.kind is Kind.MANY:
            connection.executemany(self.sql, self.params).close()
            return cast(T, None)
        cursor = connection.execute(self.sql, self.params)
        try:
            if self.kind is Kind.COUNT:
                return cast(T, cursor.rowcount)
            if self.kind is Kind.INSERT:
                assert cursor.lastrowid is not None
                return cast(T, cursor.lastrowid)
            return cast(T, cursor.fetchall())
        finally:
            cursor.close()

    async def on_postgresql(self, connection: PgConnection) -> T:
        from bot.storage.postgresql import run_statement  # psycopg only where it is used
        return cast(T, await run_statement(connection, self))


def statement(sql: str, params: Params = (), *, postgresql: str | None = None) -> Work[int]:
    """One statement; its answer is the affected row count."""
    return Statement[int](Kind.COUNT, sql, params, postgresql)


def insertion(sql: str, params: Params = (), *, postgresql: str | None = None) -> Work[int]:
    """One INSERT; its answer is the new row's id (its ``id`` column)."""
    return Statement[int](Kind.INSERT, sql, params, postgresql)


def statements(sql: str, rows: Iterable[Params], *,
               postgresql: str | None = None) -> Work[None]:
    """One statement for each of ``rows`` (read now, not where it runs)."""
    return Statement[None](Kind.MANY, sql, list(rows), postgresql)


def query(sql: str, params: Params = (), *, postgresql: str | None = None) -> Work[list[Row]]:
    """One SELECT (or a statement with RETURNING); its answer is every row."""
    return Statement[list[Row]](Kind.ROWS, sql, params, postgresql)


@dataclass(frozen=True, eq=False)
class Together(Work[list[T]]):
    """Several works in one hop, in order; the answer of each."""

    works: Sequence[Work[T]]

    def on_sqlite(self, connection: sqlite3.Connection) -> list[T]:
        return [work.on_sqlite(connection) for work in self.works]

    async def on_postgresql(self, connection: PgConnection) -> list[T]:
        return [await work.on_postgresql(connection) for work in self.works]


@dataclass(frozen=True, eq=False)
class Trip(Work[tuple[list[Any], Any]]):
    """A hop of a transaction: BEGIN if it has not begun, the queued writes, a statement,
    COMMIT if it ends there (then a failure rolls it back there too)."""

    begin: bool
    queued: Sequence[Work[Any]]
    final: Work[Any] | None = None
    commit: bool = False

    def on_sqlite(self, connection: sqlite3.Connection) -> tuple[list[Any], Any]:
        if self.begin:
            connection.execute("BEGIN IMMEDIATE")
        try:
            answers = [work.on_sqlite(connection) for work in self.queued]
            result = None if self.final is None else self.final.on_sqlite(connection)
            if self.commit:
                connection.execute("COMMIT")
        except BaseException:
            if self.commit:
                _rollback(connection)
            raise
        return answers, result

    async def on_postgresql(self, connection: PgConnection) -> tuple[list[Any], Any]:
        if self.begin:
            await connection.execute("BEGIN")
        try:
            answers = [await work.on_postgresql(connection) for work in self.queued]
            result = None if self.final is None else await self.final.on_postgresql(connection)
            if self.commit:
                await connection.execute("COMMIT")
        except BaseException:
            if self.commit:
                await Rollback().on_postgresql(connection)
            raise
        return answers, result


class Rollback(Work[None]):
    """ROLLBACK, if a transaction is open (a failed BEGIN, or a COMMIT that went through,
    leave none)."""

    def on_sqlite(self, connection: sqlite3.Connection) -> None:
        _rollback(connection)

    async def on_postgresql(self, connection: PgConnection) -> None:
        from psycopg.pq import TransactionStatus
        if connection.info.transaction_status is not TransactionStatus.IDLE:
            await connection.execute("ROLLBACK")


class Nothing(Work[None]):
    def on_sqlite(self, connection: sqlite3.Connection) -> None:
        return None

    async def on_postgresql(self, connection: PgConnection) -> None:
        return None


@dataclass(eq=False)
class Queued(Generic[T]):
    """A write queued with ``Database.later``: its answer once it ran."""

    db: Database
    work: Work[T]
    key: Hashable | None = None
    then: Callable[[T], None] | None = None
    _done: bool = field(default=False, init=False)
    _answer: T | None = field(default=None, init=False)

    def settle(self, answer: T) -> None:
        self._done, self._answer = True, answer
        if self.then is not None:
            self.then(answer)

    async def answer(self) -> T:
        """Its answer, running the queue now if it has not run yet."""
        if not self._done:
            await self.db.flush()
        assert self._done, "a queued write is answered once its transaction ran it"
        return cast(T, self._answer)


class Database:
    """The SQLite backend, and what both backends share: the transaction lock, the queued
    writes (``later``), the grouped writes, hops. bot/storage/postgresql.py's subclass
    changes only where a hop goes and how the database is opened, migrated and probed."""

    dialect = Dialect.SQLITE

    def __init__(self, connection: aiosqlite.Connection | None, path: str = MEMORY) -> None:
        self._connection = connection
        self.path = path
        self._lock = asyncio.Lock()
        # One flag per database. Tasks started inside a transaction inherit it and
        # would write into that transaction: start tasks outside transactions.
        self._in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"in_transaction_{id(self)}", default=False)
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._committed: list[Callable[[], Awaitable[None]]] = []
        # The transaction in progress (the lock allows one): BEGIN sent yet, the writes
        # queued for its next hop, and what to tell once it committed.
        self._begun = False
        self._queued: list[Queued[Any]] = []
        self._on_commit: list[Callable[[], None]] = []
        # Grouped writes waiting for their transaction, and the task writing them.
        self._group: list[tuple[Work[Any], asyncio.Future[None]]] = []
        self._grouper: asyncio.Task[None] | None = None
        self.hops = 0  # trips to the connection's thread, since it opened

    @classmethod
    async def open(cls, path: str | Path, migrations_dir: Path = MIGRATIONS_DIR, *,
                   writable: bool = True) -> Database:
        """Connect, migrate and (``writable``) prove that a write goes through. Any failure
        closes the connection and raises DatabaseError: one line naming the file and why.
        A ``postgresql://`` URL opens bot/storage/postgresql.py's backend instead."""
        if is_postgresql(path):
            from bot.storage.postgresql import PostgresDatabase
            return await PostgresDatabase.connect(str(path), migrations_dir, writable=writable)
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
            await self.execute(f"PRAGMA {pragma}")
        try:
            await self.migrate(migrations)
        except DatabaseError as error:
            raise DatabaseError(f"{self.path}: {error}") from None
        if writable:  # a migrated database on a read-only file gets this far
            await self.check_writable(BUSY_SECONDS)

    async def close(self) -> None:
        if self._grouper is not None:  # the last marks first: they were promised
            with contextlib.suppress(Exception):
                await self._grouper
        assert self._connection is not None
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
        """All the statements of the block, or none. BEGIN IMMEDIATE goes with the first
        statement, COMMIT with the writes still queued: a transaction costs no hop of its
        own, and one that ran nothing costs none at all.

        The block ends once its transaction committed, but the lock is handed on as soon as
        COMMIT is on the thread's queue: the next transaction's statements queue behind it
        (they see what it wrote, or nothing of it if it failed) instead of waiting for its
        answer to come back through the event loop."""
        if self._in_transaction.get():
            yield  # nested: the outer transaction commits
            return
        await self._lock.acquire()
        token = self._in_transaction.set(True)
        self._begun = False
        # Grouped writes waiting for their own transaction go with this one instead.
        adopted, self._group = self._group, []
        self._queued = [Queued(self, work) for work, _ in adopted]
        try:
            try:
                yield
            except BaseException:
                await self._abandon()
                self._regroup(adopted)
                raise
            committing = self._submit_commit() if self._begun or self._queued else None
            told, self._on_commit = self._on_commit, []
            after, self._after_commit = self._after_commit, []
        finally:
            self._in_transaction.reset(token)
            self._lock.release()
        if committing is not None:
            try:
                await committing
            except BaseException:
                self._regroup(adopted)  # rolled back on the thread
                raise
        for _, future in adopted:
            if not future.done():
                future.set_result(None)
        for tell in told:
            tell()
        self._committed.extend(after)

    def _submit_commit(self) -> Awaitable[None]:
        """The transaction's last hop (BEGIN if it has not begun, the queued writes,
        COMMIT; a ROLLBACK there if any fails), queued on the thread now."""
        begin = not self._begun
        queued, self._queued = self._queued, []
        self._begun = False
        submitted = self._submit(Trip(begin, [item.work for item in queued], commit=True))

        async def committed() -> None:
            answers, _ = await submitted
            for item, answer in zip(queued, answers, strict=True):
                item.settle(answer)
        return committed()

    async def _abandon(self) -> None:
        """Roll back what ran, forget what was queued."""
        self._queued.clear()
        self._on_commit.clear()
        self._after_commit.clear()
        if self._begun:
            self._begun = False
            await self._on_thread(Rollback())

    async def later(self, work: Work[T], *, key: Hashable | None = None,
                    then: Callable[[T], None] | None = None) -> Queued[T]:
        """Queue a write for the transaction's next hop (its next statement, or COMMIT):
        for writes whose answer is not needed at once. ``then`` receives the answer when it
        ran; a later write with the same ``key`` replaces one still queued (the whole row
        written again). Outside a transaction it runs at once, in one of its own.

        An error in a queued write surfaces from the hop that ran it, and fails the
        transaction: queue only writes whose failure fails the event anyway."""
        queued = Queued(self, work, key, then)
        if not self._in_transaction.get():
            async with self.transaction():
                self._queued.append(queued)
            return queued
        if key is not None:
            self._queued = [q for q in self._queued if q.key != key]
        self._queued.append(queued)
        return queued

    def on_commit(self, tell: Callable[[], None]) -> None:
        """Call ``tell`` once the current transaction committed (never if it rolls back),
        before the answer of any statement queued after its COMMIT comes back; at once
        outside a transaction."""
        if self._in_transaction.get():
            self._on_commit.append(tell)
        else:
            tell()

    async def flush(self) -> None:
        """Run the queued writes now (``Queued.answer`` needs them)."""
        if self._queued:
            await self._hop(Nothing())

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
        return await self.run(statement(sql, params))

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT; returns the new row id."""
        return await self.run(insertion(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self.run(statements(sql, rows))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.run(query(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def fetch_together(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Several SELECTs in one hop; the rows of each."""
        return await self.run(Together([query(sql, params) for sql, params in queries]))

    async def run(self, work: Work[T]) -> T:
        """``work`` on the connection's thread, in one hop (with the transaction's BEGIN
        and queued writes first); outside a transaction, alone."""
        if self._in_transaction.get():
            return await self._hop(work)
        async with self._lock:
            return await self._hop(work)

    async def grouped(self, work: Work[Any]) -> None:
        """A write committed with the next transaction to start (under load, the next
        event's: no hop of its own), or else in one of its own, shared with the other grouped
        writes queued meanwhile. Returns once it is committed. Inside a transaction it is
        queued in that one (``later``)."""
        if self._in_transaction.get():
            await self.later(work)
            return
        future = asyncio.get_running_loop().create_future()
        self._regroup([(work, future)])
        await asyncio.shield(future)

    def _regroup(self, group: list[tuple[Work[Any], asyncio.Future[None]]]) -> None:
        """Queue grouped writes (again: the transaction that took them rolled back)."""
        if not group:
            return
        self._group[:0] = group
        if self._grouper is None or self._grouper.done():
            # A context of its own: the caller may be inside a transaction of its own.
            self._grouper = asyncio.create_task(self._write_groups(), name="grouped writes",
                                                context=contextvars.Context())

    async def _write_groups(self) -> None:
        """The grouped writes no transaction took meanwhile, in one of their own."""
        while self._group:
            async with self._lock:
                group, self._group = self._group, []
                if not group:
                    break
                try:
                    await self._on_thread(Trip(True, [work for work, _ in group], commit=True))
                except Exception as error:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(error)
                    continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    async def _hop(self, work: Work[T]) -> T:
        """One trip: BEGIN if the transaction has not begun, the queued writes, then
        ``work``. The caller holds the lock (its transaction's, or its own)."""
        begin = self._in_transaction.get() and not self._begun
        queued, self._queued = self._queued, []
        self._begun = self._begun or begin
        answers, result = await self._on_thread(Trip(begin, [item.work for item in queued], work))
        for item, answer in zip(queued, answers, strict=True):
            item.settle(answer)
        return cast(T, result)

    async def _on_thread(self, work: Work[T]) -> T:
        return await self._submit(work)

    def _submit(self, work: Work[T]) -> asyncio.Future[T]:
        """Queue ``work`` for the connection's thread now; its answer comes in the future.

        aiosqlite has no public call for running a function on its thread: this is what
        its ``Connection._execute`` does before awaiting (aiosqlite 0.22, pinned in
        pyproject.toml; tests/test_statement_budget.py fails if that changes), without the
        await, so that the queue's order is settled before the caller yields."""
        connection = self._connection
        assert connection is not None
        if not connection._running or connection._connection is None:
            raise ValueError("Connection closed")
        self.hops += 1
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        connection._tx.put_nowait((future, lambda: work.on_sqlite(connection._conn)))
        return future

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
                for statement in self.migration_sql(migration):
                    await self.execute(statement)
                await self.after_migration()
                await self.execute(
                    "INSERT INTO schema_version (version, name, applied_at) "
                    "VALUES (?, ?, datetime('now'))",
                    (migration.version, migration.name),
                )
        except aiosqlite.Error as error:
            if _cause(error) is not None:  # the file's fault, not the migration's
                raise
            raise DatabaseError(f"migration {migration.name} failed: {error}") from error

    def migration_sql(self, migration: Migration) -> list[str]:
        """The migration's statements, as this backend runs them."""
        return split_sql(migration.sql)

    async def after_migration(self) -> None:
        """What the backend does once a migration's statements ran (in its transaction)."""

    async def sync_identities(self) -> None:
        """After rows were written with their ids given (an import, a benchmark's seed): the
        next generated id past them. SQLite's rowid takes the largest + 1 by itself."""


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:  # a failed BEGIN, or a COMMIT that went through
        connection.execute("ROLLBACK")


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
        own = directory / "postgresql" / path.name
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text("utf-8"),
                                    own.read_text("utf-8") if own.exists() else None))
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
