"""The database file as an attack surface (security review, issue 12): backups onto the live
database, restore under a running bot, erasure that the file could undo, the audit chain."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.maintenance import backup, restore, verify_audit
from bot.storage.database import Database, DatabaseError
from tests.harness import ROOT, TestBot, test_config

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALICE = "telegram:987654321"
SUBSCRIBER = ("INSERT INTO subscribers (platform, platform_user_id, chat_id, consent_at,"
              " consent_version, created_at, updated_at) VALUES (?, ?, ?, 't', 'v', 't', 't')")


def write_config(folder: Path, database: Path, extra: str = "") -> Path:
    path = folder / "bot.yaml"
    path.write_text(f"database: {database}\n{extra}", encoding="utf-8")
    return path


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


# -- item 2: a backup written onto the live database -----------------------------------

def same_path(db: Path) -> Path:
    return db


def dotdot(db: Path) -> Path:
    return db.parent / "sub" / ".." / db.name


def symlink(db: Path) -> Path:
    link = db.parent / "link.sqlite3"
    link.symlink_to(db)
    return link


def hard_link(db: Path) -> Path:
    link = db.parent / "hard.sqlite3"
    os.link(db, link)
    return link


def linked_folder(db: Path) -> Path:
    folder = db.parent.parent / "elsewhere"
    folder.symlink_to(db.parent)
    return folder / db.name


def wal(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def shm(db: Path) -> Path:
    return db.with_name(db.name + "-shm")


def journal(db: Path) -> Path:
    return db.with_name(db.name + "-journal")


@pytest.mark.parametrize("aim", [same_path, dotdot, symlink, hard_link, linked_folder, wal, shm,
                                 journal])
async def test_backup_onto_the_live_database_is_refused(
        tmp_path: Path, aim: Callable[[Path], Path]) -> None:
    live = tmp_path / "var" / "bot.sqlite3"
    (tmp_path / "var" / "sub").mkdir(parents=True)
    bot = await TestBot(test_config(live)).start()
    try:
        await bot.enroll(ALICE, "commercant", "Vesoul")
        target = aim(live)
        with pytest.raises(DatabaseError, match="live database"):
            backup(bot.config, target)
        assert await bot.core.services.db.fetchval("SELECT count(*) FROM subscribers") == 1
    finally:
        await bot.stop()
    assert integrity(live) == "ok"
    assert not list(live.parent.glob("*.partial"))


def test_backup_onto_the_live_database_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "bot.sqlite3"
    with sqlite3.connect(live) as db:
        db.execute("CREATE TABLE t (x)")
    config = write_config(tmp_path, live)
    assert main(["--config", str(config), "backup", str(tmp_path / "." / "bot.sqlite3")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "live database" in captured.err
    assert integrity(live) == "ok"


# -- item 3: restore under a running bot; the copy kept before a restore ----------------

async def test_restore_is_refused_while_the_bot_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "bot.sqlite3"
    bot = await TestBot(test_config(live)).start()
    try:
        await bot.enroll(ALICE, "commercant", "Vesoul")
        assert backup(bot.config, tmp_path / "old.sqlite3") == 0  # maintenance still works
        assert await verify_audit(bot.config, io.StringIO()) == 0
        await bot.enroll("telegram:5", "commercant", "Vesoul")
        with pytest.raises(DatabaseError, match=f"in use by another bot process \\(pid "
                                                f"{os.getpid()}\\)"):
            restore(bot.config, tmp_path / "old.sqlite3")
        config = write_config(tmp_path, live)
        assert main(["--config", str(config), "restore", str(tmp_path / "old.sqlite3")]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert await bot.core.services.db.fetchval("SELECT count(*) FROM subscribers") == 2
    finally:
        await bot.stop()
    assert not live.with_name("bot.sqlite3.before-restore").exists()


async def test_a_second_bot_on_the_same_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other").symlink_to(tmp_path)
    first = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    try:
        second = TestBot(test_config(tmp_path / "other" / "bot.sqlite3"))
        with pytest.raises(DatabaseError) as refused:
            await second.start()
        assert str(refused.value) == (f"{tmp_path / 'bot.sqlite3'} is in use by another bot "
                                      f"process (pid {os.getpid()})")
    finally:
        await first.stop()
    await second.start()  # free again once the first has stopped
    await second.stop()


def test_restore_waits_for_no_process_and_a_killed_bot_frees_the_database(
        tmp_path: Path) -> None:
    live = tmp_path / "bot.sqlite3"
    make_database(tmp_path / "backup.sqlite3")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path;"
         " from bot.storage.lock import ServingLock;"
         " lock = ServingLock.acquire(Path(sys.argv[1])); print('held', flush=True);"
         " time.sleep(60)", str(live)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(DatabaseError, match=f"\\(pid {holder.pid}\\)"):
            restore(test_config(live), tmp_path / "backup.sqlite3")
    finally:
        holder.kill()  # as kill -9 would: the kernel drops the lock with the process
        holder.wait()
    assert restore(test_config(live), tmp_path / "backup.sqlite3") == 0


def make_database(path: Path, subscribers: int = 0) -> None:
    """A bot database with every migration, closed cleanly."""
    async def build() -> None:
        db = await Database.open(path)
        for user in range(subscribers):
            await db.insert(SUBSCRIBER, ("telegram", str(user), str(user)))
        await db.close()

    asyncio.run(build())


def test_before_restore_keeps_rows_still_in_the_wal(tmp_path: Path) -> None:
    """After a crash the last committed rows may be only in the -wal file: the copy kept
    before a restore must have them (it used to be the main file renamed, WAL deleted)."""
    origin, crashed = tmp_path / "origin", tmp_path / "crashed"
    origin.mkdir()
    crashed.mkdir()
    make_database(origin / "bot.sqlite3")
    make_database(tmp_path / "backup.sqlite3")
    writer = sqlite3.connect(origin / "bot.sqlite3")
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        for user in ("11", "12", "13"):
            writer.execute(SUBSCRIBER, ("telegram", user, user))
        writer.commit()
        for name in ("bot.sqlite3", "bot.sqlite3-wal"):  # what a crash leaves on disk
            shutil.copyfile(origin / name, crashed / name)
    finally:
        writer.close()
    assert (crashed / "bot.sqlite3-wal").stat().st_size > 0
    assert restore(test_config(crashed / "bot.sqlite3"), tmp_path / "backup.sqlite3") == 0
    with sqlite3.connect(crashed / "bot.sqlite3.before-restore") as kept:
        assert kept.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 3
    with sqlite3.connect(crashed / "bot.sqlite3") as restored:
        assert restored.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0
    assert integrity(crashed / "bot.sqlite3") == "ok"


def test_an_unreadable_database_is_kept_byte_for_byte(tmp_path: Path) -> None:
    make_database(tmp_path / "backup.sqlite3", subscribers=2)
    (tmp_path / "bot.sqlite3").write_bytes(b"damaged" * 1000)
    assert restore(test_config(tmp_path / "bot.sqlite3"), tmp_path / "backup.sqlite3") == 0
    assert (tmp_path / "bot.sqlite3.before-restore").read_bytes() == b"damaged" * 1000
    assert integrity(tmp_path / "bot.sqlite3") == "ok"


def test_restoring_the_copy_kept_before_a_restore_undoes_it(tmp_path: Path) -> None:
    live, config = tmp_path / "bot.sqlite3", test_config(tmp_path / "bot.sqlite3")
    make_database(live, subscribers=3)
    make_database(tmp_path / "backup.sqlite3", subscribers=1)
    assert restore(config, tmp_path / "backup.sqlite3") == 0
    assert restore(config, live.with_name("bot.sqlite3.before-restore")) == 0
    with sqlite3.connect(live) as db:
        assert db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 3
