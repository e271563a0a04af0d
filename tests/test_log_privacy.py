"""Logs name alerts and platforms, never a person, at INFO and above (docs/data-register.md).

Each test plays what produces log lines — a whole session on the memory transports, a
Telegram transport meeting 429s and refusals, a Matrix transport meeting invitations,
kicks and failures — and looks for the people's ids in every record at INFO or above.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import nio
import pytest

from bot.config import MatrixConfig, TelegramConfig
from bot.domain import CommandMenu, Incoming, Outgoing
from bot.storage.transport_state import TransportState
from bot.transports.base import RateLimited, RecipientGone, TransientError
from bot.transports.matrix import MatrixTransport
from bot.transports.matrix_errors import delivery_error
from bot.transports.matrix_events import heard_from
from bot.transports.telegram import TelegramTransport
from tests.harness import OFFICERS, TestBot
from tests.telegram_double import RateLimits, TelegramDouble

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

OPERATOR, OFFICER = "telegram:100", "telegram:200"
TELEGRAM_USER = 4242424242
MATRIX_USER, MATRIX_DM, MATRIX_BOT = "@alice:private.example", "!dm-alice:test", "@bot:test"
PERSONAL = (str(TELEGRAM_USER), MATRIX_USER, MATRIX_DM)


def leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Records at INFO or above, traceback included, that name one of the people."""
    found = []
    for record in caplog.records:
        if record.levelno < logging.INFO:
            continue
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if any(person in text for person in PERSONAL):
            found.append(f"{record.levelname} {record.name}: {text}")
    return found


async def test_a_whole_session_logs_no_person(bot: TestBot,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    telegram, matrix = f"telegram:{TELEGRAM_USER}", f"matrix:{MATRIX_USER}"
    await bot.enroll(telegram, "commercant", "Vesoul")
    await bot.enroll(matrix, "commercant", "Vesoul")
    await bot.say(OPERATOR, "/alerte cambriolage Vesoul pour commercant : Vitrine forcée")
    bot.transports["matrix"].failures[MATRIX_USER].append(
        RecipientGone("M_FORBIDDEN: not in room"))
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    await bot.press(telegram, "Reçu")
    await bot.press(telegram, "information")
    await bot.say(telegram, "Fourgon blanc rue Carnot")
    bot.transports["telegram"].failures[str(TELEGRAM_USER)].append(
        TransientError("Bad Gateway (502)"))
    await bot.say(OFFICER, "/repondre 1 Merci", chat=OFFICERS)  # the answer fails to arrive
    await bot.say(telegram, "/mesdonnees")
    assert caplog.records, "the session should have logged something"
    assert leaks(caplog) == []


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    limits = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)
    async with TelegramDouble("123456:log-token", "alerte_log_bot", limits=limits) as running:
        running.user(TELEGRAM_USER, "Alice")
        running.group(-20, "Officiers", members=[TELEGRAM_USER])
        yield running


async def test_telegram_429_and_refusals_log_no_private_chat(
        double: TelegramDouble, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    transport = TelegramTransport(TelegramConfig(
        enabled=True, token="123456:log-token", base_url=double.base_url,
        base_file_url=double.base_file_url, officers_chat_id=-20, poll_timeout=1))

    async def ignore(incoming: Incoming) -> None:
        pass

    await transport.start(ignore)
    try:
        double.configure_limits(private_burst=1, jitter_allowance=0)
        await transport.send(str(TELEGRAM_USER), Outgoing("un"))
        with pytest.raises(RateLimited):  # this chat's own limit
            await transport.send(str(TELEGRAM_USER), Outgoing("deux"))
        double.configure_limits(private_burst=1_000)
        double.inject_rate_limits(retry_after=3)
        with pytest.raises(RateLimited):  # the whole bot's limit
            await transport.send(str(TELEGRAM_USER), Outgoing("trois"))
        long_id = await transport.send(str(TELEGRAM_USER), Outgoing("x\n" * 3000))
        double.fail_next(2, methods=["deleteMessage", "setMyCommands"])
        await transport.edit(str(TELEGRAM_USER), long_id, Outgoing("court"))  # drops part 2
        await transport.publish_commands([CommandMenu(f"telegram:{TELEGRAM_USER}",
                                                      (("aide", "les commandes"),))])
    finally:
        await transport.stop()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("bot.")]
    assert any("429" in m for m in messages) and any("menu" in m for m in messages), messages
    assert any("could not delete" in m for m in messages), messages
    assert leaks(caplog) == []


async def test_matrix_membership_and_failures_log_no_person(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    transport = MatrixTransport(MatrixConfig(user_id=MATRIX_BOT, officers_room="!off:test"),
                                cast(TransportState, None), lambda _: False)
    transport.rooms.set_direct({MATRIX_USER: [MATRIX_DM]})

    async def broken_core(incoming: Incoming) -> None:
        raise RuntimeError("the core broke")

    transport._on_incoming = broken_core
    invite: list[Any] = [
        type("State", (), {"state_key": MATRIX_BOT, "sender": MATRIX_USER,
                           "content": {"membership": "invite"}})()]
    transport._consider_invite("!club-alice:test", invite)  # not a DM, not an admin: declined
    kicked = heard_from({"type": "m.room.member", "state_key": MATRIX_BOT, "sender": MATRIX_USER,
                         "content": {"membership": "leave"},
                         "unsigned": {"prev_content": {"membership": "join"}}}, MATRIX_BOT)
    assert kicked is not None
    await transport._on_heard(MATRIX_DM, kicked)  # the person left: the core fails on it
    refusal = f"User {MATRIX_BOT} not in room {MATRIX_DM}"  # Synapse's own words

    async def forbidden() -> Any:
        return nio.JoinError(refusal, "M_FORBIDDEN")

    await transport._patiently(f"join {transport._in_logs(MATRIX_DM)}", forbidden)
    gone = delivery_error(SimpleNamespace(status_code="M_FORBIDDEN", message=refusal,
                                          transport_response=SimpleNamespace(status=403)))
    assert str(gone) == "M_FORBIDDEN: User <id> not in room <id>"  # logged, and kept in the
    # delivery's last_error, which erasure does not touch
    messages = [r.getMessage() for r in caplog.records]
    assert any("declining" in m for m in messages) and any("removed" in m for m in messages)
    assert any("failed" in m for m in messages), messages
    assert leaks(caplog) == []
