"""A bot on a database it cannot use stops at once with one line, instead of hanging.

Root ignores permission bits, and the tests may run as root: a read-only database is made
with a read-only bind mount in a mount namespace of the bot's own (``unshare``), which
stops root too, as a disk remounted read-only after errors would. Without the privileges
for that, permission bits are enough for anyone but root.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bot.storage import database as database_module
from bot.storage.database import Database, DatabaseError

ROOT = Path(__file__).resolve().parent.parent
# Bind-mounts the folder $0 read-only over itself, then runs the command.
READ_ONLY_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
NOT_A_DATABASE = b"Liste des abonnes, export du tableur\n" * 200


def worker_threads() -> int:
    """aiosqlite's connection threads alive (not daemons: one left keeps the process up).
    A closed connection's thread ends just after close() returns: allow it a second."""
    deadline = time.monotonic() + 1.0
    while True:
        alive = sum("_connection_worker_thread" in t.name for t in threading.enumerate())
        if alive == 0 or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


def migrated(path: Path) -> Path:
    """A bot database, made outside any test's event loop."""
    async def create() -> None:
        await (await Database.open(path)).close()
    asyncio.run(create())
    return path


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A bot database whose write lock another process holds for the whole test."""
    path = migrated(tmp_path / "bot.sqlite3")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    yield path
    other.execute("ROLLBACK")
    other.close()


def read_only(folder: Path) -> list[str]:
    """The command prefix that runs the bot with ``folder`` read-only (see the docstring)."""
    if os.geteuid() != 0:
        for item in folder.iterdir():
            item.chmod(0o444)
        folder.chmod(0o555)
        return []
    prefix = ["unshare", "--mount", "sh", "-c", READ_ONLY_MOUNT, str(folder)]
    if shutil.which("unshare") is None or subprocess.run(
            [*prefix, "true"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("root without the right to make a mount namespace: no read-only disk")
    return prefix


def run_bot(config: Path, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``run_bot.py run``; a bot that hangs fails the test by its timeout."""
    return subprocess.run([*prefix, sys.executable, str(ROOT / "run_bot.py"), "--config",
                           str(config), "run"], capture_output=True, text=True, timeout=30,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def bot_config(folder: Path, database: Path) -> Path:
    config = folder / "bot.yaml"
    config.write_text(f"database: {database}\n"
                      f"communities: {ROOT / 'config/communities.yaml'}\n"
                      f"categories: {ROOT / 'config/categories.yaml'}\n"
                      f"geo:\n  communes: [{ROOT / 'config/geo/communes-70.geojson'}]\n",
                      encoding="utf-8")
    return config


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the log lines (``time=… level=…``) the bot wrote before failing,
    e.g. the audit chain's head at start and stop."""
    return [line for line in result.stderr.strip().splitlines()
            if not line.startswith("time=")]


def assert_one_line(result: subprocess.CompletedProcess[str], database: Path,
                    cause: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {database}: "), lines[0]
    assert cause in lines[0], lines[0]


# --- Database.open -------------------------------------------------------------------------


async def test_a_file_that_is_not_a_database_is_refused_and_let_go(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(NOT_A_DATABASE)
    before = worker_threads()
    with pytest.raises(DatabaseError) as caught:
        await Database.open(path)
    assert str(caught.value) == (f"{path}: not an SQLite database (a wrong path, or a damaged "
                                 "file: restore a backup)")
    assert worker_threads() == before
    assert path.read_bytes() == NOT_A_DATABASE


async def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"a folder, not a database file$") as caught:
        await Database.open(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: ")


async def test_a_database_locked_by_another_process_is_refused(
        locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading works beside the other process's lock; the bot would start, then fail every
    write: the write check at open says so at once (after the usual wait for a lock)."""
    monkeypatch.setattr(database_module, "BUSY_SECONDS", 0.2)
    before = worker_threads()
    with pytest.raises(DatabaseError) as caught:
        await Database.open(locked)
    assert str(caught.value) == (f"{locked}: the database is locked by another process (is "
                                 "another bot using it?)")
    assert worker_threads() == before
    reader = await Database.open(locked, writable=False)  # audit verify, export: fine
    try:
        assert await reader.fetchval("SELECT count(*) FROM alerts") == 0
    finally:
        await reader.close()


async def test_check_writable_at_run_time(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    database = await Database.open(path)
    try:
        await database.check_writable()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DatabaseError, match="locked by another process"):
            await database.check_writable(timeout=0.1)
        other.execute("ROLLBACK")
        other.close()
        await database.check_writable()
        path.unlink()  # the bot would go on writing to a file nobody will ever open again
        with pytest.raises(DatabaseError, match="cannot open the database file"):
            await database.check_writable()
        assert not path.exists()  # the check never creates a file
    finally:
        await database.close()


# --- run_bot.py ----------------------------------------------------------------------------


def test_run_bot_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    database.write_bytes(NOT_A_DATABASE)
    assert_one_line(run_bot(bot_config(tmp_path, database)), database,
                    "not an SQLite database")


def test_run_bot_on_a_read_only_disk(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    database = migrated(folder / "bot.sqlite3")
    config = bot_config(tmp_path, database)
    result = run_bot(config, read_only(folder))
    assert_one_line(result, database, "read-only")
    folder.chmod(0o755)


def test_run_bot_on_a_locked_database(locked: Path, tmp_path: Path) -> None:
    assert_one_line(run_bot(bot_config(tmp_path, locked)), locked,
                    "locked by another process")


def test_a_start_that_fails_after_the_database_opened_still_exits(tmp_path: Path) -> None:
    """The database is open when a platform refuses to start: it must be closed too."""
    with socket.socket() as probe:  # a loopback port nobody listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = bot_config(tmp_path, tmp_path / "bot.sqlite3")
    with config.open("a", encoding="utf-8") as text:
        text.write(f"secret_key: {'k' * 32}\n"
                   "telegram:\n  enabled: true\n  token: '123456:unreachable-api-token'\n"
                   f"  base_url: http://127.0.0.1:{port}/bot\n")
    result = run_bot(config)
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: telegram.base_url: "), lines
