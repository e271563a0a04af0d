"""The database file as an attack surface (security review, issue 12): backups onto the live
database, restore under a running bot, erasure that the file could undo, the audit chain."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.maintenance import backup
from bot.storage.database import DatabaseError
from tests.harness import TestBot, test_config

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALICE = "telegram:987654321"


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
