"""Where a platform can neither edit nor delete a sent message (WhatsApp: ``capabilities``),
the dispatcher sends a follow-up quoting the copy instead, and the report says so.

Played on the memory transport declaring WhatsApp's capabilities, so that every end of an
alert (all-clear, recall, expiry, a missing person's redaction) is checked in the core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.transports.base import Capabilities
from bot.transports.memory import MemoryTransport
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR, OFFICER, OFFICER2 = "telegram:100", "telegram:200", "telegram:201"
ALICE = "telegram:1"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    running = TestBot(test_config(tmp_path / "bot.sqlite3"))
    running.transports["telegram"].capabilities = Capabilities(edit=False, delete=False)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def chat(bot: TestBot) -> MemoryTransport:
    return bot.transports["telegram"]


async def copy_of_an_alert(bot: TestBot, command: str = ALERT,
                           decisions: tuple[tuple[str, str], ...] = ((OFFICER, "/valider 1"),)
                           ) -> str:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say(OPERATOR, command)
    for officer, decision in decisions:
        await bot.say(officer, decision, chat=OFFICERS)
    await bot.drain()
    original = chat(bot).posted["1"][-1]
    assert "Vitrine" in original.message.text or "Jeanne" in original.message.text
    return original.message_id


def since(bot: TestBot, original: str) -> list:  # type: ignore[type-arg]
    posts = chat(bot).posted["1"]
    index = next(i for i, p in enumerate(posts) if p.message_id == original)
    return posts[index + 1:]


async def test_recall_is_a_notice_quoting_the_copy(bot: TestBot) -> None:
    original = await copy_of_an_alert(bot)
    await bot.say(OFFICER, "/retirer 1", chat=OFFICERS)
    await bot.drain()
    [notice] = since(bot, original)
    assert notice.message.text == "⛔ Alerte n°1 retirée : n'en tenez plus compte."
    assert notice.message.reply_to == original and notice.message.summary is not None
    assert not any(post.deleted or post.edits for post in chat(bot).posted["1"])
    report = bot.officers()[-1]
    assert "1 message de suivi citant la copie d'origine" in report
    assert "les copies d'origine restent sur les téléphones (1)" in report


async def test_all_clear_is_its_closing_words_only(bot: TestBot) -> None:
    original = await copy_of_an_alert(bot)
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    [closing] = since(bot, original)  # no second message standing in for « LEVÉE »
    assert closing.message.text.startswith("✅ Fin d'alerte") and \
        closing.message.reply_to == original
    assert not chat(bot).posted["1"][0].edits


async def test_expiry_is_the_expired_copy_quoting_the_original(bot: TestBot) -> None:
    original = await copy_of_an_alert(bot)
    bot.advance(hours=25)
    await bot.core.core.tick()
    await bot.drain()
    [expired] = since(bot, original)
    assert expired.message.text.startswith("EXPIRÉE") and expired.message.reply_to == original
    assert expired.message.choices == ()  # no « Reçu » on a follow-up


async def test_missing_person_redaction_never_repeats_the_description(bot: TestBot) -> None:
    original = await copy_of_an_alert(
        bot, "/alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge",
        ((OFFICER, "/valider 1 parquet PR-2026-7"), (OFFICER2, "/valider 1")))
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    later = since(bot, original)
    assert [post.message.reply_to for post in later] == [original]  # the closing words
    assert "Jeanne" not in later[0].message.text
    reports = [text for text in bot.officers() if "Rapport fin d'alerte" in text]
    assert "les copies d'origine restent sur les téléphones (1)" in reports[-1]
