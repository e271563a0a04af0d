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


def test_memory_stays_bounded_after_100000_people() -> None:
    """A press launch: 100,000 distinct people at 300 a second, each once. The table
    holds at most the people of two refill periods (30 s: the window, plus the time until
    the next prune), never everyone ever seen."""
    import tracemalloc

    throttle = Throttle(per_minute=20, burst=10)  # the shipped defaults: refills in 30 s
    rate = 300  # people per second
    window = 2 * 30 * rate
    tracemalloc.start()
    try:
        largest, peak_after_first_wave = 0, 0
        for person in range(100_000):
            now = START + timedelta(seconds=person / rate)
            throttle.admit(f"telegram:{person}", now)
            largest = max(largest, len(throttle))
            if person == 2 * window:
                tracemalloc.reset_peak()
        peak_after_first_wave = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert largest <= window + 1, largest
    assert peak_after_first_wave < 8_000_000, peak_after_first_wave  # ~22 MB if never pruned
    throttle.admit("telegram:late", START + timedelta(hours=1))
    assert len(throttle) == 1
