"""Conversations stored by the previous version (state as a plain dict) resume after an upgrade.

Each row below is a literal copy of what the old code wrote in ``conversations.data``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.conversations.alert import AlertState
from bot.conversations.enrollment import EnrollmentState
from bot.storage.conversations import ConversationState
from tests.harness import OFFICERS, TestBot
from tests.test_subscriber import profile_of

OPERATOR, OFFICER, ALICE = "telegram:100", "telegram:200", "telegram:1"
NONCE = "a1b2c3"


async def stored_by_the_old_version(bot: TestBot, who: str, kind: str, step: str,
                                    data: dict[str, Any]) -> None:
    platform, user_id = who.split(":", 1)
    state = ConversationState(identity=who, platform=platform, chat_id=user_id, kind=kind,
                              step=step, data=data, nonce=NONCE, language="fr",
                              expires_at=datetime(2999, 1, 1, tzinfo=UTC))
    await bot.core.services.stores.conversations.save(state, datetime(2024, 1, 1, tzinfo=UTC))


async def test_tip_resumes(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say(OPERATOR, "/alerte cambriolage Vesoul pour commercant : Vitrine forcée")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    await stored_by_the_old_version(bot, ALICE, "tip", "information", {"alert": 1})
    assert "sur l'alerte n°1" in await bot.say(ALICE, " ")  # asked again, same alert
    assert "transmise" in await bot.say(ALICE, "Fourgon blanc vu rue Carnot")
    assert "sur l'alerte n°1" in bot.officers()[-1]


async def test_enrollment_resumes(bot: TestBot) -> None:
    await stored_by_the_old_version(bot, ALICE, "enrollment", "communes", {
        "communities": ["commercant"], "communes": ["70550"],
        "consent_at": "2024-01-01T09:00:00+00:00",
        "offered": {"nonce": NONCE, "values": ["done", "clear"]}})
    reply = await bot.press_data(ALICE, f"c:{NONCE}:done")
    assert "Récapitulatif" in reply and "Vesoul — 70000" in reply
    assert "C'est fait" in await bot.press(ALICE, "Confirmer")
    communes, communities, status = await profile_of(bot)
    assert (communes, communities, status) == (["70550"], ["commercant"], "active")


def test_enrollment_state_reads_old_and_partial_rows() -> None:
    old = {"communities": ["commercant"], "communes": ["70550"],
           "consent_at": "2024-01-01T09:00:00+00:00"}
    assert EnrollmentState.from_json(old).to_json() == old
    assert EnrollmentState.from_json({"communities": [], "communes": []}).to_json() == {
        "communities": [], "communes": []}
    assert EnrollmentState.from_json({"communities": ["citoyen"], "later": 1}) == \
        EnrollmentState(communities=["citoyen"])


async def test_guided_alert_resumes(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "artisan", "Gray")
    await stored_by_the_old_version(bot, OPERATOR, "alert", "confirm", {
        "communities": ["artisan"], "offered": {"nonce": NONCE, "values": ["submit", "abandon"]},
        "category": "escroquerie", "perimeter": "Gray+2km", "perimeter_shown": "Gray+2km",
        "facts_at": "2026-11-24T13:00:00+00:00",
        "body": "Faux billets de 50 € chez les artisans"})
    preview = await bot.press_data(OPERATOR, f"c:{NONCE}:submit")
    assert "Alerte n°1 — aperçu" in preview and "Public : Artisans" in preview
    assert "Portée : 1 abonné," in preview and "Faux billets de 50 €" in preview
    assert await bot.core.services.stores.alerts.communities(1) == ["artisan"]


async def test_guided_alert_from_before_perimeter_shown_resumes(bot: TestBot) -> None:
    await stored_by_the_old_version(bot, OPERATOR, "alert", "text", {
        "communities": [], "category": "escroquerie", "perimeter": "Gray+2km",
        "facts_at": "2026-11-24T13:00:00+00:00"})
    assert "Gray+2km" in await bot.say(OPERATOR, "Faux billets")
    assert "aperçu" in await bot.press(OPERATOR, "Soumettre")


def test_alert_state_reads_old_and_partial_rows() -> None:
    old = {"communities": ["artisan"], "category": "escroquerie", "perimeter": "Gray+2km",
           "perimeter_shown": "Gray+2km", "facts_at": "2026-11-24T13:00:00+00:00",
           "body": "Faux billets"}
    assert AlertState.from_json(old).to_json() == old
    assert AlertState.from_json({"communities": []}).to_json() == {"communities": []}
    assert AlertState.from_json({"category": "vol", "later": 1}) == AlertState(category="vol")
