"""Conversations stored by the previous version (state as a plain dict) resume after an upgrade.

Each row below is a literal copy of what the old code wrote in ``conversations.data``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
    assert "Récapitulatif" in reply and "Vesoul (70000)" in reply
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
