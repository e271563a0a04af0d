"""The serving lock: one bot process per database, and no restore under a running bot.

SQLite lets any number of processes open the database, so nothing stopped a second bot
(two dispatchers sending the same outbox) or a restore swapping the file under the bot.
The bot holds an exclusive ``flock`` on ``<database>.lock`` while it serves; ``restore``
takes the same lock. Maintenance that only reads (backup, export, audit verify) does not
need it. The kernel drops the lock with the process, even on ``kill -9``; the file stays
(deleting it would let a newcomer lock a new file while an old holder still runs).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import IO

from bot.storage.database import DatabaseError


class DatabaseInUse(DatabaseError):
    """Another process holds the database's serving lock."""


def lock_path(database: Path) -> Path:
    """The lock file of a database, however the database is named (links, ``..``)."""
    resolved = database.resolve()
    return resolved.with_name(resolved.name + ".lock")


def lock_file_problem(database: Path, path: Path, error: OSError) -> str:
    """Name the database, as every other database error does; say the lock file's part."""
    if error.errno == errno.EROFS:
        return (f"{database}: the database is read-only (its folder is on a read-only disk; "
                f"the bot needs to write the database and its lock file {path.name})")
    if error.errno in (errno.EACCES, errno.EPERM):
        return (f"{database}: the database's folder is not writable ({error.strerror}): the "
                f"bot needs it for the database and its lock file {path.name}")
    return f"{database}: cannot open the lock file {path} ({error.strerror})"


class ServingLock:
    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, database: Path) -> ServingLock:
        """Take the lock or raise DatabaseInUse naming the holder's pid."""
        path = lock_path(database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+", encoding="ascii")
        except OSError as error:  # e.g. left owned by root by a command run as root
            raise DatabaseError(lock_file_problem(database, path, error)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise DatabaseInUse(f"{database.resolve()} is in use by another bot process "
                                f"(pid {holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None
