"""Commands on the database beside the running bot: audit check, export, backup, restore."""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.config import Config, ConfigError
from bot.keys import Keys
from bot.organisations import IMPLICIT
from bot.storage.audit import AuditStore
from bot.storage.database import (
    MIGRATIONS_DIR,
    Database,
    DatabaseError,
    is_postgresql,
    load_migrations,
)
from bot.storage.lock import ServingLock, lock_path
from bot.storage.stats import scope

EXPORT_SQL = """
SELECT a.id, a.kind, a.parent_id, a.category, a.exercise, a.status, a.closed,
       a.perimeter,
       (SELECT count(*) FROM alert_communes c WHERE c.alert_id = a.id) AS communes,
       a.requested_by, a.created_at, a.decided_at, a.broadcast_started_at, a.completed_at,
       sum(d.status = 'sent') AS sent, sum(d.status = 'failed') AS failed,
       sum(d.status = 'blocked') AS blocked, sum(d.status = 'dropped') AS dropped,
       count(d.acknowledged_at) AS receipts, a.organisation
FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id AND d.action = 'send'
WHERE 1 = 1{scope}
GROUP BY a.id ORDER BY a.id
"""


async def open_database(config: Config) -> Database:
    """For reading only: checking or exporting a read-only copy is fine."""
    if config.database == ":memory:" or is_postgresql(config.database):
        return await Database.open(config.database, writable=False)
    return await Database.open(config.resolve(config.database), writable=False)


