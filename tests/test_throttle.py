"""The per-person flood table forgets people whose budget has refilled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.throttle import Throttle

START = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


def test_the_table_shrinks_once_the_people_are_quiet() -> None:
    throttle = Throttle(per_minute=20, burst=10)  # refills in 30 s
    for person in range(5_000):
        assert throttle.admit(f"telegram:{person}", START + timedelta(milliseconds=person)) \
            == "allow"
    assert len(throttle) == 5_000
    throttle.admit("telegram:late", START + timedelta(minutes=2))
    assert len(throttle) == 1


def test_a_person_still_refilling_is_remembered() -> None:
    throttle = Throttle(per_minute=20, burst=2)  # refills in 6 s
    verdicts = [throttle.admit("telegram:1", START) for _ in range(4)]
    assert verdicts == ["allow", "allow", "warn", "drop"]
    for second in range(1, 7):  # prunes run meanwhile; the flooder is not forgotten early
        throttle.admit(f"telegram:other{second}", START + timedelta(seconds=second * 0.5))
    assert throttle.admit("telegram:1", START + timedelta(seconds=3.1)) == "allow"
    assert throttle.admit("telegram:1", START + timedelta(seconds=3.2)) == "warn"


class NeverForgets(Throttle):
    def _prune(self, now: datetime) -> None:
        pass


def test_forgetting_changes_no_verdict() -> None:
    forgetting, remembering = Throttle(per_minute=60, burst=3), NeverForgets(60, 3)
    for step in range(300):
        now = START + timedelta(seconds=step * 0.7)
        person = f"telegram:{step * step % 11 if step < 200 else step % 2}"
        assert forgetting.admit(person, now) == remembering.admit(person, now), step
    assert len(forgetting) < len(remembering)
