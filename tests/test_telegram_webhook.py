"""Webhook mode: the real bot and TelegramTransport, updates pushed by the Bot API double.

The double POSTs each update to the bot's aiohttp server (``telegram_webhook``) with the
secret header, as Telegram does; the bot never calls getUpdates. Requests that Telegram
would never send (no secret, a huge or broken body) are refused before reaching the core.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from bot.config import Config, ConfigError, TelegramConfig
from bot.domain import Incoming
from bot.transports.telegram import check_config
from bot.transports.telegram_updates import ALLOWED_UPDATES
from bot.transports.telegram_webhook import SECRET_HEADER
from tests.telegram_double import TelegramDouble
from tests.test_telegram_e2e import (
    ALICE,
    BOB,
    BOT_NAME,
    LOOSE,
    TOKEN,
    Telegram,
    e2e_config,
    eventually,
    populate,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

SECRET = "s3cret_Webhook-token"
PATH = "/telegram/hook-7f3a"


def free_port() -> int:
    """A port nobody listens on: bound to 0, read, released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_config(database: Path, double: TelegramDouble, port: int, **changes: object) -> Config:
    config = e2e_config(database, double)
    telegram = replace(config.telegram, mode="webhook", webhook_listen="127.0.0.1",
                       webhook_port=port, webhook_url=f"http://127.0.0.1:{port}{PATH}",
                       webhook_secret=SECRET, **changes)  # type: ignore[arg-type]
    return replace(config, telegram=telegram)


