"""Per-person flood protection for incoming messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class _Bucket:
    tokens: float
    updated: datetime
    warned: bool = False


class Throttle:
    """A token bucket per identity: ``burst`` messages at once, then ``per_minute``.

    ``admit`` answers "allow", "warn" (first refusal: tell the person once) or "drop".
    """

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, key: str, now: datetime, weight: float = 1.0) -> str:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        elapsed = max((now - bucket.updated).total_seconds(), 0.0)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = now
        if bucket.tokens >= weight:
            bucket.tokens -= weight
            bucket.warned = False
            return "allow"
        if bucket.warned:
            return "drop"
        bucket.warned = True
        return "warn"
