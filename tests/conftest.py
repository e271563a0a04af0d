from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.harness import TestBot, test_config

pytest_plugins = ["tests.synapse.fixture"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend", choices=("sqlite", "postgresql"),
        default=os.environ.get("ALERTE_TEST_BACKEND", "sqlite"),
        help="the database every test's bot uses: SQLite files, or PostgreSQL (a throwaway"
             " server started for the run, or ALERTE_TEST_POSTGRESQL=postgresql://… to use one)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite's file itself"
                            " (its path, permissions, WAL, backups): not run on PostgreSQL")
    config.addinivalue_line("markers", "postgresql: needs a PostgreSQL server (started for the"
                            " run; skipped only when this machine has no PostgreSQL binaries)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--backend") != "postgresql":
        return
    skip = pytest.mark.skip(reason="about SQLite's own file: the SQLite run covers it")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgresql_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL server's URL for the run: ALERTE_TEST_POSTGRESQL, or a throwaway one."""
    given = os.environ.get("ALERTE_TEST_POSTGRESQL")
    if given:
        yield given
        return
    if postgres.binaries() is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on this machine:"
                    " apt-get install postgresql (make test and CI install and use them)")
    server = postgres.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """--backend postgresql: every test_config() names a PostgreSQL database of its own."""
    name = str(request.config.getoption("--backend"))
    if name != "postgresql":
        yield name
        return
    databases = postgres.Databases(request.getfixturevalue("postgresql_server"))
    databases.prepare_template()
    postgres.ACTIVE = databases
    try:
        yield name
    finally:
        postgres.ACTIVE = None
        databases.close()


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    if postgres.ACTIVE is not None:
        postgres.ACTIVE.drop_all()


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    """A started bot on memory transports; deliveries happen at ``await bot.drain()``."""
    test_bot = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    yield test_bot
    await test_bot.stop()
