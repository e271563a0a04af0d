"""The typed domain: alert statuses change only along ALERT_TRANSITIONS; rows read back as
enums equal to the strings the database keeps."""

from __future__ import annotations

import pytest

from bot.enums import ALERT_TRANSITIONS, AlertKind, AlertStatus
from bot.storage.alerts import IllegalTransition
from tests.harness import OFFICERS, TestBot

OPERATOR, OFFICER = "telegram:100", "telegram:200"
ALERT = "/alerte cambriolage Vesoul pour commercant : Vitrine forcée rue Carnot"


def test_every_status_has_its_row_and_ended_states_lead_nowhere() -> None:
    assert set(ALERT_TRANSITIONS) == set(AlertStatus)
    for ended in (AlertStatus.DONE, AlertStatus.REJECTED, AlertStatus.EXPIRED,
                  AlertStatus.WITHDRAWN):
        assert ALERT_TRANSITIONS[ended] == frozenset()


@pytest.mark.parametrize(("expected", "new"), [
    (AlertStatus.PENDING, AlertStatus.DONE),
    (AlertStatus.PENDING, AlertStatus.BROADCASTING),
    (AlertStatus.DONE, AlertStatus.PENDING),
    (AlertStatus.REJECTED, AlertStatus.APPROVED),
    (AlertStatus.BROADCASTING, AlertStatus.WITHDRAWN),
])
async def test_an_illegal_transition_is_a_bug_raised_and_changes_nothing(
        bot: TestBot, expected: AlertStatus, new: AlertStatus) -> None:
    await bot.say(OPERATOR, ALERT)
    alerts = bot.core.services.stores.alerts
    with pytest.raises(IllegalTransition):
        await alerts.transition(1, expected, new, "system", bot.clock.now())
    alert = await alerts.get(1)
    assert alert is not None and alert.status is AlertStatus.PENDING


async def test_a_legal_transition_from_a_status_no_longer_held_is_refused_quietly(
        bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    alerts = bot.core.services.stores.alerts
    assert not await alerts.transition(1, AlertStatus.APPROVED, AlertStatus.BROADCASTING,
                                       "system", bot.clock.now())


async def test_rows_read_back_as_enums_equal_to_the_stored_words(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None
    assert alert.status is AlertStatus.DONE and alert.status == "done"
    assert alert.kind is AlertKind.ALERT
    stored = await bot.core.services.db.fetchval("SELECT status FROM alerts WHERE id = 1")
    assert stored == "done" and type(stored) is str
