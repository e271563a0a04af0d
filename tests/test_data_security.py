"""The database file as an attack surface (security review, issue 12): backups onto the live
database, restore under a running bot, erasure that the file could undo, the audit chain."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot import logs
from bot.cli import main
from bot.config import ConfigError, load_config
from bot.keys import DEVELOPMENT_SECRET, Keys
from bot.maintenance import backup, restore, verify_audit
from bot.storage.database import MIGRATIONS_DIR, Database, DatabaseError
from bot.storage.lock import ServingLock
from tests.harness import OFFICERS, ROOT, TestBot, test_config

# The SQLite file itself: its backups, its pages after an erasure, the chain edited with sqlite3.
pytestmark = pytest.mark.sqlite_only

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALICE = "telegram:987654321"
SUBSCRIBER = ("INSERT INTO subscribers (platform, platform_user_id, chat_id, consent_at,"
              " consent_version, created_at, updated_at) VALUES (?, ?, ?, 't', 'v', 't', 't')")


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """bot.cli.main points logging at the stderr of its moment (the test's capture)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def write_config(folder: Path, database: Path, extra: str = "") -> Path:
    path = folder / "bot.yaml"
    path.write_text(f"database: {database}\n{extra}", encoding="utf-8")
    return path


def integrity(database: Path) -> str:
    with closing(sqlite3.connect(database)) as db:
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


def test_another_process_holds_the_database_until_it_is_killed(tmp_path: Path) -> None:
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


def test_a_second_bot_is_one_line_and_touches_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "var" / "bot.sqlite3"
    held = ServingLock.acquire(live)  # as the first bot does
    try:
        assert main(["--config", str(write_config(tmp_path, live)), "--console"]) == 2
    finally:
        held.release()
    assert capsys.readouterr().err == (f"error: {live} is in use by another bot process "
                                       f"(pid {os.getpid()})\n")
    assert not live.exists()


async def test_an_unusable_lock_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bot.sqlite3.lock").mkdir()  # as unusable as one left owned by root
    with pytest.raises(DatabaseError, match="cannot open the lock file"):
        await TestBot(test_config(tmp_path / "bot.sqlite3")).start()


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


# -- item 5: an erasure that whoever holds the file could undo ----------------------------

TIP = "Jean Dupont 0611223344 a vu le fourgon"


async def broadcast(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte cambriolage Vesoul pour commercant : Vitrine forcée")
    number = await bot.core.services.db.fetchval("SELECT max(id) FROM alerts")
    await bot.say(OFFICER, f"/valider {number}", chat=OFFICERS)
    await bot.drain()


async def send_tips(bot: TestBot, who: str) -> None:
    await bot.press(who, "information")
    await bot.say(who, TIP)
    await bot.press(who, "information")
    await bot.share_location(who, 47.6236, 6.1550)


def raw_bytes(database: Path) -> bytes:
    """The database as a thief of the disk would read it: every file, every page."""
    files = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-journal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


async def test_erasure_leaves_nothing_in_the_files_of_the_database(tmp_path: Path) -> None:
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    try:
        await bot.enroll(ALICE, "commercant", "Vesoul")
        await broadcast(bot)
        await send_tips(bot, ALICE)
        database = Path(bot.config.database)
        assert b"987654321" in raw_bytes(database) and b"0611223344" in raw_bytes(database)
        await bot.say(ALICE, "/stop")
        assert "désinscrit" in await bot.press(ALICE, "Oui")
        found = raw_bytes(database)
        assert b"987654321" not in found, "the chat id is still in the database files"
        assert b"0611223344" not in found and b"Dupont" not in found, "the tip is still there"
        tips = await bot.core.services.db.fetchall("SELECT body, latitude FROM tips")
        assert [tuple(row) for row in tips] == [("", None), ("", None)]
    finally:
        await bot.stop()


async def test_the_retention_purge_leaves_nothing_in_the_files_either(tmp_path: Path) -> None:
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    try:
        await bot.enroll(ALICE, "commercant", "Vesoul")
        await broadcast(bot)
        await send_tips(bot, ALICE)
        await bot.core.services.stores.subscribers.set_status_by_chat(
            "telegram", "987654321", "blocked", bot.clock.now())
        bot.advance(days=31)
        assert (await bot.core.core.purge())["blocked"] == 1
        found = raw_bytes(Path(bot.config.database))
        assert b"987654321" not in found and b"0611223344" not in found
    finally:
        await bot.stop()


def stored_text(database: Path) -> set[str]:
    """Every text value of every table: all an attacker holding the file could try."""
    values: set[str] = set()
    with closing(sqlite3.connect(database)) as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in db.execute(f'SELECT * FROM "{table}"'):
                values.update(value for value in row if isinstance(value, str))
    return values


async def test_the_audit_pseudonym_cannot_be_recomputed_from_the_database(
        tmp_path: Path) -> None:
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    try:
        await bot.enroll(ALICE, "commercant", "Vesoul")
        await bot.say(ALICE, "/alerte vol Vesoul : x")  # refused and audited
        actors = {row[0] for row in await bot.core.services.db.fetchall(
            "SELECT actor FROM audit_events WHERE actor LIKE 'pseudo:%'")}
    finally:
        await bot.stop()
    assert len(actors) == 1
    (pseudonym,) = actors
    for value in stored_text(tmp_path / "bot.sqlite3"):  # the old scheme: salt in `meta`
        assert "pseudo:" + hashlib.sha256(f"{value}:{ALICE}".encode()).hexdigest()[:12] \
            != pseudonym, "the pseudonym's salt is in the database"
    for value in stored_text(tmp_path / "bot.sqlite3"):
        assert Keys.from_secret(value).pseudonym_of(ALICE) != pseudonym


@pytest.fixture
def secure_delete_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own default is off (Debian builds turn it on at compile time): play it."""
    real_connect = aiosqlite.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        async def opened() -> aiosqlite.Connection:
            connection = await real_connect(*args, **kwargs)
            await connection.execute("PRAGMA secure_delete = OFF")
            return connection
        return opened()

    monkeypatch.setattr(aiosqlite, "connect", connect)


@pytest.mark.usefixtures("secure_delete_off_by_default")
async def test_erased_rows_are_zeroed_whatever_sqlite_defaults_to(tmp_path: Path) -> None:
    await test_erasure_leaves_nothing_in_the_files_of_the_database(tmp_path)


KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("platform", ["telegram:\n  enabled: true\n  token: t\n",
                                      "matrix:\n  enabled: true\n  homeserver: https://m\n"
                                      "  user_id: '@b:m'\n  access_token: x\n"])
def test_a_platform_without_a_secret_key_is_refused(tmp_path: Path, platform: str) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text('secret_key: "${ALERTE_BOT_SECRET_KEY:-}"\n' + platform, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, {})
    assert str(refused.value) == (
        f"{path}: secret_key: required when telegram, matrix or whatsapp is enabled (set "
        "ALERTE_BOT_SECRET_KEY; generate one: openssl rand -hex 32)")
    with pytest.raises(ConfigError, match="at least 32"):
        load_config(path, {"ALERTE_BOT_SECRET_KEY": "short"})
    config = load_config(path, {"ALERTE_BOT_SECRET_KEY": KEY})
    assert config.secret_key == KEY and KEY in logs.secrets_of(config)


async def test_the_keys_holder_alone_recomputes_a_pseudonym(tmp_path: Path) -> None:
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3", secret_key=KEY)).start()
    try:
        await bot.say(ALICE, "/alerte vol Vesoul : x")  # refused and audited
        actor = await bot.core.services.db.fetchval(
            "SELECT actor FROM audit_events WHERE action = 'command.refused'")
    finally:
        await bot.stop()
    assert actor == Keys.from_secret(KEY).pseudonym_of(ALICE)
    assert actor != Keys.from_secret(KEY[::-1]).pseudonym_of(ALICE)
    assert actor != Keys.of(test_config(tmp_path / "x")).pseudonym_of(ALICE)  # development


async def test_rows_deleted_before_secure_delete_are_scrubbed_once(tmp_path: Path) -> None:
    """A database of version 7 erased people without secure_delete: the first start after
    migration 0008 rewrites the file, so their ids leave its free pages."""
    folder = tmp_path / "upto-0007"
    folder.mkdir()
    for file in sorted(MIGRATIONS_DIR.glob("*.sql"))[:7]:
        shutil.copy(file, folder / file.name)
    path = tmp_path / "bot.sqlite3"
    old = await Database.open(path, folder)
    await old.execute("PRAGMA secure_delete = OFF")  # as before
    await old.execute("INSERT INTO meta VALUES ('pseudonym_salt', 'cafe0123')")
    for user in range(200):
        await old.insert(SUBSCRIBER, ("telegram", f"98765{user:04}", f"98765{user:04}"))
    await old.execute("DELETE FROM subscribers")
    await old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await old.close()
    erased_ids = re.compile(rb"98765\d{4}")
    assert erased_ids.search(raw_bytes(path)) and b"cafe0123" in raw_bytes(path)
    bot = await TestBot(test_config(path)).start()
    await bot.stop()
    assert not erased_ids.search(raw_bytes(path)) and b"cafe0123" not in raw_bytes(path)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT key FROM meta").fetchall() == [("audit_key",)]


async def test_a_new_database_asks_for_no_rewrite(tmp_path: Path) -> None:
    """Written with secure_delete from its first row, a new database has nothing in its
    free pages to scrub: no VACUUM at the first start (a large import would pay it)."""
    db = await Database.open(tmp_path / "bot.sqlite3")
    try:
        assert await db.fetchall("SELECT key FROM meta WHERE key = 'vacuum_pending'") == []
    finally:
        await db.close()


# -- item 6: an audit chain that the database file alone cannot rewrite --------------------

async def audited_database(tmp_path: Path, secret: str = KEY) -> Path:
    """A database whose trail has a few events: subscribers' refusals and staff actions."""
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3", secret_key=secret)).start()
    try:
        await bot.enroll(ALICE, "commercant", "Vesoul")
        await broadcast(bot)
        await bot.say(ALICE, "/alerte vol Vesoul : x")
        await bot.say("telegram:5", "/valider 1", chat=OFFICERS)
    finally:
        await bot.stop()
    return tmp_path / "bot.sqlite3"


def verify(tmp_path: Path, capsys: pytest.CaptureFixture[str],
           secret: str = KEY) -> tuple[int, str]:
    config = write_config(tmp_path, tmp_path / "bot.sqlite3", f"secret_key: {secret}\n")
    code = main(["--config", str(config), "audit", "verify"])
    captured = capsys.readouterr()
    assert len((captured.out + captured.err).strip().splitlines()) == 1, captured
    return code, (captured.out + captured.err).strip()


def rewrite(database: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    with closing(sqlite3.connect(database)) as db:
        db.execute(sql, params)
        db.commit()


def rechain(database: Path, link: Callable[[str, tuple[Any, ...]], str], after: int = 0) -> None:
    """What someone holding the file would do after an edit: recompute every hash."""
    with closing(sqlite3.connect(database)) as db:
        previous = ""
        for row in db.execute("SELECT id, at, actor, action, alert_id, detail FROM audit_events"
                              " WHERE id > ? ORDER BY id", (after,)).fetchall():
            digest = link(previous, tuple(row[1:]))
            db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
                       (previous, digest, row[0]))
            previous = digest
        db.commit()


def sha256_link(previous: str, content: tuple[Any, ...]) -> str:
    canonical = json.dumps([previous, *content], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hmac_link(key: bytes) -> Callable[[str, tuple[Any, ...]], str]:
    def link(previous: str, content: tuple[Any, ...]) -> str:
        canonical = json.dumps([previous, *content], ensure_ascii=False, separators=(",", ":"))
        return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
    return link


def test_the_untouched_chain_verifies(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    database = asyncio.run(audited_database(tmp_path))
    with closing(sqlite3.connect(database)) as db:
        count, head = db.execute("SELECT count(*), (SELECT hash FROM audit_events ORDER BY id"
                                 " DESC LIMIT 1) FROM audit_events").fetchone()
    assert count >= 4
    assert verify(tmp_path, capsys) == (0, f"audit chain intact: {count} events, last hash "
                                           f"{head}")


def test_a_blanked_chain_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = asyncio.run(audited_database(tmp_path))
    rewrite(database, "UPDATE audit_events SET hash = '', prev_hash = ''")
    code, line = verify(tmp_path, capsys)
    assert code == 1
    assert line.startswith("audit chain BROKEN at event 1 (after 0 intact events)"), line


@pytest.mark.parametrize("recomputed_with", ["sha256", "another key", "development key"])
def test_a_chain_recomputed_without_the_key_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], recomputed_with: str) -> None:
    database = asyncio.run(audited_database(tmp_path))
    rewrite(database, "UPDATE audit_events SET detail = '{}' WHERE id = 2")
    if recomputed_with == "sha256":  # the chain before the key: the code is public
        rechain(database, sha256_link)
    elif recomputed_with == "another key":
        rechain(database, hmac_link(b"guessed key"))
    else:
        rechain(database, hmac_link(Keys.from_secret(DEVELOPMENT_SECRET).audit))
    code, line = verify(tmp_path, capsys)
    assert (code, line.split(" (")[0]) == (1, "audit chain BROKEN at event 1")


def test_a_chain_stripped_of_its_key_check_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = asyncio.run(audited_database(tmp_path))
    rewrite(database, "DELETE FROM meta WHERE key = 'audit_key'")
    rechain(database, sha256_link)  # as a database of before the key
    code, line = verify(tmp_path, capsys)
    assert code == 1 and "not signed with the secret key" in line, line


async def test_a_bot_with_another_key_is_refused(tmp_path: Path) -> None:
    await audited_database(tmp_path)
    with pytest.raises(DatabaseError, match="signed with another secret key"):
        await TestBot(test_config(tmp_path / "bot.sqlite3", secret_key=KEY[::-1])).start()
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3", secret_key=KEY)).start()
    await bot.stop()  # the refused one let go of the database


async def version_7_trail(tmp_path: Path) -> None:
    """Version 7: events before migration 0003 have no hash, later ones a plain SHA-256."""
    folder = tmp_path / "upto-0007"
    folder.mkdir()
    for file in sorted(MIGRATIONS_DIR.glob("*.sql"))[:7]:
        shutil.copy(file, folder / file.name)
    old = await Database.open(tmp_path / "bot.sqlite3", folder)
    for number in range(5):
        await old.execute("INSERT INTO audit_events (at, actor, action, detail) VALUES"
                          " ('2026-01-01T00:00:00+00:00', 'telegram:100', 'old', ?)",
                          (f'{{"n": {number}}}',))
    await old.close()
    rechain(tmp_path / "bot.sqlite3", sha256_link, after=2)  # 1, 2: before the chain existed
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3", secret_key=KEY)).start()
    await bot.stop()


def test_an_existing_chain_is_signed_once_at_the_upgrade(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(version_7_trail(tmp_path))
    assert "audit: the trail's 5 events are now signed with the secret key" in caplog.text
    assert verify(tmp_path, capsys)[0] == 0
    with closing(sqlite3.connect(tmp_path / "bot.sqlite3")) as db:
        signed = db.execute("SELECT detail FROM audit_events WHERE action ="
                            " 'audit.chain_signed'").fetchall()
    assert [json.loads(row[0]) for row in signed] == [
        {"events": 5, "previous": "sha256", "broken_at": None}]


async def test_the_head_of_the_chain_goes_to_the_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3", secret_key=KEY)).start()
    try:
        assert bot.core.scheduler.get_job("audit_head") is not None  # daily
        await bot.say(ALICE, "/alerte vol Vesoul : x")
        head = await bot.core.services.stores.audit.last_hash()
    finally:
        await bot.stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit: ")]
    assert lines == ["audit: 0 events, head -", f"audit: 1 events, head {head}"]


async def test_a_backup_into_a_folder_is_named_after_the_head(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = await audited_database(tmp_path)
    with closing(sqlite3.connect(database)) as db:
        head = db.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()[0]
    (tmp_path / "backups").mkdir()
    capsys.readouterr()
    assert backup(test_config(database), tmp_path / "backups") == 0
    (written,) = (tmp_path / "backups").iterdir()
    assert re.fullmatch(rf"bot-\d{{8}}-\d{{4}}-{head[:12]}\.sqlite3", written.name), written
    assert f"audit head {head}" in capsys.readouterr().out
    assert backup(test_config(database), tmp_path / "named.sqlite3") == 0
    assert f"audit head {head}" in capsys.readouterr().out
