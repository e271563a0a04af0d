"""The monitoring configuration, and Transport.connected: what the supervision
endpoints will read."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import pytest

from bot.config import ConfigError, MatrixConfig, MonitoringConfig, TelegramConfig, load_config
from bot.domain import Incoming
from bot.storage.transport_state import TransportState
from bot.transports.console import ConsoleTransport
from bot.transports.matrix import MatrixTransport
from bot.transports.memory import MemoryTransport
from bot.transports.telegram import TelegramTransport
from tests.telegram_double import TelegramDouble

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


async def test_telegram_is_connected_while_its_updater_runs() -> None:
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


