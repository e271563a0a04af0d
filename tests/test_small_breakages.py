"""Issue 15 item 7: the small breakages, each with its test, and the « recherche ciblée »
category with the prosecutor's reference in /journal and the audit trail."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bot.broadcast.replies import MAX_ATTEMPTS
from bot.transports.base import PermanentError, RecipientGone, TransientError
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR, OFFICER, OFFICER2, ADMIN = "telegram:100", "telegram:200", "telegram:201", "telegram:900"
ALICE, BOB = "telegram:1", "telegram:2"


async def test_profile_asks_nothing_to_confirm(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.press(ALICE, "accepte")
    for answer in ("commercant", "valider", "Vesoul", "terminer"):
        summary = await bot.say(ALICE, answer)
    assert summary.endswith("Confirmez-vous ?")  # the enrollment's question, with buttons
    await bot.say(ALICE, "oui")
    profile = await bot.say(ALICE, "/profil")
    assert "• communes : Vesoul" in profile and "Confirmez" not in profile
    assert profile.endswith("État : actif")
    assert "Confirmez" not in await bot.say(ALICE, "/profil agriculteur")
    assert "Confirmez" not in await bot.say(ALICE, "/start")


async def test_a_weekly_message_shows_the_day_it_is_sent(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say(OPERATOR, "/programmer chaque vendredi 17:00 Vesoul : Verrouillez vos portes")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)  # approved Tuesday 24/11
    bot.advance(days=3, hours=3)  # Friday 27/11, 17:00
    await bot.core.core.tick()
    await bot.drain()
    first = bot.inbox(ALICE)[-1]
    assert "Verrouillez" in first and "27/11 à 17:00" in first and "24/11" not in first
    bot.advance(days=7)
    await bot.core.core.tick()
    await bot.drain()
    second = bot.inbox(ALICE)[-1]
    assert "Verrouillez" in second and "04/12 à 17:00" in second and "27/11" not in second


async def test_a_role_from_the_configuration_names_the_file_running(tmp_path: Path) -> None:
    source = tmp_path / "gendarmerie-70.yaml"
    config = dataclasses.replace(test_config(tmp_path / "bot.sqlite3"), source=str(source))
    bot = await TestBot(config).start()
    try:
        reply = await bot.say(ADMIN, f"/role {OPERATOR} -operateur")
        assert f"retirez-le de roles.operators dans {source}" in reply
        assert "config/bot.yaml" not in reply
    finally:
        await bot.stop()


async def test_without_a_file_the_role_answer_says_the_configuration(bot: TestBot) -> None:
    reply = await bot.say(ADMIN, f"/role {OFFICER} -officier")
    assert "retirez-le de roles.officers dans le fichier de configuration" in reply


async def test_the_public_is_told_whom_a_command_is_for_without_threat(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    for command in ("/alerte vol Vesoul : x", "/valider 1", "/stats", "/role telegram:5 admin"):
        reply = await bot.say(ALICE, command)
        assert "réservée aux gendarmes et aux services habilités" in reply, command
        assert "enregistrée" not in reply and "tentative" not in reply, command
    # Staff reaching past their role are told it is another role's.
    assert "réservée à un autre rôle" in await bot.say(OPERATOR, "/role telegram:5 admin")
    refused = await bot.core.services.db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'command.refused'")
    assert refused == 5  # still recorded, only not brandished


async def test_start_with_an_unknown_code_says_so_and_goes_on(bot: TestBot) -> None:
    reply = await bot.say(ALICE, "/start invitation-ab12")
    assert reply.startswith("Le code « invitation-ab12 » n'est pas reconnu")
    assert "Acceptez-vous ces conditions ?" in reply  # the ordinary enrollment follows
    await bot.press(ALICE, "accepte")
    for answer in ("commercant", "valider", "Vesoul", "terminer"):
        await bot.say(ALICE, answer)
    assert "C'est fait" in await bot.say(ALICE, "oui")
    again = await bot.say(ALICE, "/start " + "x" * 200)
    assert f"« {'x' * 64} »" in again and "déjà inscrit" in again


# -- « recherche ciblée » ---------------------------------------------------------------

async def test_a_targeted_search_is_approved_like_a_missing_person(bot: TestBot) -> None:
    await bot.enroll(ALICE, "agriculteur", "Vesoul")
    await bot.enroll(BOB, "citoyen", "Vesoul")
    preview = await bot.say(OPERATOR, "/alerte recherche Vesoul pour commercant : Homme de "
                                      "30 ans recherché, blouson rouge, ne pas intervenir")
    assert "Catégorie : Recherche ciblée" in preview
    assert "toutes les communautés" in preview and "2 validations" in preview
    assert "parquet" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert "(1/2)" in await bot.say(OFFICER, "/valider 1 parquet PR-70-2026/301",
                                    chat=OFFICERS)
    assert "déjà prononcé" in await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    assert "diffusion à 2 destinataires" in await bot.say(OFFICER2, "/valider 1",
                                                          chat=OFFICERS)
    await bot.drain()
    delivered = bot.transports["telegram"].posted["1"][-1].message
    assert "blouson rouge" in delivered.text and delivered.tone.value == "protected"
    journal = await bot.say(OFFICER, "/journal 1", chat=OFFICERS)
    assert "autorisation du parquet : PR-70-2026/301" in journal
    rows = await bot.core.services.db.fetchall(
        "SELECT actor, detail FROM audit_events WHERE action = 'approval.approved' ORDER BY id")
    assert [(row[0], json.loads(row[1]).get("prosecutor_ref")) for row in rows] == [
        (OFFICER, "PR-70-2026/301"), (OFFICER2, None)]
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()  # protected: the description leaves every phone at the end
    assert "blouson rouge" not in bot.transports["telegram"].posted["1"][-2].current.text


async def test_a_missing_person_journal_shows_its_reference_too(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte disparition Vesoul : Femme de 80 ans, manteau vert")
    await bot.say(OFFICER, "/valider 1 parquet PR-70-2026/7", chat=OFFICERS)
    assert "autorisation du parquet : PR-70-2026/7" in await bot.say(
        OFFICER, "/journal 1", chat=OFFICERS)


async def test_a_data_file_the_platform_refuses_is_said_not_silenced(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    telegram = bot.transports["telegram"]
    telegram.failures["1"].append(PermanentError("Request Entity Too Large"))
    await bot.say(ALICE, "/mesdonnees")
    await bot.core.core.replies.drain()
    last = telegram.posted["1"][-1].message
    assert last.attachment is None
    assert last.text.startswith("Désolé : cette messagerie a refusé le fichier de vos données")
    # Refused again, the notice is not repeated for ever; the next request works.
    telegram.failures["1"] += [PermanentError("no"), PermanentError("no")]
    before = len(telegram.posted["1"])
    await bot.say(ALICE, "/mesdonnees")
    await bot.core.core.replies.drain()
    assert len(telegram.posted["1"]) == before and not telegram.failures["1"]
    await bot.say(ALICE, "/mesdonnees")
    assert telegram.posted["1"][-1].message.attachment is not None


async def test_a_data_file_that_keeps_failing_ends_in_its_notice(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    telegram = bot.transports["telegram"]
    telegram.failures["1"] += [TransientError("502 Bad Gateway") for _ in range(MAX_ATTEMPTS)]
    await bot.say(ALICE, "/mesdonnees")
    for _ in range(MAX_ATTEMPTS):
        bot.advance(seconds=60)
        await bot.core.core.replies.flush()
    assert telegram.posted["1"][-1].message.text.startswith("Désolé : cette messagerie")
    # Someone who blocked the bot is told nothing: there is nobody to tell.
    telegram.failures["1"].append(RecipientGone("blocked"))
    before = telegram.send_count
    await bot.say(ALICE, "/mesdonnees")
    await bot.core.core.replies.flush()
    assert telegram.send_count == before + 1
