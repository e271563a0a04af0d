"""People, not ids (issue 15, item 3): staff read each other by name; ids stay in the audit
trail; a platform display name is kept only for staff, only while they hold a role."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import nio

from bot.config import MatrixConfig, RolesConfig
from bot.domain import ChatKind
from bot.storage.transport_state import TransportState
from bot.transports.matrix import MatrixTransport
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR, OFFICER, OFFICER2 = "telegram:100", "telegram:200", "telegram:201"
ADMIN, SUBSCRIBER = "telegram:900", "telegram:1"
ALERT = "/alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée rue Carnot"


def request_text(bot: TestBot, number: int = 1) -> str:
    posts = [p for p in bot.transports["telegram"].posted[OFFICERS]
             if p.message.text.startswith(f"Demande de diffusion n°{number} ")]
    return posts[0].current.text


async def stored_names(bot: TestBot) -> dict[str, str]:
    rows = await bot.core.services.db.fetchall("SELECT identity, name FROM staff_names")
    return {row[0]: row[1] for row in rows}


async def audit_actors(bot: TestBot, action: str) -> list[str]:
    rows = await bot.core.services.db.fetchall(
        "SELECT actor FROM audit_events WHERE action = ? ORDER BY id", (action,))
    return [row[0] for row in rows]


async def test_request_and_decision_name_people_by_their_platform_names(bot: TestBot) -> None:
    bot.platform_names.update({OPERATOR: "Adjudant Durand", OFFICER: "Capitaine Martin"})
    await bot.say(OPERATOR, ALERT)
    before = request_text(bot)
    assert before.startswith("Demande de diffusion n°1 — par Adjudant Durand, le 24/11 à 14:00")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    after = request_text(bot)
    assert "✅ Validée par Capitaine Martin à 14:00" in after
    assert "telegram:" not in before + after
    # The ids are where accountability needs them: the audit trail and the alert's rows.
    assert await audit_actors(bot, "approval.approved") == [OFFICER]
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.requested_by == OPERATOR


async def test_configured_names_come_first_and_no_platform_name_is_kept(
        tmp_path: Path) -> None:
    roles = dataclasses.replace(test_config(tmp_path / "x").roles,
                                names={OFFICER: "Capitaine Martin"})
    bot = await TestBot(test_config(tmp_path / "bot.sqlite3", roles=roles)).start()
    try:
        bot.platform_names[OFFICER] = "Jeannot 🚓"
        await bot.say(OPERATOR, ALERT)
        await bot.say(OFFICER, "/refuser 1 faits non confirmés", chat=OFFICERS)
        assert "❌ Refusée par Capitaine Martin : faits non confirmés" in request_text(bot)
        assert await stored_names(bot) == {}  # not needed, not kept
    finally:
        await bot.stop()


async def test_the_first_platform_name_is_kept_and_only_for_staff(bot: TestBot) -> None:
    bot.platform_names.update({OFFICER: "Capitaine Martin", SUBSCRIBER: "Alice Dupont"})
    await bot.enroll(SUBSCRIBER, "commercant", "Vesoul")
    await bot.say(OFFICER, "/aide", chat=OFFICERS)
    bot.platform_names[OFFICER] = "Le roi du monde"  # what officers read does not shift
    await bot.say(OFFICER, "/aide", chat=OFFICERS)
    assert await stored_names(bot) == {OFFICER: "Capitaine Martin"}  # never a subscriber's


async def test_unnamed_people_read_as_their_role_and_the_bot_as_itself(bot: TestBot) -> None:
    await bot.enroll(SUBSCRIBER, "commercant", "Vesoul")
    await bot.say(OPERATOR, ALERT)
    assert "— par un opérateur, le" in request_text(bot)  # also an officer: acted as operator
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    journal = await bot.say(OFFICER2, "/journal 1", chat=OFFICERS)
    assert "en attente de validation · un opérateur" in journal
    assert "validée · un officier" in journal and "validation par un officier" in journal
    assert "en cours de diffusion · le bot" in journal and "diffusée · le bot" in journal
    assert "telegram:" not in journal and "system" not in journal


async def test_a_second_approval_names_both_officers(bot: TestBot) -> None:
    bot.platform_names.update({OFFICER: "Capitaine Martin", OFFICER2: "Lieutenant Petit"})
    await bot.say(OPERATOR, "/alerte disparition Vesoul : Homme de 82 ans, manteau bleu")
    await bot.say(OFFICER, "/valider 1 parquet PR-70-2026/118", chat=OFFICERS)
    assert "✅ Validée par Capitaine Martin (1/2)" in request_text(bot)
    await bot.say(OFFICER2, "/valider 1", chat=OFFICERS)
    assert "✅ Validée par Lieutenant Petit à 14:00" in request_text(bot)
    journal = await bot.say(OFFICER, "/journal 1", chat=OFFICERS)
    assert "validation par Capitaine Martin" in journal
    assert "validation par Lieutenant Petit" in journal


async def test_names_go_when_the_role_goes(bot: TestBot) -> None:
    newcomer = "telegram:555"
    bot.platform_names[newcomer] = "Brigadier Leroy"
    await bot.say(ADMIN, f"/role {newcomer} officier")
    await bot.say(newcomer, "/aide", chat=OFFICERS)
    assert (await stored_names(bot))[newcomer] == "Brigadier Leroy"
    await bot.say(ADMIN, f"/role {newcomer} -officier")
    assert newcomer not in await stored_names(bot)


async def test_the_daily_purge_forgets_people_the_configuration_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    bot = await TestBot(test_config(path)).start()
    bot.platform_names[OFFICER2] = "Lieutenant Petit"
    await bot.say(OFFICER2, "/aide", chat=OFFICERS)
    await bot.stop()
    roles = RolesConfig(admins=[ADMIN], operators=[OPERATOR], officers=[OFFICER, OPERATOR])
    bot = await TestBot(test_config(path, roles=roles)).start()  # OFFICER2 left the centre
    try:
        assert OFFICER2 in await stored_names(bot)
        counts = await bot.core.core.purge()
        assert counts["staff_names"] == 1 and await stored_names(bot) == {}
    finally:
        await bot.stop()


async def test_a_staff_member_who_unsubscribes_is_forgotten_too(bot: TestBot) -> None:
    bot.platform_names[OFFICER] = "Capitaine Martin"
    await bot.enroll(OFFICER, "commercant", "Vesoul")
    assert OFFICER in await stored_names(bot)
    await bot.say(OFFICER, "/oubli")
    await bot.press(OFFICER, "Oui")
    assert await stored_names(bot) == {}


async def test_a_platform_name_is_kept_on_one_short_line(bot: TestBot) -> None:
    bot.platform_names[OFFICER] = "  Capitaine\nMartin " + "x" * 200
    await bot.say(OFFICER, "/aide", chat=OFFICERS)
    name = (await stored_names(bot))[OFFICER]
    assert name.startswith("Capitaine Martin x") and len(name) == 64


def test_matrix_passes_the_senders_display_name() -> None:
    transport = MatrixTransport(MatrixConfig(user_id="@bot:test"), cast(TransportState, None),
                                lambda _: False)
    room = nio.MatrixRoom("!officers:test", "@bot:test")
    room.add_member("@martin:test", "Capitaine Martin", None)
    room.add_member("@anonymous:test", None, None)
    transport.client = SimpleNamespace(rooms={room.room_id: room})
    said = transport._incoming(room.room_id, ChatKind.OFFICERS, "@martin:test", text="!aide")
    assert said.sender_name == "Capitaine Martin"
    unnamed = transport._incoming(room.room_id, ChatKind.OFFICERS, "@anonymous:test")
    assert unnamed.sender_name == ""
