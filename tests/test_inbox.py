"""The inbox and the reply outbox (issue 13): each event once, its replies at least once."""

from __future__ import annotations

import dataclasses

import pytest

from bot.broadcast.replies import Post, decode, encode
from bot.domain import Attachment, ChatRef, Choice, DeleteTracked, EditTracked, Outgoing, Tone
from bot.transports.base import RateLimited, RecipientGone, TransientError
from tests.harness import TestBot

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALERT = "/alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée"


async def alerts(bot: TestBot) -> int:
    return int(await bot.core.services.db.fetchval("SELECT count(*) FROM alerts"))


async def test_a_replayed_event_is_skipped(bot: TestBot) -> None:
    incoming = bot._incoming(OPERATOR, None, text=ALERT)
    assert "Alerte n°1" in "\n".join(m.text for m in await bot.send(incoming))
    assert await bot.send(incoming) == []  # the same update_id again: nothing, no reply
    assert await alerts(bot) == 1
    other = dataclasses.replace(incoming, chat=ChatRef("matrix", "100"), event_id="1")
    assert await bot.send(other) != []  # ids are per platform


async def test_a_failing_handler_changes_nothing_and_apologises_once(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    async def half_then_fail(*args: object) -> None:
        await bot.core.services.db.execute(
            "INSERT INTO meta (key, value) VALUES ('half', 'written')")
        raise RuntimeError("boom")

    registry = bot.core.core.router.registry
    command = registry.find("alerte")
    assert command is not None
    monkeypatch.setitem(registry._by_name, "alerte",
                        dataclasses.replace(command, handler=half_then_fail))
    incoming = bot._incoming(OPERATOR, None, text=ALERT)
    assert "erreur" in "\n".join(m.text for m in await bot.send(incoming)).lower()
    assert await bot.core.services.db.fetchval("SELECT value FROM meta WHERE key = 'half'") \
        is None
    assert await bot.send(incoming) == []  # recorded: a replay does not fail again


async def test_replies_left_unsent_go_at_the_next_start(bot: TestBot) -> None:
    telegram = bot.transports["telegram"]
    telegram.failures["100"] = [TransientError("network down")]
    await bot.say(OPERATOR, ALERT)
    assert bot.inbox(OPERATOR) == []  # the preview waits in the reply outbox
    await bot.restart()
    bot.advance(seconds=2)  # the retry's back-off
    await bot.core.core.replies.flush()  # what the sender's loop does in the background
    assert any("Alerte n°1" in text for text in bot.inbox(OPERATOR))
    assert await alerts(bot) == 1


async def test_a_rate_limited_reply_waits_and_then_goes(bot: TestBot) -> None:
    telegram = bot.transports["telegram"]
    telegram.failures["100"] = [RateLimited(3)]
    await bot.say(OPERATOR, "/aide")
    assert bot.inbox(OPERATOR) == []
    bot.advance(seconds=3)
    await bot.core.core.replies.flush()
    assert "Commandes" in bot.inbox(OPERATOR)[0]
    sent = await bot.core.services.db.fetchall("SELECT status, effect FROM replies")
    assert [tuple(row) for row in sent] == [("sent", None)]  # the text is not kept


def test_effects_survive_the_round_trip() -> None:
    message = Outgoing("texte", "<b>texte</b>", (Choice("Oui", "c:1:oui"),), Tone.PROTECTED,
                       "42", Attachment("carte.png", "image/png", b"\x89PNG\x00"))
    for stored in (Post(ChatRef("telegram", "-100"), message, ("request", 7)),
                   EditTracked("request", 7, message), DeleteTracked("progress", 3)):
        assert decode(encode(stored)) == stored


async def test_a_reply_to_a_gone_recipient_is_given_up_at_once(bot: TestBot) -> None:
    bot.transports["telegram"].failures["100"] = [RecipientGone("blocked")]
    await bot.say(OPERATOR, "/aide")
    rows = await bot.core.services.db.fetchall("SELECT status, attempts, effect FROM replies")
    assert [tuple(row) for row in rows] == [("failed", 1, None)]
