"""The typed domain: alert statuses change only along ALERT_TRANSITIONS; rows read back as
enums equal to the strings the database keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import parse_stamp, stamp
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


TIME_COLUMNS = ("facts_at", "created_at", "decided_at", "broadcast_started_at",
                "completed_at", "expires_at")


async def test_alert_times_read_back_as_utc_datetimes_stamped_as_stored(
        bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    await bot.drain()
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None
    stored = await bot.core.services.db.fetchone(
        f"SELECT {', '.join(TIME_COLUMNS)} FROM alerts WHERE id = 1")
    assert stored is not None
    for column, text in zip(TIME_COLUMNS, stored, strict=True):
        moment = getattr(alert, column)
        assert isinstance(moment, datetime) and moment.utcoffset() == timedelta(0)
        assert stamp(moment) == text  # written back, it is the very same string


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-24T12:40:00+00:00", datetime(2026, 11, 24, 12, 40, tzinfo=UTC)),
    ("2026-11-24T12:40:00.123456+00:00", datetime(2026, 11, 24, 12, 40, 0, 123456, UTC)),
    ("2026-11-24T13:40:00+01:00", datetime(2026, 11, 24, 12, 40, tzinfo=UTC)),
    ("2026-11-24T12:40:00", datetime(2026, 11, 24, 12, 40, tzinfo=UTC)),  # stored as UTC
])
def test_a_stored_time_parses_to_utc(text: str, expected: datetime) -> None:
    moment = parse_stamp(text)
    assert moment == expected and moment.tzinfo is UTC
