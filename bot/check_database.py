"""Pre-flight check of the database: readable, writable, and a schema this code knows.

Read-only on purpose: ``Database.open`` would migrate, and a check must change nothing.
SQLite is opened with ``mode=ro``; writability is proven by opening the files for writing
(without writing) and creating a scratch file in the folder, because ``os.access`` says
yes to root whatever the permissions, and the check is often run as root.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from bot.check_report import Section
from bot.config import Config
from bot.storage.database import MIGRATIONS_DIR, DatabaseError, is_postgresql, load_migrations

# SQLite writes these beside the database in WAL mode; they must be writable too.
COMPANIONS = ("-wal", "-shm")


async def check_database(config: Config) -> Section:
    found = Section("database")
    if config.database == ":memory:":
        found.warning(":memory: — nothing is kept when the bot stops (set database: to a file)")
        return found
    if is_postgresql(config.database):
        await _check_postgresql(config.database, found)
        return found
    await asyncio.to_thread(_check_file, config.resolve(config.database), found)
    return found


async def _check_postgresql(url: str, found: Section) -> None:
    """Reachable, its schema version, writable (a primary, not a replica in recovery)."""
    from bot.storage.postgresql import connect, redact
    latest = len(load_migrations(MIGRATIONS_DIR))
    try:
        connection = await connect(url, timeout=5)
    except Exception as error:  # psycopg.Error, or a URL it cannot read
        found.problem(f"{redact(url)}: cannot connect ({str(error).strip().splitlines()[0]})")
        return
    try:
        cursor = await connection.execute("SELECT to_regclass('schema_version') IS NOT NULL,"
                                          " pg_is_in_recovery()")
        row = await cursor.fetchone()
        assert row is not None
        version = 0
        if row[0]:
            cursor = await connection.execute("SELECT coalesce(max(version), 0)"
                                              " FROM schema_version")
            found_version = await cursor.fetchone()
            version = int(found_version[0]) if found_version is not None else 0
        access = "read-only (a replica in recovery)" if row[1] else "writable"
    finally:
        await connection.close()
    if row[1]:
        found.problem(f"{redact(url)}: a replica in recovery, not the primary: the bot must"
                      " write (point database: at the primary, or the service's address)")
    _report_version(redact(url), version, latest, access, found)


def _check_file(path: Path, found: Section) -> None:
    try:
        latest = len(load_migrations(MIGRATIONS_DIR))
    except DatabaseError as error:
        found.problem(f"this installation's migrations are unusable: {error}")
        return
    if not path.exists():
        _check_creatable(path, latest, found)
        return
    unwritable = _unwritable(path)
    try:
        version = _schema_version(path)
    except sqlite3.Error as error:
        found.problem(f"{path}: cannot be read as a SQLite database ({error})")
        return
    if unwritable:
        found.problem(f"{path}: not writable by user {_user()} ({unwritable}); run the check "
                      "as the service's user, or give that user the file and its folder")
    _report_version(path, version, latest, "writable" if not unwritable else "read-only", found)


def _check_creatable(path: Path, latest: int, found: Section) -> None:
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        found.problem(f"{path}: cannot be created: {folder} is not a folder")
        return
    reason = _folder_unwritable(folder)
    if reason:
        found.problem(f"{path}: does not exist and cannot be created: {folder} is not "
                      f"writable by user {_user()} ({reason})")
        return
    found.ok(f"{path}: does not exist yet; created at start (schema version {latest})")


def _report_version(path: Path | str, version: int, latest: int, access: str,
                    found: Section) -> None:
    if version > latest:
        found.problem(f"{path}: schema version {version}, but this code knows only up to "
                      f"{latest}: the database was written by a newer version of the bot "
                      "(upgrade the bot, or restore a backup made by this version)")
    elif version < latest:
        found.ok(f"{path} {access}, schema version {version} of {latest} "
                 "(will be migrated at start)")
    else:
        found.ok(f"{path} {access}, schema version {version} of {latest}")


def _schema_version(path: Path) -> int:
    # Without a -wal file no connection is open and everything is in the main file: read
    # it as immutable, because a read-only open of a WAL database would create -wal and
    # -shm files, owned by whoever runs the check (root?), which the service could not write.
    wal = path.with_name(path.name + "-wal")
    uri = f"{path.resolve().as_uri()}?{'mode=ro' if wal.exists() else 'immutable=1'}"
    with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:  # the bot may hold a lock
        # Raises "file is not a database" for anything that is not SQLite.
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'schema_version'").fetchone()
        if has_table is None:
            return 0  # an empty file: the first start creates everything
        version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(version or 0)


def _unwritable(path: Path) -> str:
    """Why the bot could not write the database, or "" if it can."""
    for file in [path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS)]:
        if not file.exists():
            continue
        try:
            with file.open("r+b"):
                pass
        except OSError as error:
            return f"{file.name}: {error.strerror}"
    return _folder_unwritable(path.parent)


def _folder_unwritable(folder: Path) -> str:
    """SQLite creates the -wal and -shm files beside the database: the folder must take
    new files. Returns why not, or ""."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".alerte-check-"):
            pass
    except OSError as error:
        return f"folder {folder}: {error.strerror}"
    return ""


def _nearest_existing(folder: Path) -> Path:
    # Database.open creates missing folders: the nearest existing one must be writable.
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return str(os.geteuid())
