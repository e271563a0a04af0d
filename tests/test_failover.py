"""Leader and standby on one PostgreSQL database (issue 18): the real bot processes.

Two ``run_bot.py`` processes share the database; one leads (the advisory lock), the other
answers /healthz as standby. The leader is killed with SIGKILL in the middle of a broadcast
on the Bot API double: the standby takes over and finishes it, nobody lost, duplicates
within the dead leader's in-flight window, never a 429. The timings are the benchmark's
(make bench), not asserted here.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.botproc import BotProcess, bot_config, query
from benchmarks.telegram import failover
from tests import postgres
from tests.telegram_double import TelegramDouble

pytestmark = [pytest.mark.postgresql,
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]


@pytest.fixture
def database(postgresql_server: str) -> Iterator[str]:
    databases = postgres.Databases(postgresql_server)
    yield databases.empty()
    databases.drop_all()


async def test_the_standby_finishes_the_broadcast_of_a_killed_leader(
        tmp_path: Path, database: str) -> None:
    found = await failover(tmp_path, 400, database, rate=200.0, in_flight=16, kill_at=0.3)
    assert found["killed_after"] < 400, "the leader was killed before the end"
    assert found["lost"] == 0
    assert found["duplicates"] <= found["bound"]
    assert found["count_429"] == 0
    assert found["resumed_s"] is not None
    assert found["report"].get("sent") == 400, found["report"]
    rows = query(database, "SELECT status, count(*) FROM deliveries GROUP BY status")
    assert dict(rows) == {"sent": 400}


def healthz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        return dict(json.loads(answer.read()))


async def test_one_leads_the_other_stands_by_and_takes_over_a_clean_stop(
        tmp_path: Path, database: str) -> None:
    async with TelegramDouble("123456:bench-token", "alerte_bench_bot") as double:
        processes = []
        for name, port in (("a", postgres._free_port()), ("b", postgres._free_port())):
            config = bot_config(tmp_path / name, double.base_url, rate=30, paid=False,
                                extra={"monitoring": {"listen": f"127.0.0.1:{port}"}})
            config["database"] = database
            processes.append((BotProcess(tmp_path / name, config), port))
        (first, first_port), (second, second_port) = processes
        try:
            await first.start()
            await until(lambda: "this process leads" in first.log_text())
            await second.start()
            await until(lambda: "stands by" in second.log_text())
            await until_healthy(second_port, "standby")
            await until_healthy(first_port, "ok")
            await first.stop()  # SIGTERM: the lock is released at once
            await until(lambda: "this process leads" in second.log_text())
            await until_healthy(second_port, "ok")
        finally:
            await first.stop()
            await second.stop()


async def until(check: object, timeout: float = 60.0) -> None:
    assert callable(check)
    for _ in range(int(timeout / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not within the time allowed")


async def until_healthy(port: int, status: str) -> None:
    def answered() -> bool:
        try:
            return healthz(port).get("status") == status
        except OSError:
            return False
    for _ in range(300):
        if await asyncio.to_thread(answered):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/healthz on {port} never said {status}")
