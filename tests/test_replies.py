"""The reply outbox under the platform's budget (bot/broadcast/replies.py): rate limits wait
instead of losing replies, order per chat holds, and what is given up is logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.broadcast.replies import MAX_ATTEMPTS
from bot.domain import ChatRef, EditTracked, Effects, Notify, Outgoing, ToOfficers
from bot.enums import ReplyDrop
from bot.metrics import Metrics
from bot.transports.base import (
    ChatMoved,
    PermanentError,
    RateLimited,
    RecipientGone,
    TransientError,
)
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR = "telegram:100"
PERSON = ChatRef("telegram", "1")


class Counted(Metrics):
    def __init__(self) -> None:
        self.dropped: list[tuple[str, ReplyDrop]] = []
        self.limited: list[str] = []

    def reply_dropped(self, platform: str, reason: ReplyDrop) -> None:
        self.dropped.append((platform, reason))

    def reply_rate_limited(self, platform: str) -> None:
        self.limited.append(platform)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    started = await TestBot(test_config(tmp_path / "bot.sqlite3")).start()
    yield started
    await started.stop()


def counted(bot: TestBot) -> Counted:
    metrics = Counted()
    bot.core.core.replies.metrics = metrics
    return metrics


async def notify(bot: TestBot, *texts: str, chat: ChatRef = PERSON) -> None:
    await bot.core.core.runner.perform(Effects([Notify(chat, Outgoing(text)) for text in texts]))


async def rows(bot: TestBot) -> list[tuple[str, int]]:
    found = await bot.core.services.db.fetchall("SELECT status, attempts FROM replies ORDER BY id")
    return [(row[0], row[1]) for row in found]


async def test_replies_and_alert_copies_share_one_pacer_per_platform(bot: TestBot) -> None:
    core = bot.core.core
    assert core.replies.pacers.keys() == core.dispatcher.pacers.keys() == {"telegram", "matrix"}
    assert all(core.replies.pacers[p] is core.dispatcher.pacers[p] for p in core.replies.pacers)


async def test_a_reply_rate_limited_five_times_is_delivered_in_the_end(bot: TestBot) -> None:
    metrics = counted(bot)
    bot.transports["telegram"].failures["1"] = [RateLimited(2) for _ in range(5)]
    await notify(bot, "Votre alerte est validée")
    for _ in range(5):
        assert bot.inbox("telegram:1") == []
        bot.advance(seconds=2)
        await bot.core.core.replies.flush()
    assert bot.inbox("telegram:1") == ["Votre alerte est validée"]
    # Five 429s, not one attempt burnt: only the send that went counts.
    assert await rows(bot) == [("sent", 1)]
    assert metrics.limited == ["telegram"] * 5 and metrics.dropped == []


async def test_a_rate_limited_reply_pauses_the_platform_for_the_copies_too(
        bot: TestBot) -> None:
    bot.transports["telegram"].failures["1"] = [RateLimited(7)]  # the whole bot's limit
    await notify(bot, "Bienvenue")
    pacer = bot.core.core.dispatcher.pacers["telegram"]
    assert pacer.expected_wait("any other chat") == pytest.approx(7.0)


async def test_a_waiting_reply_holds_back_the_later_ones_to_its_chat_only(
        bot: TestBot) -> None:
    bot.transports["telegram"].failures["1"] = [RateLimited(3, chat_only=True)]
    await notify(bot, "premier", "deuxième")
    await notify(bot, "à quelqu'un d'autre", chat=ChatRef("telegram", "2"))
    assert bot.inbox("telegram:1") == [] and bot.inbox("telegram:2") == ["à quelqu'un d'autre"]
    bot.advance(seconds=3)
    await bot.core.core.replies.flush()
    assert bot.inbox("telegram:1") == ["premier", "deuxième"]


async def test_a_reply_whose_turn_is_far_waits_in_the_outbox_not_in_the_handler(
        bot: TestBot) -> None:
    pacer = bot.core.core.replies.pacers["telegram"]
    pacer.delay_chat("100", 60.0)  # a 429 for this chat a moment ago
    await bot.say(OPERATOR, "/aide")  # returns: the reply waits in the outbox
    assert bot.inbox(OPERATOR) == []
    assert await rows(bot) == [("pending", 0)]
    assert "Commandes" in await bot.say("telegram:2", "/aide")  # others are answered
    bot.advance(seconds=60)
    await bot.core.core.replies.flush()
    assert "Commandes" in bot.inbox(OPERATOR)[0]


@pytest.mark.parametrize(("failure", "reason"), [
    (RecipientGone("bot was blocked by the user"), ReplyDrop.GONE),
    (PermanentError("Bad Request: can't parse entities"), ReplyDrop.REFUSED),
])
async def test_a_reply_refused_for_good_is_given_up_logged_and_counted(
        bot: TestBot, caplog: pytest.LogCaptureFixture, failure: Exception,
        reason: ReplyDrop) -> None:
    metrics = counted(bot)
    bot.transports["telegram"].failures["1"] = [failure]  # type: ignore[list-item]
    with caplog.at_level(logging.WARNING, logger="bot.broadcast.replies"):
        await notify(bot, "Bienvenue")
    assert await rows(bot) == [("failed", 1)]
    assert metrics.dropped == [("telegram", reason)]
    assert f"given up platform=telegram reason={reason.value}" in caplog.text


async def test_a_reply_failing_every_attempt_is_given_up_then(
        bot: TestBot, caplog: pytest.LogCaptureFixture) -> None:
    metrics = counted(bot)
    bot.transports["telegram"].failures["1"] = [
        TransientError("connection reset") for _ in range(MAX_ATTEMPTS)]
    await notify(bot, "Bienvenue")
    for _ in range(MAX_ATTEMPTS):
        bot.advance(seconds=60)
        await bot.core.core.replies.flush()
    assert await rows(bot) == [("failed", MAX_ATTEMPTS)]
    assert metrics.dropped == [("telegram", ReplyDrop.ATTEMPTS)]
    assert "reason=attempts error=connection reset" in caplog.text


async def test_a_reply_to_a_platform_not_running_is_given_up_and_counted(
        bot: TestBot) -> None:
    metrics = counted(bot)
    await notify(bot, "Bienvenue", chat=ChatRef("signal", "1"))
    assert await rows(bot) == [("failed", 1)]
    assert metrics.dropped == [("signal", ReplyDrop.NO_TRANSPORT)]


async def test_a_reply_to_a_group_that_moved_follows_it(bot: TestBot) -> None:
    metrics = counted(bot)
    bot.transports["telegram"].failures["-400"] = [ChatMoved("-100400")]
    await notify(bot, "Groupe enregistré", chat=ChatRef("telegram", "-400"))
    assert bot.transports["telegram"].texts("-100400") == ["Groupe enregistré"]
    assert await rows(bot) == [("sent", 1)] and metrics.dropped == []


async def test_edits_of_a_post_waiting_for_its_turn_keep_only_the_last(bot: TestBot) -> None:
    core = bot.core.core
    await bot.say(OPERATOR, "/alerte crue Vesoul : Montée des eaux")  # alert 1, pending
    before = len(await rows(bot))
    await core.runner.perform(Effects([ToOfficers(Outgoing("⏳ 10 %"), track=("progress", 1))]))
    core.replies.pacers["telegram"].delay_chat(OFFICERS, 30.0)
    for percent in (40, 70, 100):
        edit = EditTracked("progress", 1, Outgoing(f"⏳ {percent} %"))
        await core.runner.perform(Effects([edit]))
    bot.advance(seconds=30)
    await core.replies.flush()
    post = next(p for p in bot.transports["telegram"].posted[OFFICERS]
                if p.message.text == "⏳ 10 %")
    assert [edit.text for edit in post.edits] == ["⏳ 100 %"]  # 40 and 70 were said by 100
    # Every row done: the posts (both platforms' officers), the three edits.
    assert [row[0] for row in (await rows(bot))[before:]] == ["sent"] * 5

