"""run_bot.py migrate-to-postgresql: a deployment's SQLite file copied into PostgreSQL, the
counts verified, the audit chain still verifying, and the bot serving on the copy."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.storage.database import DatabaseError
from bot.to_postgresql import migrate_to_postgresql
from tests import postgres
from tests.harness import OFFICERS, TestBot, test_config
from tests.test_lifecycle import ALERT

pytestmark = pytest.mark.postgresql
OPERATOR, OFFICER, ALICE, BOB = "telegram:100", "telegram:200", "telegram:1", "telegram:2"


@pytest.fixture
def databases(postgresql_server: str) -> Iterator[postgres.Databases]:
    found = postgres.Databases(postgresql_server)
    yield found
    found.drop_all()


async def deployment(tmp_path: Path) -> TestBot:
    """A bot on an SQLite file (whatever the suite's backend), with a little of everything."""
    config = dataclasses.replace(test_config(tmp_path / "bot.sqlite3"),
                                 database=str(tmp_path / "bot.sqlite3"))
    bot = await TestBot(config).start()
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll(BOB, "citoyen", "Gray")
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    await bot.press(ALICE, "Reçu")
    return bot


async def test_a_deployment_moves_to_postgresql_and_serves_from_there(
        tmp_path: Path, databases: postgres.Databases) -> None:
    bot = await deployment(tmp_path)
    await bot.stop()
    target = databases.empty()
    out = io.StringIO()
    assert await migrate_to_postgresql(bot.config, tmp_path / "bot.sqlite3", target, out) == 0
    report = out.getvalue()
    assert "counts verified, audit chain intact" in report, report
    assert "subscribers                           2 rows" in report
    bot.config = dataclasses.replace(bot.config, database=target)
    moved = await bot.start()  # the same people (platform event ids go on)
    try:
        assert "1 accusé de réception" in await moved.say(OPERATOR, "/journal 1")
        await moved.enroll("telegram:3", "citoyen", "Vesoul")  # new ids after the copied ones
        subscriber = await moved.core.services.stores.subscribers.get("telegram", "3")
        assert subscriber is not None and subscriber.id == 3
    finally:
        await moved.stop()


async def test_a_database_holding_data_is_refused(tmp_path: Path,
                                                  databases: postgres.Databases) -> None:
    bot = await deployment(tmp_path)
    await bot.stop()
    target = databases.empty()
    assert await migrate_to_postgresql(bot.config, tmp_path / "bot.sqlite3", target,
                                       io.StringIO()) == 0
    with pytest.raises(DatabaseError, match="already holds rows"):
        await migrate_to_postgresql(bot.config, tmp_path / "bot.sqlite3", target, io.StringIO())


def test_the_command_line_says_what_it_needs(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("database: bot.sqlite3\n")
    assert main(["--config", str(config), "migrate-to-postgresql"]) == 2
    assert "--to postgresql://" in capsys.readouterr().err
