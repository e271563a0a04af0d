"""The PostgreSQL backend: the same ``Database`` (transactions, queued and grouped writes,
hops), on one psycopg 3 connection.

A hop is awaited on the connection by one task, in the order hops were submitted, as
aiosqlite's thread runs them: the transaction lock is handed on once COMMIT is queued, and the
next transaction's statements run after it. Statements are SQLite's, rewritten by
bot/storage/dialect.py (placeholders, ``INSERT OR IGNORE``, ``datetime('now')``) or given a
variant of their own (``statement(..., postgresql=...)``).

Values: psycopg sends a Python str as an untyped literal, which PostgreSQL reads as the
column's type, as SQLite would; a bool goes as an integer (the schema's flags are INTEGER
0/1, as in SQLite), and numeric results (``sum`` of BIGINT) come back as int or float, never
Decimal, as SQLite's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncRawCursor
from psycopg.adapt import Dumper, Loader
from psycopg.rows import RowMaker

from bot.storage.database import (
    MIGRATIONS_DIR,
    WRITE_PROBE,
    Database,
    DatabaseError,
    Kind,
    Migration,
    Statement,
    Work,
    load_migrations,
    split_sql,
)
from bot.storage.dialect import Dialect, ddl, translate

log = logging.getLogger(__name__)
CONNECT_SECONDS = 10.0
PROBE = WRITE_PROBE
SCHEMA_VERSION = ("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY,"
                  " name TEXT NOT NULL, applied_at TEXT NOT NULL)")
# Every identity column: after rows were copied with their ids (a table rebuilt by a
# migration, migrate-to-postgresql), its sequence must start past them.
IDENTITIES = ("SELECT table_name, column_name FROM information_schema.columns"
              " WHERE table_schema = current_schema() AND is_identity = 'YES'")
# What SQLite has and PostgreSQL has not, created in the database before the migrations
# (idempotent): sum() of booleans, the idiom of SQLite queries counting rows by a condition
# (NULL for no row, as SQLite's sum).
COMPATIBILITY = (
    "CREATE OR REPLACE FUNCTION alerte_sum_bool(bigint, boolean) RETURNS bigint"
    " LANGUAGE sql IMMUTABLE AS"
    " 'SELECT CASE WHEN $2 IS NULL THEN $1 ELSE coalesce($1, 0) + $2::int END'",
    "CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = alerte_sum_bool, STYPE = bigint)",
)
# The schema's statements under one lock: two bot processes starting together migrate once.
MIGRATION_LOCK = "SELECT pg_advisory_lock(7340040)"
MIGRATION_UNLOCK = "SELECT pg_advisory_unlock(7340040)"


class PgRow(tuple[Any, ...]):
    """A row read by position or by column name, as sqlite3.Row is."""

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()
    _positions: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._positions[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    return type("PgRow", (PgRow,), {"__slots__": (), "_names": names,
                                    "_positions": {name: i for i, name in enumerate(names)}})


def pg_row(cursor: Any) -> RowMaker[PgRow]:
    description = cursor.description
    if description is None:
        return cast(RowMaker[PgRow], PgRow)
    return cast(RowMaker[PgRow], _row_class(tuple(column.name for column in description)))


class BoolAsInteger(Dumper):
    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class NumericAsNumber(Loader):
    def load(self, data: Any) -> Any:
        text = bytes(data).decode()
        return float(text) if any(c in text for c in ".eEN") else int(text)


async def run_statement(connection: psycopg.AsyncConnection[Any], work: Statement[Any]) -> Any:
    """One described statement on ``connection`` (bot/storage/database.py's Statement)."""
    translated = translate(work.postgresql or work.sql, work.kind is Kind.INSERT)
    cursor = connection.cursor()
    try:
        if work.kind is Kind.MANY:
            rows = [_arguments(translated.names, params) or () for params in work.params]
            if rows:
                await cursor.executemany(translated.sql, rows)
            return None
        await cursor.execute(translated.sql, _arguments(translated.names, work.params))
        if work.kind is Kind.COUNT:
            return cursor.rowcount
        if work.kind is Kind.INSERT:
            found = await cursor.fetchone()
            assert found is not None, "an INSERT … RETURNING id returned nothing"
            return found[0]
        return await cursor.fetchall() if cursor.description is not None else []
    finally:
        await cursor.close()


def _arguments(names: tuple[str, ...] | None, params: Any) -> Sequence[Any] | None:
    if names is not None:
        return [params[name] for name in names]
    return list(params) if params else None


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


async def connect(url: str, *, read_only: bool = False, timeout: float = CONNECT_SECONDS,
                  **options: Any) -> psycopg.AsyncConnection[Any]:
    """A connection in autocommit mode (the Database sends BEGIN and COMMIT itself);
    ``options``: libpq's (keepalives…)."""
    connection = await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=pg_row, cursor_factory=AsyncRawCursor,
        connect_timeout=max(1, int(timeout)), application_name="alerte-bot", **options)
    connection.adapters.register_dumper(bool, BoolAsInteger)
    connection.adapters.register_loader("numeric", NumericAsNumber)
    if read_only:
        await connection.execute("SET default_transaction_read_only = on")
    return connection