def start_update(update_id: int, user: int = ALICE) -> dict[str, object]:
    """A /start from ``user`` in its private chat, shaped as Telegram sends it."""
    person = {"id": user, "is_bot": False, "first_name": "Alice"}
    return {"update_id": update_id, "message": {
        "message_id": 90_000 + update_id, "date": 1_700_000_000, "from": person,
        "chat": {"id": user, "type": "private", "first_name": "Alice"}, "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(TOKEN, BOT_NAME, limits=LOOSE) as running:
        populate(running)
        yield running


@pytest.fixture
async def hooked(tmp_path: Path, double: TelegramDouble) -> AsyncIterator[Telegram]:
    """The bot in webhook mode on a free loopback port."""
    config = webhook_config(tmp_path / "bot.sqlite3", double, free_port())
    running = await Telegram(double, config).start()
    try:
        yield running
    finally:
        await running.stop()


async def post(tg: Telegram, body: bytes, secret: str | None = SECRET, path: str = PATH,
               method: str = "POST") -> int:
    """A raw request to the bot's webhook server; returns the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    url = f"http://127.0.0.1:{tg.config.telegram.webhook_port}{path}"
    async with aiohttp.ClientSession() as session, \
            session.request(method, url, data=body, headers=headers) as response:
        return response.status


# -- the whole job by webhook ----------------------------------------------------------------


async def test_enrollment_and_approved_alert_by_webhook(hooked: Telegram) -> None:
    webhook = hooked.double.webhook
    assert webhook is not None and webhook["url"] == hooked.config.telegram.webhook_url
    assert webhook["secret_token"] == SECRET and webhook["max_connections"] == 40
    assert webhook["allowed_updates"] == list(ALLOWED_UPDATES)
    assert webhook["drop_pending_updates"] is False
    await hooked.enroll(ALICE, "commercant")
    await hooked.enroll(BOB, "agriculteur")
    request = await hooked.request()
    assert "validée" in await hooked.approve(request, expect="validée")
    assert "1 envoyé, 0 échec, 0 bloqué sur 1" in await hooked.report()
    assert len(hooked.delivered(ALICE, "Vitrine forcée rue Carnot")) == 1
    assert hooked.delivered(BOB, "Vitrine") == []
    stats = hooked.double.stats
    assert stats.requests["getupdates"] == 0 and stats.requests["setwebhook"] == 1
    assert stats.webhook_posts[200] >= 15 and set(stats.webhook_posts) == {200}
    assert stats.requests["deletewebhook"] == 0
    assert hooked.double.pending_updates == []


async def test_updates_written_while_the_bot_is_down_are_pushed_at_restart(
        tmp_path: Path, double: TelegramDouble) -> None:
    config = webhook_config(tmp_path / "bot.sqlite3", double, free_port())
    first = await Telegram(double, config).start()
    await first.stop()
    assert double.webhook is not None  # kept at stop: Telegram holds the updates meanwhile
    sent = await double.send_text(ALICE, "/start")

    async def refused() -> bool:
        return double.stats.webhook_posts[0] > 0

    await eventually(refused)  # the double met a closed port and will retry
    again = await Telegram(double, config).start()
    try:
        assert "Acceptez" in await again.next_text(ALICE, "Acceptez", after=sent["message_id"])
    finally:
        await again.stop()
    assert double.stats.requests["getupdates"] == 0


# -- what the webhook server refuses ----------------------------------------------------------


async def test_missing_or_wrong_secret_is_403_and_nothing_is_handled(hooked: Telegram) -> None:
    mark = hooked.mark(ALICE)
    body = json.dumps(start_update(70_001)).encode()
    assert await post(hooked, body, secret=None) == 403
    assert await post(hooked, body, secret="s3cret_Webhook-tokeN") == 403
    assert await post(hooked, body, secret="") == 403
    assert await post(hooked, body, secret=SECRET + "x") == 403
    assert await hooked.since(ALICE, mark) == []
    # The same request with the secret is handled: the 403s were for the secret alone.
    assert await post(hooked, json.dumps(start_update(70_002)).encode()) == 200
    assert "Acceptez" in await hooked.next_text(ALICE, "Acceptez", after=mark)


async def test_oversized_body_is_413(hooked: Telegram) -> None:
    mark = hooked.mark(ALICE)
    update = start_update(70_003)
    limit = hooked.config.telegram.webhook_max_body_bytes
    assert limit == 1024 * 1024  # the default
    update["padding"] = "x" * limit
    assert await post(hooked, json.dumps(update).encode()) == 413
    # The secret is checked before the body is read: a stranger gets 403 whatever the size.
    assert await post(hooked, json.dumps(update).encode(), secret="wrong") == 403
    assert await hooked.since(ALICE, mark) == []


async def test_smaller_body_limit_from_the_config(tmp_path: Path, double: TelegramDouble) -> None:
    config = webhook_config(tmp_path / "bot.sqlite3", double, free_port(),
                            webhook_max_body_bytes=2_000)
    tg = await Telegram(double, config).start()
    try:
        small = json.dumps(start_update(70_004)).encode()
        assert len(small) < 2_000 and await post(tg, small) == 200
        assert await post(tg, small + b" " * 2_000) == 413
    finally:
        await tg.stop()


async def test_invalid_json_wrong_method_and_wrong_path(hooked: Telegram) -> None:
    mark = hooked.mark(ALICE)
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"", b"[" * 100_000,
                 b'{"message": {"text": "/start"}}', b'{"update_id": "1"}',
                 b'{"update_id": 70005, "message": "not a message"}'):
        assert await post(hooked, body) == 400, body[:40]
    assert await post(hooked, json.dumps(start_update(70_006)).encode(), method="GET") == 405
    assert await post(hooked, json.dumps(start_update(70_007)).encode(),
                      path="/telegram/other") == 404
    assert await hooked.since(ALICE, mark) == []


# -- back to polling ---------------------------------------------------------------------------


async def test_back_to_polling_deletes_the_webhook(tmp_path: Path,
                                                   double: TelegramDouble) -> None:
    hooked_config = webhook_config(tmp_path / "bot.sqlite3", double, free_port())
    hooked = await Telegram(double, hooked_config).start()
    await hooked.say(ALICE, "/aide", expect="Commandes disponibles")
    await hooked.stop()
    sent = await double.send_text(ALICE, "/start")  # while nobody listens
    polling = await Telegram(double, e2e_config(tmp_path / "bot.sqlite3", double)).start()
    try:
        assert double.webhook is None
        assert double.stats.requests["deletewebhook"] == 1
        # Pending updates survive the switch (drop_pending_updates=False) and now come
        # by getUpdates.
        assert "Acceptez" in await polling.next_text(ALICE, "Acceptez", after=sent["message_id"])
        assert "C'est fait" not in await polling.say(ALICE, "oui", expect="communautés")
        assert double.stats.requests["getupdates"] >= 1
    finally:
        await polling.stop()


# -- start-up ---------------------------------------------------------------------------------


async def test_a_port_in_use_is_a_clear_startup_error(tmp_path: Path,
                                                      double: TelegramDouble) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        tg = Telegram(double, webhook_config(tmp_path / "bot.sqlite3", double, port))
        with pytest.raises(ConfigError, match=r"telegram\.webhook_port: cannot listen on "):
            await tg.transport.start(_never)
    assert double.webhook is None  # Telegram is told only once the server listens


async def _never(incoming: Incoming) -> None:
    raise AssertionError("nothing should arrive")


def webhook(**changes: object) -> TelegramConfig:
    values: dict[str, object] = {"enabled": True, "token": TOKEN, "mode": "webhook",
                                 "webhook_url": "https://bot.example.gouv.fr/telegram/x",
                                 "webhook_secret": SECRET}
    values.update(changes)
    return TelegramConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", [
    "https://bot.example.gouv.fr/telegram/x", "https://203.0.113.7:8443/tg",
    "http://127.0.0.1:8443/tg", "http://localhost/tg", "http://[::1]:8443/tg",
    "http://127.0.0.2/tg"])
def test_check_config_accepts_https_and_loopback_http(url: str) -> None:
    check_config(webhook(webhook_url=url))


@pytest.mark.parametrize("url", [
    "http://bot.example.gouv.fr/telegram/x", "http://203.0.113.7/tg", "http://0.0.0.0/tg",
    "http://localhost.example.org/tg", "ftp://127.0.0.1/tg", "", "https:///tg",
    "bot.example.gouv.fr/tg", "http://[::1/tg"])
def test_check_config_refuses_http_beyond_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^telegram\.webhook_url: an https://"):
        check_config(webhook(webhook_url=url))


@pytest.mark.parametrize("secret", ["", "with space", "base64+/=", "é", "x" * 257, "a\n"])
def test_check_config_refuses_a_bad_secret(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"^telegram\.webhook_secret: 1 to 256 characters"):
        check_config(webhook(webhook_secret=secret))
    check_config(webhook(webhook_secret="A-z_09" + "x" * 250))


def test_check_config_refuses_a_bad_port_or_body_limit() -> None:
    with pytest.raises(ConfigError, match=r"^telegram\.webhook_port"):
        check_config(webhook(webhook_port=0))
    with pytest.raises(ConfigError, match=r"^telegram\.webhook_max_body_bytes"):
        check_config(webhook(webhook_max_body_bytes=0))
    check_config(webhook(mode="polling", webhook_url="", webhook_secret=""))
