"""Supervision endpoints (bot/monitoring.py, bot/metrics.py) and Transport.connected.

End to end: the bot app on memory transports with ``monitoring.listen`` on a loopback port
chosen by the system, read over HTTP as a probe or Prometheus would.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, MatrixConfig, MonitoringConfig, TelegramConfig, load_config
from bot.domain import Incoming
from bot.storage.transport_state import TransportState
from bot.transports.base import RateLimited, RecipientGone
from bot.transports.console import ConsoleTransport
from bot.transports.matrix import MatrixTransport
from bot.transports.memory import MemoryTransport
from bot.transports.telegram import TelegramTransport
from tests.harness import OFFICERS, TestBot, test_config
from tests.telegram_double import TelegramDouble

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée"
MAX_AGE = 300.0


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    monitoring = MonitoringConfig(listen="127.0.0.1:0", max_outbox_age_seconds=MAX_AGE)
    started = await TestBot(test_config(tmp_path / "bot.sqlite3", monitoring=monitoring)).start()
    yield started
    await started.stop()


async def get(bot: TestBot, path: str) -> tuple[int, str]:
    monitor = bot.core.monitor
    assert monitor is not None and monitor.port != 0
    return await fetch(monitor.port, path)


async def fetch(port: int, path: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
            f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def health(bot: TestBot) -> tuple[int, dict[str, Any]]:
    status, body = await get(bot, "/healthz")
    return status, json.loads(body)


def failing(report: dict[str, Any]) -> list[str]:
    return [name for name, check in report["checks"].items() if not check["ok"]]


async def approve_alert(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)


# --- /healthz ------------------------------------------------------------------------------


async def test_healthy_bot(bot: TestBot) -> None:
    status, report = await health(bot)
    assert status == 200
    assert report == {"status": "ok", "checks": {
        "database": {"ok": True},
        "transport:matrix": {"ok": True},
        "transport:telegram": {"ok": True},
        "outbox": {"ok": True, "oldest_due_seconds": 0.0, "backlog": 0,
                   "max_age_seconds": MAX_AGE}}}


@pytest.mark.sqlite_only  # another process locking the file
async def test_a_database_locked_by_another_process_fails_within_the_deadline(
        bot: TestBot) -> None:
    other = sqlite3.connect(bot.core.services.db.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        status, report = await health(bot)
        assert time.monotonic() - started < 5
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert status == 503 and report["status"] == "fail"
    assert failing(report) == ["database"]
    assert "locked by another process" in report["checks"]["database"]["error"]
    assert (await health(bot))[0] == 200  # the lock gone, the check passes again


@pytest.mark.sqlite_only  # the file removed under the bot
async def test_a_database_file_gone_while_running_fails(bot: TestBot) -> None:
    """The bot would go on writing to a file that no restart will ever open again."""
    Path(bot.core.services.db.path).unlink()
    status, report = await health(bot)
    assert status == 503 and failing(report) == ["database"]
    assert "cannot open the database file" in report["checks"]["database"]["error"]


async def test_an_outbox_row_due_too_long_fails(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("telegram:2", "commercant", "Vesoul")
    await approve_alert(bot)  # the dispatcher is held: the rows wait
    status, report = await health(bot)
    assert status == 200 and report["checks"]["outbox"]["backlog"] == 2
    bot.advance(seconds=MAX_AGE + 1)
    status, report = await health(bot)
    assert status == 503 and failing(report) == ["outbox"]
    assert report["checks"]["outbox"] == {"ok": False, "oldest_due_seconds": MAX_AGE + 1,
                                          "backlog": 2, "max_age_seconds": MAX_AGE}
    await bot.drain()
    assert (await health(bot))[0] == 200


async def test_a_row_waiting_for_its_retry_is_not_due(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    bot.transports["telegram"].failures["1"] = [RateLimited(MAX_AGE * 2, chat_only=True)]
    await approve_alert(bot)
    await bot.drain()
    bot.advance(seconds=MAX_AGE + 1)
    status, report = await health(bot)
    assert status == 200 and report["checks"]["outbox"]["backlog"] == 0


async def test_a_transport_not_connected_fails(bot: TestBot) -> None:
    await bot.transports["matrix"].stop()
    status, report = await health(bot)
    assert status == 503 and failing(report) == ["transport:matrix"]


async def test_other_paths_are_not_found(bot: TestBot) -> None:
    assert (await get(bot, "/"))[0] == 404


# --- /metrics ------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page: (name, labels) → value."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def test_metrics_after_a_broadcast(bot: TestBot) -> None:
    for user in ("1", "2", "3"):
        await bot.enroll(f"telegram:{user}", "commercant", "Vesoul")
    await bot.enroll("matrix:@bob:test", "commercant", "Vesoul")
    bot.transports["telegram"].failures["3"] = [RecipientGone("blocked")]
    await approve_alert(bot)
    status, text = await get(bot, "/metrics")
    found = samples(text)
    assert status == 200
    assert value(found, "alerte_outbox_due_rows", platform="telegram") == 3
    assert value(found, "alerte_alerts", state="broadcasting") == 1
    assert value(found, "alerte_first_copy_latency_seconds_count") == 0
    bot.advance(seconds=4)  # approval to first copy: the frozen clock says how long
    await bot.drain()
    bot.advance(seconds=1)
    await bot.drain()  # nothing left to send: no second observation
    found = samples((await get(bot, "/metrics"))[1])
    assert value(found, "alerte_deliveries_total", platform="telegram", outcome="sent") == 2
    assert value(found, "alerte_deliveries_total", platform="telegram", outcome="blocked") == 1
    assert value(found, "alerte_deliveries_total", platform="matrix", outcome="sent") == 1
    assert value(found, "alerte_first_copy_latency_seconds_count") == 1
    assert value(found, "alerte_first_copy_latency_seconds_sum") == 4
    assert value(found, "alerte_alerts", state="done") == 1
    assert value(found, "alerte_alerts", state="pending") == 0
    assert value(found, "alerte_outbox_due_rows", platform="telegram") == 0
    assert value(found, "alerte_outbox_oldest_due_seconds", platform="telegram") == 0
    assert value(found, "alerte_incoming_events_total", platform="telegram") > 20
    assert value(found, "alerte_handler_errors_total") == 0


async def test_handler_errors_are_counted(bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.core.core, "pipeline", broken)
    await bot.say("telegram:1", "/aide")
    found = samples((await get(bot, "/metrics"))[1])
    assert value(found, "alerte_handler_errors_total") == 1


async def test_replies_rate_limited_or_given_up_are_counted(bot: TestBot) -> None:
    telegram = bot.transports["telegram"]
    telegram.failures["1"] = [RecipientGone("bot was blocked by the user")]
    telegram.failures["2"] = [RateLimited(1, chat_only=True)]
    await bot.say("telegram:1", "/aide")
    await bot.say("telegram:2", "/aide")
    found = samples((await get(bot, "/metrics"))[1])
    assert value(found, "alerte_replies_dropped_total", platform="telegram", reason="gone") == 1
    assert value(found, "alerte_replies_rate_limited_total", platform="telegram") == 1
    bot.advance(seconds=1)
    await bot.core.core.replies.flush()  # the rate-limited one went: nothing more dropped
    found = samples((await get(bot, "/metrics"))[1])
    assert sum(v for (name, _), v in found.items() if name == "alerte_replies_dropped_total") == 1


async def test_two_bots_never_share_a_figure(bot: TestBot, tmp_path: Path) -> None:
    monitoring = MonitoringConfig(listen="127.0.0.1:0")
    other = await TestBot(test_config(tmp_path / "other.sqlite3",
                                      monitoring=monitoring)).start()
    try:
        await other.say("telegram:1", "/aide")
        mine = samples((await get(bot, "/metrics"))[1])
        assert value(mine, "alerte_incoming_events_total", platform="telegram") is None
    finally:
        await other.stop()


# --- starting and stopping ---------------------------------------------------------------


async def test_off_by_default(tmp_path: Path) -> None:
    quiet = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    try:
        assert quiet.core.monitor is None
    finally:
        await quiet.stop()


async def test_an_in_memory_database_is_read_on_the_bot_connection() -> None:
    config = test_config(Path(":memory:"), monitoring=MonitoringConfig(listen="127.0.0.1:0"))
    memory = await TestBot(config).start()
    try:
        status, report = await health(memory)
        assert status == 200 and report["checks"]["database"] == {"ok": True}
        assert value(samples((await get(memory, "/metrics"))[1]), "alerte_alerts",
                     state="done") == 0
    finally:
        await memory.stop()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


async def test_a_port_already_taken_is_one_clear_error(tmp_path: Path, taken_port: int) -> None:
    config = test_config(tmp_path / "bot.sqlite3",
                         monitoring=MonitoringConfig(listen=f"127.0.0.1:{taken_port}"))
    refused = TestBot(config)
    try:
        with pytest.raises(ConfigError, match=f"monitoring.listen: cannot listen on "
                                              f"127.0.0.1:{taken_port}"):
            await refused.start()
    finally:
        await refused.stop()  # what run() does: the database opened before the refusal


async def test_the_listener_closes_with_the_bot(bot: TestBot) -> None:
    monitor = bot.core.monitor
    assert monitor is not None
    await bot.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(monitor.port, "/healthz")


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("listen", "address"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0)),
    ("localhost:9464", ("localhost", 9464))])
def test_listen_addresses(listen: str, address: tuple[str, int]) -> None:
    assert MonitoringConfig(listen=listen).address() == address


@pytest.mark.parametrize("text", [
    "monitoring:\n  listen: '9464'\n", "monitoring:\n  listen: 'localhost:'\n",
    "monitoring:\n  listen: ':9464'\n", "monitoring:\n  listen: '127.0.0.1:99999'\n",
    "monitoring:\n  listen: '127.0.0.1:http'\n"])
def test_a_malformed_listen_address_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"monitoring\.listen: expected HOST:PORT"):
        load_config(path, {})


def test_defaults_and_threshold_check(tmp_path: Path) -> None:
    assert MonitoringConfig() == MonitoringConfig(listen="", max_outbox_age_seconds=300.0)
    path = tmp_path / "bot.yaml"
    path.write_text("monitoring:\n  max_outbox_age_seconds: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_outbox_age_seconds: must be more than 0"):
        load_config(path, {})


# --- Transport.connected ---------------------------------------------------------------------


async def ignore(_: Incoming) -> None:
    return None


async def test_console_and_memory_are_connected_while_started() -> None:
    for transport in (ConsoleTransport(output=lambda _: None), MemoryTransport()):
        assert not transport.connected
        await transport.start(ignore)
        assert transport.connected
        await transport.stop()
        assert not transport.connected


async def test_telegram_is_connected_while_its_polling_loop_runs() -> None:
    async with TelegramDouble("123456:monitoring-token", "alerte_test_bot") as double:
        config = TelegramConfig(enabled=True, token="123456:monitoring-token",
                                base_url=double.base_url, base_file_url=double.base_file_url,
                                poll_timeout=1)
        transport = TelegramTransport(config)
        assert not transport.connected
        await transport.start(ignore)
        try:
            assert transport.connected
        finally:
            await transport.stop()
        assert not transport.connected


async def test_matrix_is_connected_while_syncs_succeed() -> None:
    transport = MatrixTransport(MatrixConfig(user_id="@alertes:test"),
                                cast(TransportState, None), lambda _: False, sync_timeout_ms=1000)
    assert not transport.connected  # not started
    transport.client = object()
    assert not transport.connected  # started, first sync not done
    transport.ready.set()
    transport._synced_at = time.monotonic()
    assert transport.connected
    transport._synced_at = time.monotonic() - 1 - 60.5  # the long poll, then a minute: silence
    assert not transport.connected
    transport._synced_at = time.monotonic()
    transport._stopping = True
    assert not transport.connected




def test_without_monitoring_or_webhook_no_server_code_is_loaded() -> None:
    """prometheus_client and aiohttp's server are 2.7 MB of the bot's memory: a bot that
    polls Telegram (or syncs Matrix) without monitoring loads neither."""
    code = ("import sys, bot.main, bot.app, bot.transports.telegram, bot.transports.matrix; "
            "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', "
            "'aiohttp.web'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert loaded.stdout.strip() == "[]"
