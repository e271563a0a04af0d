"""Per-person flood protection for incoming messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.enums import Verdict


@dataclass
class _Bucket:
    tokens: float
    updated: datetime
    warned: bool = False


class Throttle:
    """A token bucket per identity: ``burst`` messages at once, then ``per_minute``.

    ``admit`` answers ALLOW, WARN (first refusal: tell the person once) or DROP.
    A bucket left alone long enough to refill is forgotten: a new one would be the same,
    so memory follows the people active lately, not everyone ever seen.
    """

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._refill = timedelta(seconds=self.burst / max(self.rate, 1e-9))
        self._next_prune: datetime | None = None

    def admit(self, key: str, now: datetime, weight: float = 1.0) -> Verdict:
        self._prune(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        elapsed = max((now - bucket.updated).total_seconds(), 0.0)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= weight:
            bucket.tokens -= weight
            bucket.warned = False
            return Verdict.ALLOW
        if bucket.warned:
            return Verdict.DROP
        bucket.warned = True
        return Verdict.WARN

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: datetime) -> None:
        # At most once per refill period, so the cost per message stays O(1) on average.
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + self._refill
        self._buckets = {key: bucket for key, bucket in self._buckets.items()
                         if now - bucket.updated < self._refill}