async def verify_audit(config: Config, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # at call time: a default argument would keep the import's
    db = await open_database(config)
    try:
        audit = AuditStore(db, Keys.of(config))
        check = await audit.verify()
        _, head = await audit.head()
    finally:
        await db.close()
    if not check.problem:
        # Removing the newest events leaves a valid shorter chain: compare this last hash
        # with the ones in the logs and in the backups' names to detect it.
        print(f"audit chain intact: {check.checked} events, last hash {head or '-'}", file=out)
        return 0
    if check.broken_at is None:
        print(f"audit chain NOT VERIFIED: {check.problem}", file=out)
    else:
        print(f"audit chain BROKEN at event {check.broken_at} (after {check.checked} intact "
              f"events): {check.problem}", file=out)
    return 1


async def export_csv(config: Config, target: Path | None, out: TextIO = sys.stdout,
                     organisation: str | None = None) -> int:
    """Alerts with their delivery figures; no personal data (identities of staff only).
    ``organisation``: only that organisation's alerts (an overseer's export: all)."""
    keys: frozenset[str] | None = None
    if organisation is not None:
        chosen = next((o for o in config.organisations if o.key == organisation), None)
        if chosen is None and organisation != IMPLICIT:
            known = ", ".join(o.key for o in config.organisations) or IMPLICIT
            raise ConfigError(f"--organisation: unknown {organisation!r} (known: {known})")
        keys = None if chosen is not None and chosen.oversees else frozenset({organisation})
    where, params = scope(keys)
    db = await open_database(config)
    try:
        rows = await db.fetchall(EXPORT_SQL.format(scope=where), params)
    finally:
        await db.close()
    handle = target.open("w", newline="", encoding="utf-8") if target else out
    try:
        writer = csv.writer(handle)
        writer.writerow(rows[0].keys() if rows else ["id"])
        writer.writerows(tuple(row) for row in rows)
    finally:
        if target:
            handle.close()
    return 0


def backup(config: Config, target: Path) -> int:
    """A consistent copy of the live database (SQLite's online backup API: safe while
    the bot writes; the copy is a single file, WAL included). Into a folder, the copy is
    named after the time (UTC) and the head of its audit chain."""
    refuse_postgresql(config, "backup")
    source_path = config.resolve(config.database)
    if not source_path.exists():
        raise DatabaseError(f"{source_path}: no database to back up")
    folder = target if target.is_dir() else None
    partial = partial_of(folder / source_path.stem if folder else target)
    refuse_database_files(source_path, target, partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    copy_database(source_path, partial)
    head = audit_head(partial)
    if folder:
        target = folder / backup_name(source_path, head)
        refuse_database_files(source_path, target)
    partial.replace(target)  # a crash mid-backup never leaves a truncated file named target
    print(f"backup written: {target} ({target.stat().st_size} bytes, audit head {head or '-'})")
    return 0


def refuse_postgresql(config: Config, command: str) -> None:
    """backup and restore copy SQLite's file; PostgreSQL has its own tools for that."""
    if is_postgresql(config.database):
        raise DatabaseError(f"{command} copies an SQLite file; on PostgreSQL use pg_dump and"
                            " pg_restore, or the server's base backups (docs/high-availability.md)")


def backup_name(database: Path, head: str) -> str:
    """bot-20261125-0330-1a2b3c4d5e6f.sqlite3: sorts by time; a rewritten audit history
    no longer leads to the heads written in earlier backups' names."""
    moment = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return f"{database.stem}-{moment}-{head[:12] or 'noevents'}.sqlite3"


def audit_head(database: Path) -> str:
    with closing(sqlite3.connect(database)) as db:
        try:
            row = db.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:  # a database the bot never opened: no trail yet
            return ""
    return str(row[0]) if row else ""


# SQLite keeps a database in up to four files; writing over any of them corrupts it, and
# over the lock file it would let a second bot start.
DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def refuse_database_files(database: Path, *paths: Path) -> None:
    """Refuse to write ``paths`` if one is the database or a file of it, however named:
    ``..``, a symbolic link (of the file or a folder) or a hard link."""
    files = [database.with_name(database.name + suffix) for suffix in DATABASE_SUFFIXES]
    for path in paths:
        for live in [*files, lock_path(database)]:
            if same_file(path, live):
                raise DatabaseError(f"{path}: this is the live database {live}; "
                                    "back up to another file")


def same_file(first: Path, second: Path) -> bool:
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def partial_of(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy, written to FILE.partial and renamed, so a crash never leaves a
    truncated copy under the final name."""
    partial = partial_of(target)
    copy_database(source, partial)
    partial.replace(target)


def copy_database(source: Path, target: Path) -> None:
    """Through SQLite's backup API, which reads the WAL too (a copy of the main file
    alone misses the last committed transactions)."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as origin, closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)


def restore(config: Config, source: Path) -> int:
    """Put a backup in place of the database. Refused while a bot serves it (the serving
    lock, held meanwhile so none starts); the current state is kept beside it."""
    if not source.is_file():
        raise DatabaseError(f"{source}: no such backup file")
    version = _backup_version(source)
    known = len(load_migrations(MIGRATIONS_DIR))
    if version > known:
        raise DatabaseError(f"{source}: schema version {version} is newer than this code "
                            f"({known}); use the bot version that made it")
    refuse_postgresql(config, "restore")
    target = config.resolve(config.database)
    lock = ServingLock.acquire(target)
    try:
        _replace_database(source, target)
    finally:
        lock.release()
    print(f"restored {source} (schema version {version}) into {target}")
    return 0


def _replace_database(source: Path, target: Path) -> None:
    incoming = target.with_name(target.name + ".restoring")
    sqlite_copy(source, incoming)  # first: the source may be the .before-restore copy
    if target.exists():
        kept = target.with_name(target.name + ".before-restore")
        _keep_current(target, kept)
        print(f"previous database kept as {kept}")
    for suffix in DATABASE_SUFFIXES[1:]:
        # They belong to the replaced file (kept above): SQLite would replay a WAL left
        # beside the new one into it.
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    incoming.replace(target)


def _keep_current(target: Path, kept: Path) -> None:
    """The whole current state, committed transactions still in the WAL included; a file
    SQLite cannot read (the reason for many restores) is kept byte for byte, WAL beside."""
    try:
        sqlite_copy(target, kept)
    except sqlite3.DatabaseError:
        partial_of(kept).unlink(missing_ok=True)
        for suffix in DATABASE_SUFFIXES[:2]:
            current = target.with_name(target.name + suffix)
            if current.exists():
                shutil.copyfile(current, kept.with_name(kept.name + suffix))


def _backup_version(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            integrity = db.execute("PRAGMA quick_check").fetchone()[0]
            version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path}: not a bot database backup ({error})") from None
    if integrity != "ok":
        raise DatabaseError(f"{path}: damaged backup ({integrity})")
    return int(version or 0)
