"""Commands on the database beside the running bot: audit check, export, backup, restore."""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

from bot.config import Config
from bot.storage.audit import AuditStore
from bot.storage.database import MIGRATIONS_DIR, Database, DatabaseError, load_migrations

EXPORT_SQL = """
SELECT a.id, a.kind, a.parent_id, a.category, a.exercise, a.status, a.closed, a.perimeter,
       (SELECT count(*) FROM alert_communes c WHERE c.alert_id = a.id) AS communes,
       a.requested_by, a.created_at, a.decided_at, a.broadcast_started_at, a.completed_at,
       sum(d.status = 'sent') AS sent, sum(d.status = 'failed') AS failed,
       sum(d.status = 'blocked') AS blocked, sum(d.status = 'dropped') AS dropped,
       count(d.acknowledged_at) AS receipts
FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id AND d.action = 'send'
GROUP BY a.id ORDER BY a.id
"""


async def open_database(config: Config) -> Database:
    """For reading only: checking or exporting a read-only copy is fine."""
    path = config.database if config.database == ":memory:" else config.resolve(config.database)
    return await Database.open(path, writable=False)


async def verify_audit(config: Config, out: TextIO = sys.stdout) -> int:
    db = await open_database(config)
    try:
        checked, broken = await AuditStore(db).verify()
        last = await AuditStore(db).last_hash()
    finally:
        await db.close()
    if broken is None:
        # Removing the newest events leaves a valid shorter chain: compare this last hash
        # with the one noted at the previous check (operations log) to detect it.
        print(f"audit chain intact: {checked} events, last hash {last or '-'}", file=out)
        return 0
    print(f"audit chain BROKEN at event {broken} (after {checked} intact events): "
          "an event was modified or deleted", file=out)
    return 1


async def export_csv(config: Config, target: Path | None, out: TextIO = sys.stdout) -> int:
    """Alerts with their delivery figures; no personal data (identities of staff only)."""
    db = await open_database(config)
    try:
        rows = await db.fetchall(EXPORT_SQL)
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
    the bot writes; the copy is a single file, WAL included)."""
    source_path = config.resolve(config.database)
    if not source_path.exists():
        raise DatabaseError(f"{source_path}: no database to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with sqlite3.connect(source_path) as source, sqlite3.connect(partial) as copy:
        source.backup(copy)
    partial.replace(target)  # a crash mid-backup never leaves a truncated file named target
    print(f"backup written: {target} ({target.stat().st_size} bytes)")
    return 0


def restore(config: Config, source: Path) -> int:
    """Put a backup in place of the database. Stop the bot first: SQLite cannot swap the
    file under a running process. The previous database is kept beside it."""
    if not source.is_file():
        raise DatabaseError(f"{source}: no such backup file")
    version = _backup_version(source)
    known = len(load_migrations(MIGRATIONS_DIR))
    if version > known:
        raise DatabaseError(f"{source}: schema version {version} is newer than this code "
                            f"({known}); use the bot version that made it")
    target = config.resolve(config.database)
    if target.exists():
        kept = target.with_name(target.name + ".before-restore")
        target.replace(kept)
        print(f"previous database kept as {kept}")
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(source) as backup_db, sqlite3.connect(target) as live:
        backup_db.backup(live)
    print(f"restored {source} (schema version {version}) into {target}")
    return 0


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
