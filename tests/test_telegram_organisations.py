"""Organisations end to end on Telegram (issue 16): two forces, two officers' groups.

The gendarmerie alerts the Haute-Saône but Gray, whose police alerts Gray; each decides
in its own officers' group, and each copy is signed by the force that issued it. The real
TelegramTransport long-polls the Bot API double, as in tests/test_telegram_e2e.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Config, OrganisationConfig, TelegramConfig, ThrottleConfig
from bot.organisations import configured_channels
from tests.harness import ROOT
from tests.telegram_double import TelegramDouble
from tests.test_telegram_e2e import BOT_NAME, LOOSE, TOKEN, Telegram, keyboard_rows

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

GEND_OP, GEND_OFFICER = 100, 200
POLICE_OP, POLICE_OFFICER = 110, 210
ALICE, BOB = 1, 2  # a merchant in Gray, a merchant in Vesoul
GEND_GROUP, POLICE_GROUP = -1001000, -1002000


def two_forces(database: Path, double: TelegramDouble) -> Config:
    organisations = [
        OrganisationConfig(
            key="gendarmerie", name="Groupement de gendarmerie de la Haute-Saône",
            signature="Gendarmerie de la Haute-Saône", territory="dep:70 sauf Gray",
            officers_channels={"telegram": str(GEND_GROUP)},
            operators=[f"telegram:{GEND_OP}"], officers=[f"telegram:{GEND_OFFICER}"]),
        OrganisationConfig(
            key="police", name="Police nationale — Gray", signature="Police nationale — Gray",
            territory="Gray", officers_channels={"telegram": str(POLICE_GROUP)},
            operators=[f"telegram:{POLICE_OP}"], officers=[f"telegram:{POLICE_OFFICER}"]),
    ]
    telegram = TelegramConfig(enabled=True, token=TOKEN, base_url=double.base_url,
                              base_file_url=double.base_file_url, poll_timeout=1)
    return Config(database=str(database), organisations=organisations, telegram=telegram,
                  throttle=ThrottleConfig(messages_per_minute=10_000, burst=10_000),
                  base_dir=str(ROOT))


@pytest.fixture
async def tg(tmp_path: Path) -> AsyncIterator[Telegram]:
    async with TelegramDouble(TOKEN, BOT_NAME, limits=LOOSE) as double:
        for user_id, name in ((GEND_OP, "Adjudant Durand"), (GEND_OFFICER, "Capitaine Martin"),
                              (POLICE_OP, "Brigadier Leroy"), (POLICE_OFFICER, "Commandant Roux"),
                              (ALICE, "Alice"), (BOB, "Bob")):
            double.user(user_id, name)
        double.group(GEND_GROUP, "Officiers gendarmerie", kind="supergroup",
                     members=[GEND_OP, GEND_OFFICER])
        double.group(POLICE_GROUP, "Officiers police", kind="supergroup",
                     members=[POLICE_OP, POLICE_OFFICER])
        config = two_forces(tmp_path / "bot.sqlite3", double)
        running = Telegram(double, config)
        running.transport.more_officers = [int(chat) for chat
                                           in configured_channels(config, "telegram")]
        await running.start()
        try:
            yield running
        finally:
            await running.stop()


async def test_two_forces_each_in_its_zone_with_its_officers_and_signature(
        tg: Telegram) -> None:
    await tg.enroll(ALICE, "commercant", "Gray")
    await tg.enroll(BOB, "commercant", "Vesoul")
    refused = await tg.say(POLICE_OP, "/alerte vol Vesoul : Faux billets de 50 €",
                           expect="hors de votre zone")
    assert refused.startswith("⛔ 1 commune hors de votre zone : Vesoul — relève de : "
                              "Groupement de gendarmerie de la Haute-Saône.")
    gend_mark, police_mark = tg.mark(GEND_GROUP), tg.mark(POLICE_GROUP)
    await tg.say(POLICE_OP, "/alerte vol Gray pour commercant : Faux billets de 50 €",
                 expect="aperçu")
    request = await tg.next_record(POLICE_GROUP, "Demande de diffusion n°1", police_mark)
    assert keyboard_rows(request) == [["✅ Valider", "❌ Refuser"]]
    # The gendarmerie's group never sees the police's request, and its officer cannot decide.
    denied = await tg.say(GEND_OFFICER, f"/valider@{BOT_NAME} 1", GEND_GROUP,
                          expect="relève de")
    assert "relève de Police nationale — Gray" in denied
    assert not [r for r in tg.double.messages(GEND_GROUP)
                if r["message_id"] > gend_mark and "Demande de diffusion" in (r["text"] or "")]
    data = tg.button(POLICE_GROUP, "Valider")[1]
    assert "diffusion à 1" in await tg.press_data(POLICE_OFFICER, POLICE_GROUP,
                                                  request["message_id"], data, "validée")
    copy = await tg.double.wait_for_message(
        ALICE, lambda r: "Faux billets" in (r["text"] or "") and r["parse_mode"] == "HTML")
    assert "Police nationale — Gray · alerte n°1" in str(copy["text"])
    assert "Gendarmerie" not in str(copy["text"])
    # The gendarmerie's own alert goes to its own group, and is signed by it.
    await tg.say(GEND_OP, "/alerte vol Vesoul pour commercant : Vol à l'étalage",
                 expect="aperçu")
    request = await tg.next_record(GEND_GROUP, "Demande de diffusion n°2", gend_mark)
    data = tg.button(GEND_GROUP, "Valider")[1]
    await tg.press_data(GEND_OFFICER, GEND_GROUP, request["message_id"], data, "validée")
    copy = await tg.double.wait_for_message(
        BOB, lambda r: "Vol à l'étalage" in (r["text"] or "") and r["parse_mode"] == "HTML")
    assert "Gendarmerie de la Haute-Saône · alerte n°2" in str(copy["text"])
    assert not [r for r in tg.double.messages(POLICE_GROUP)
                if "Demande de diffusion n°2" in (r["text"] or "")]
    assert tg.delivered(ALICE, "Vol à l'étalage") == []


async def test_every_organisations_group_gets_the_officers_menu(tg: Telegram) -> None:
    for group in (GEND_GROUP, POLICE_GROUP):
        menu = {command["command"] for command in tg.double.commands_for("chat", group)}
        assert "valider" in menu and "start" not in menu, group
