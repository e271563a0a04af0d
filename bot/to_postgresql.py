"""``run_bot.py migrate-to-postgresql --from bot.sqlite3 --to postgresql://…``: a deployment's
data moved from its SQLite file into an empty PostgreSQL database.

1. A consistent snapshot of the file (SQLite's backup API: the bot may still be running; stop
   it before the copy if nothing written afterwards may be missed), migrated to this code's
   schema version: the live file itself is never written.
2. The PostgreSQL database migrated to the same version (it must hold no data yet).
3. Every table copied with COPY, in one transaction (all or nothing); the foreign keys are
   dropped for the copy (alerts and schedules reference each other) and added again before
   it commits, which checks every copied row against them.
4. Verified: every table's row count equal on both sides, the identity sequences past the
   copied ids, and the audit chain verifying on PostgreSQL with this deployment's key, its
   head (last hash) the same as the file's.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import psycopg

from bot.app import keys_of
from bot.config import Config
from bot.maintenance import copy_database
from bot.storage.audit import AuditStore
from bot.storage.database import Database, DatabaseError, is_postgresql
from bot.storage.postgresql import PostgresDatabase, connect, redact

# Written by the migrations themselves on both sides: compared, not copied.
SCHEMA_TABLES = {"schema_version"}
BATCH = 5_000
FOREIGN_KEYS = ("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE contype = 'f'"
                " AND connamespace = current_schema()::regnamespace")


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int


def tables_of(snapshot: sqlite3.Connection) -> list[str]:
    return [r[0] for r in snapshot.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name")]


async def migrate_to_postgresql(config: Config, source: Path, target: str,
                                out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not is_postgresql(target):
        raise DatabaseError(f"--to {target}: a postgresql://… URL")
    if not source.is_file():
        raise DatabaseError(f"{source}: no such database file")
    with tempfile.TemporaryDirectory(prefix="alerte-migrate-") as folder:
        snapshot = Path(folder) / "snapshot.sqlite3"
        copy_database(source, snapshot)
        prepared = await Database.open(snapshot)  # the snapshot migrated to this version
        try:
            keys = keys_of(config)
            source_audit = AuditStore(prepared, keys)
            source_head = await source_audit.head()
        finally:
            await prepared.close()
        destination = await Database.open(target)
        assert isinstance(destination, PostgresDatabase)
        try:
            await _refuse_data(destination)
        finally:
            await destination.close()
        with closing(sqlite3.connect(snapshot)) as lite:
            copied = await _copy(lite, target)
            expected = {table: int(lite.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
                        for table in tables_of(lite)}
    destination = await Database.open(target)
    assert isinstance(destination, PostgresDatabase)
    try:
        await destination.sync_identities()
        problems = []
        for item in copied:
            found = int(await destination.fetchval(f'SELECT count(*) FROM "{item.table}"'))
            if found != expected[item.table]:
                problems.append(f"{item.table}: {found} rows instead of {expected[item.table]}")
        audit = AuditStore(destination, keys_of(config))
        check = await audit.verify()
        head = await audit.head()
    finally:
        await destination.close()
    for item in copied:
        print(f"{item.table:<28} {item.rows:>10} rows", file=out)
    if check.problem:
        problems.append(f"audit chain: {check.problem}")
    if head != source_head:
        problems.append(f"audit head {head} instead of {source_head}")
    if problems:
        for problem in problems:
            print(f"PROBLEM {problem}", file=out)
        return 1
    print(f"copied {source} into {redact(target)}: counts verified, audit chain intact"
          f" ({check.checked} events, head {head[1] or '-'})", file=out)
    return 0


async def _refuse_data(destination: Database) -> None:
    rows = await destination.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE'")
    for row in rows:
        table = str(row[0])
        if table in SCHEMA_TABLES or table == "meta":
            continue
        if await destination.fetchval(f'SELECT 1 FROM "{table}" LIMIT 1') is not None:
            raise DatabaseError(f"{destination.path}: table {table} already holds rows; the"
                                " copy goes into an empty database only")


async def _copy(lite: sqlite3.Connection, target: str) -> list[Copied]:
    """Every table but the schema's, in one PostgreSQL transaction."""
    copied: list[Copied] = []
    connection = await connect(target)
    try:
        async with connection.transaction():
            await connection.execute("DELETE FROM meta")  # the migrations' own rows
            cursor = await connection.execute(FOREIGN_KEYS)
            keys = [(str(r[0]), str(r[1]), str(r[2])) for r in await cursor.fetchall()]
            for table, name, _ in keys:
                await connection.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            for table in tables_of(lite):
                if table in SCHEMA_TABLES:
                    continue
                copied.append(Copied(table, await _copy_table(lite, connection, table)))
            for table, name, definition in keys:
                await connection.execute(
                    f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    except psycopg.Error as error:
        raise DatabaseError(f"{redact(target)}: the copy failed and was rolled back"
                            f" ({str(error).strip().splitlines()[0]})") from None
    finally:
        await connection.close()
    return copied


async def _copy_table(lite: sqlite3.Connection, connection: psycopg.AsyncConnection[object],
                      table: str) -> int:
    columns = [r[1] for r in lite.execute(f'PRAGMA table_info("{table}")')]
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = lite.execute(f'SELECT {names} FROM "{table}" ORDER BY rowid'
                          if _has_rowid(lite, table) else f'SELECT {names} FROM "{table}"')
    count = 0
    async with connection.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        while rows := cursor.fetchmany(BATCH):
            for row in rows:
                await copy.write_row(row)
            count += len(rows)
    return count


def _has_rowid(lite: sqlite3.Connection, table: str) -> bool:
    try:
        lite.execute(f'SELECT rowid FROM "{table}" LIMIT 1')
    except sqlite3.OperationalError:  # WITHOUT ROWID
        return False
    return True