class PostgresDatabase(Database):
    dialect = Dialect.POSTGRESQL

    def __init__(self, connection: psycopg.AsyncConnection[Any], url: str) -> None:
        super().__init__(None, redact(url))
        self.url = url
        self._pg = connection
        self._hops: asyncio.Queue[tuple[asyncio.Future[Any], Work[Any]] | None] = asyncio.Queue()
        self._runner = asyncio.create_task(self._run_hops(), name="postgresql hops")
        self._closed = False

    @classmethod
    async def connect(cls, url: str, migrations_dir: Path = MIGRATIONS_DIR, *,
                      writable: bool = True) -> PostgresDatabase:
        migrations = load_migrations(migrations_dir)
        try:
            connection = await connect(url)
        except psycopg.Error as error:
            raise DatabaseError(f"{redact(url)}: {_first_line(error)}") from None
        database = cls(connection, url)
        try:
            await database._migrate_locked(migrations)
            if writable:
                await database.check_writable(CONNECT_SECONDS)
        except BaseException as error:
            with contextlib.suppress(Exception):
                await database.close()
            if isinstance(error, psycopg.Error):
                raise DatabaseError(f"{database.path}: {_first_line(error)}") from None
            raise
        return database

    async def _migrate_locked(self, migrations: list[Migration]) -> None:
        await self.execute(MIGRATION_LOCK)
        try:
            for sql in COMPATIBILITY:
                await self.execute(sql)
            await self.migrate(migrations)
        except DatabaseError as error:
            raise DatabaseError(f"{self.path}: {error}") from None
        finally:
            with contextlib.suppress(Exception):
                await self.execute(MIGRATION_UNLOCK)

    async def _run_hops(self) -> None:
        """The hops, one after the other, in the order they were submitted."""
        while (item := await self._hops.get()) is not None:
            future, work = item
            try:
                answer = await work.on_postgresql(self._pg)
            except BaseException as error:  # handed to the waiting caller
                if not future.done():
                    future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            if not future.done():
                future.set_result(answer)

    def _submit(self, work: Work[Any]) -> asyncio.Future[Any]:
        if self._closed or self._runner.done():
            raise ValueError("Connection closed")
        self.hops += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._hops.put_nowait((future, work))
        return future

    async def close(self) -> None:
        if self._closed:
            return
        if self._grouper is not None:
            with contextlib.suppress(Exception):
                await self._grouper
        self._closed = True
        self._hops.put_nowait(None)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(self._runner), 10)
        if not self._runner.done():
            self._runner.cancel()
        with contextlib.suppress(Exception):
            await self._pg.close()

    async def reader(self) -> Database:
        """A read-only connection of its own, for monitoring."""
        try:
            connection = await connect(self.url, read_only=True)
        except psycopg.Error as error:
            raise DatabaseError(f"{self.path}: {_first_line(error)}") from None
        return PostgresDatabase(connection, self.url)

    async def check_writable(self, timeout: float = 2.0) -> None:
        """On a connection of its own, a write that is rolled back: refused by a replica in
        recovery, a read-only database, a server that does not answer within ``timeout``."""
        async def probe() -> None:
            connection = await connect(self.url, timeout=timeout)
            try:
                await connection.execute(f"SET statement_timeout = {int(timeout * 1000)}")
                await connection.execute("BEGIN")
                try:
                    await connection.execute(PROBE)
                finally:
                    await connection.execute("ROLLBACK")
            finally:
                await connection.close()
        try:
            await asyncio.wait_for(probe(), timeout + 1)
        except TimeoutError:
            raise DatabaseError(f"{self.path}: no answer within {timeout + 1:g} s") from None
        except psycopg.Error as error:
            raise DatabaseError(f"{self.path}: {_first_line(error)}") from None

    async def schema_version(self) -> int:
        await self.execute(SCHEMA_VERSION)
        return int(await self.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    async def migrate(self, migrations: list[Migration]) -> None:
        try:
            await super().migrate(migrations)
        except psycopg.Error as error:
            raise DatabaseError(_first_line(error)) from None

    async def _apply(self, migration: Migration) -> None:
        try:
            await super()._apply(migration)
        except psycopg.Error as error:
            raise DatabaseError(f"migration {migration.name} failed: {_first_line(error)}"
                                ) from error

    def migration_sql(self, migration: Migration) -> list[str]:
        """The migration translated (bot/storage/dialect.py): its PostgreSQL file
        (migrations/postgresql/NNNN_name.sql) if it has one, else the portable one."""
        text = migration.sql if migration.postgresql is None else migration.postgresql
        return [sql for sql in map(ddl, split_sql(text)) if sql is not None]

    async def after_migration(self) -> None:
        await self.sync_identities()

    async def sync_identities(self) -> None:
        """Each identity column's next value past the largest id in its table."""
        for row in await self.fetchall(IDENTITIES):
            table, column = _identifier(row[0]), _identifier(row[1])
            await self.fetchval(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)")


def _identifier(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) is None:
        raise DatabaseError(f"unexpected name in the schema: {name!r}")
    return name


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


