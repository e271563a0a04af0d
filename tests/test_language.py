"""Each person's language (issue 15 item 6): plural forms chosen by the language's rules,
dates and numbers written its way, copies in the recipient's language, staff texts in the
staff language, and the report's rate line only when it means something."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_config
from bot.i18n import Catalog, Translator
from bot.render import report
from bot.storage.alerts import Alert
from bot.storage.deliveries import DeliveryCounts
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALICE, BOB = "telegram:1", "telegram:2"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée rue Carnot"
PARIS = ZoneInfo("Europe/Paris")
NNBSP = "\u202f"  # French groups digits with a narrow no-break space


def write_catalog(tmp_path: Path, french: str, english: str = "") -> Path:
    (tmp_path / "t.fr.yaml").write_text(french, encoding="utf-8")
    (tmp_path / "t.en.yaml").write_text(english, encoding="utf-8")
    return tmp_path


# -- the catalogue ---------------------------------------------------------------------

def test_plural_forms_follow_each_language_rules(tmp_path: Path) -> None:
    catalog = Catalog.load(write_catalog(
        tmp_path,
        'x.n:\n  one: "{count} envoi"\n  other: "{count} envois"\n',
        'x.n:\n  one: "{count} send"\n  other: "{count} sends"\n'))
    # French: 0 and 1 are singular; English: only 1.
    assert [catalog.text("fr", "x.n", count=n) for n in (0, 1, 2)] == [
        "0 envoi", "1 envoi", "2 envois"]
    assert [catalog.text("en", "x.n", count=n) for n in (0, 1, 2)] == [
        "0 sends", "1 send", "2 sends"]
    # French has « many » (a million): without it, « other »; and the count is grouped.
    assert catalog.text("fr", "x.n", count=1_000_000) == f"1{NNBSP}000{NNBSP}000 envois"
    assert catalog.text("en", "x.n", count=12_345) == "12,345 sends"


def test_a_zero_form_is_used_for_exactly_zero(tmp_path: Path) -> None:
    catalog = Catalog.load(write_catalog(
        tmp_path,
        'x.n:\n  zero: "aucun envoi"\n  one: "{count} envoi"\n  other: "{count} envois"\n'))
    assert catalog.text("fr", "x.n", count=0) == "aucun envoi"
    assert catalog.text("fr", "x.n", count=1) == "1 envoi"
    assert catalog.text("en", "x.n", count=0) == "aucun envoi"  # falls back to French


def test_plain_texts_are_unchanged(tmp_path: Path) -> None:
    catalog = Catalog.load(write_catalog(tmp_path, 'x.a: "{count} tel quel"\nx.b: "{a} {b}"\n'))
    assert catalog.text("fr", "x.a", count=1234) == "1234 tel quel"
    assert catalog.text("fr", "x.b") == "{a} {b}"  # no parameters: the template itself
    assert catalog.templates("fr", "x.b") == ("{a} {b}",)


@pytest.mark.parametrize("entry", [
    'x.n:\n  one: "{count} envoi"\n',  # no « other »
    'x.n:\n  un: "{count} envoi"\n  other: "{count} envois"\n',  # not a CLDR category
    'x.n:\n  other:\n    - a list\n',
    'x.n: 12\n',
])
def test_malformed_plural_entries_are_refused_at_load(tmp_path: Path, entry: str) -> None:
    with pytest.raises(ValueError, match=r"x\.n"):
        Catalog.load(write_catalog(tmp_path, entry))


def test_a_plural_entry_needs_a_count(tmp_path: Path) -> None:
    catalog = Catalog.load(write_catalog(
        tmp_path, 'x.n:\n  one: "{count} envoi"\n  other: "{count} envois"\n'))
    with pytest.raises(TypeError, match=r"x\.n"):
        catalog.text("fr", "x.n", number=3)


def test_dates_and_numbers_are_written_the_language_way() -> None:
    catalog = Catalog.load()
    french, english = Translator(catalog, "fr"), Translator(catalog, "en")
    moment = datetime(2026, 11, 27, 16, 5, tzinfo=UTC).astimezone(PARIS)
    assert french.when(moment) == "27/11 à 17:05"
    assert english.when(moment) == "27 Nov at 17:05"
    assert french.time(moment) == english.time(moment) == "17:05"
    assert french.number(12_345.67, 1) == f"12{NNBSP}345,7"
    assert english.number(12_345.67, 1) == "12,345.7"
    assert french.number(0.2, 2, trim=True) == "0,2" and english.number(30, 2, trim=True) == "30"


def test_the_real_catalogue_agrees_words_with_numbers() -> None:
    t = Translator(Catalog.load(), "fr")
    assert t("render.and_more", count=1) == " et 1 autre"
    assert t("render.and_more", count=20) == " et 20 autres"
    assert t("quantity.communes", count=1) == "1 commune"
    assert t("quantity.unsent_withdrawn", count=0) == "aucun envoi en attente"
    assert t("quantity.unsent_withdrawn", count=2) == "2 envois en attente retirés"
    english = Translator(Catalog.load(), "en")
    assert english("quantity.copies_deleted", count=1) == "1 copy deleted"
    assert english("quantity.copies_deleted", count=0) == "0 copies deleted"


# -- the report's rate line --------------------------------------------------------------

def an_alert() -> Alert:
    moment = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    return Alert(1, "vol", "Vesoul", "{}", False, "x", moment, "telegram:100", "telegram",
                 "100", "done", 1, False, None, moment, moment, moment, moment, moment)


def test_the_rate_line_only_from_a_hundred_messages() -> None:
    t = Translator(Catalog.load(), "fr")
    two = report(t, an_alert(), DeliveryCounts(sent=2), 0.004, "telegram 30/s")
    assert two == "Rapport alerte n°1 : 2 envoyés, 0 échec, 0 bloqué sur 2 — durée 0,00 s"
    many = report(t, an_alert(), DeliveryCounts(sent=1200), 40.0, "telegram 30/s")
    assert f"1{NNBSP}200 envoyés" in many and f"sur 1{NNBSP}200" in many
    assert many.endswith("Cadence moyenne : 30,0 messages/s, sous les plafonds réglés "
                         "(telegram 30/s)")


# -- the people ----------------------------------------------------------------------------

async def broadcast(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()


async def test_each_copy_is_in_its_recipients_language(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll(BOB, "commercant", "Vesoul")
    assert "English" in await bot.say(BOB, "/langue en")
    await bot.say("telegram:900", "/groupe Vesoul", chat="-9")
    await broadcast(bot)
    french, english = bot.inbox(ALICE)[-1], bot.inbox(BOB)[-1]
    assert "alerte n°1 · 24/11 à 14:00" in french
    assert "alert #1 · 24 Nov at 14:00" in english and "à 14:00" not in english
    labels = [c.label for c in bot.transports["telegram"].posted["2"][-1].message.choices]
    assert labels == ["✅ Received", "ℹ️ I have information"]
    assert "alerte n°1 · 24/11" in bot.transports["telegram"].texts("-9")[-1]  # the bot's
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    assert bot.transports["telegram"].posted["2"][-2].current.text.startswith(
        "LIFTED on 24 Nov at 14:00")
    assert bot.transports["telegram"].posted["1"][-2].current.text.startswith(
        "LEVÉE le 24/11 à 14:00")


async def test_an_english_tip_reaches_french_officers_in_french(bot: TestBot) -> None:
    await bot.enroll(BOB, "commercant", "Vesoul")
    await bot.say(BOB, "/langue en")
    await broadcast(bot)
    await bot.press(BOB, "information")
    assert "Thank you" in await bot.say(BOB, "White van seen in rue Carnot")
    forwarded = bot.officers()[-1]
    assert forwarded.startswith("ℹ️ Information n°1 sur l'alerte n°1, de l'abonné n°1 : ")
    assert "White van seen" in forwarded and "Répondre : /repondre 1" in forwarded
    assert "envoyée" in await bot.say(OFFICER, "/repondre 1 Merci, une patrouille passe",
                                      chat=OFFICERS)
    assert bot.inbox(BOB)[-1].startswith("Answer from the gendarmerie to your information #1")


@pytest.fixture
async def english_staff(tmp_path: Path) -> AsyncIterator[TestBot]:
    config = dataclasses.replace(test_config(tmp_path / "bot.sqlite3"), staff_language="en")
    test_bot = await TestBot(config).start()
    yield test_bot
    await test_bot.stop()


async def test_staff_texts_are_in_the_staff_language(english_staff: TestBot) -> None:
    bot = english_staff
    await bot.enroll(ALICE, "commercant", "Vesoul")
    preview = await bot.say(OPERATOR, ALERT)  # the operator's own chat: staff language
    assert "Alert #1 — preview" in preview
    request = bot.officers()[0]
    assert request.startswith("Broadcast request #1") and "⏳ Awaiting approval" in request
    ack = await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert ack == "Alert #1 approved: broadcast to 1 recipient."
    await bot.drain()
    assert bot.officers()[-1].startswith("Report for alert #1: 1 sent, 0 failed, 0 blocked")
    assert "Gendarmerie · alerte n°1 · 24/11 à 14:00" in bot.inbox(ALICE)[-1]  # hers: French
    # Staff speak the staff language in private too, unless they chose their own.
    officer = "telegram:201"
    assert "Do you accept" in await bot.say(officer, "/start")
    for answer in ("oui", "commercant", "valider", "Gray", "terminer"):
        await bot.say(officer, answer)
    assert "All set: you will receive" in await bot.say(officer, "oui")
    assert "Usage: /journal N" in await bot.say(officer, "/journal")
    await bot.say(officer, "/langue fr")
    assert "Usage : /journal N" in await bot.say(officer, "/journal")
    assert "Usage: /journal N" in await bot.say(officer, "/journal", chat=OFFICERS)


def test_staff_language_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_text("staff_language: de\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="staff_language: expected fr, en or empty"):
        load_config(path)


async def test_staff_command_menus_are_in_the_staff_language(english_staff: TestBot) -> None:
    menus = {menu.audience: dict(menu.commands)
             for menu in english_staff.core.core.command_menus()}
    assert menus["everyone"]["start"].startswith("s'inscrire")
    assert menus["officers"]["valider"].startswith("approve alert N")
    assert menus[OFFICER]["start"].startswith("sign up")
