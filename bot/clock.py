"""Time as a dependency, so tests control it instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds for measuring intervals (pacing): never jumps with the wall clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FrozenClock(Clock):
    """A clock that only moves when told to.

    A sleep returns at once having passed monotonic time only: waits (pacing) are
    measured without being waited for, while ``now`` stays where the test put it.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._start = start
        self._slept = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        # From the start, not the epoch: small numbers keep sub-microsecond waits exact.
        return (self._now - self._start).total_seconds() + self._slept

    async def sleep(self, seconds: float) -> None:
        self._slept += max(seconds, 0.0)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        """Move the wall clock anywhere; monotonic time never goes back (a real one
        does not when the wall clock is set back either)."""
        if moment < self._now:
            self._slept += (self._now - moment).total_seconds()
        self._now = moment


def stamp(moment: datetime) -> str:
    """How times are stored: ISO-8601 in UTC, so that text comparison in SQL is time order."""
    return moment.astimezone(UTC).isoformat()


def parse_stamp(text: str) -> datetime:
    """A stored time back, UTC-aware (``stamp``'s inverse). A time without an offset is
    taken as UTC, which is what every stored time is."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
