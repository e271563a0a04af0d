"""Counters of everything the double answered, for assertions and rate plots."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by method (lower-case)
    accepted: Counter[int] = field(default_factory=Counter)  # send* accepted, per chat id
    # (unix time, chat id) of each accepted send*, in arrival order: plot it to see the rate.
    accepted_at: list[tuple[float, int]] = field(default_factory=list)
    rate_limited: Counter[str] = field(default_factory=Counter)  # 429s by limit scope
    forbidden: Counter[str] = field(default_factory=Counter)  # 403s by description
    bad_requests: Counter[str] = field(default_factory=Counter)  # 400s by description
    failures: Counter[int] = field(default_factory=Counter)  # injected faults by HTTP status
    errors: Counter[int] = field(default_factory=Counter)  # every error reply by HTTP status
    edits: int = 0
    deletes: int = 0
    paid_broadcasts: int = 0  # accepted sends that used the paid-broadcast ceiling
    photo_uploads: int = 0  # sendPhoto with the photo's bytes (multipart)
    photos_by_file_id: int = 0  # sendPhoto naming a photo sent before by its file_id
    dropped_updates: int = 0  # updates discarded because of allowed_updates
    webhook_posts: Counter[int] = field(default_factory=Counter)  # by status, 0: no answer

    @property
    def count_429(self) -> int:
        return self.errors[429]

    @property
    def count_403(self) -> int:
        return self.errors[403]

    @property
    def count_400(self) -> int:
        return self.errors[400]

    @property
    def count_502(self) -> int:
        return self.errors[502]

    @property
    def accepted_total(self) -> int:
        return len(self.accepted_at)

    def per_second(self) -> list[tuple[int, int]]:
        """(unix second, accepted sends in it) for every second that saw at least one."""
        buckets = Counter(int(stamp) for stamp, _ in self.accepted_at)
        return sorted(buckets.items())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly summary, handy in benchmark reports."""
        return {
            "requests": dict(self.requests),
            "accepted_total": self.accepted_total,
            "accepted_chats": len(self.accepted),
            "rate_limited": dict(self.rate_limited),
            "forbidden": dict(self.forbidden),
            "bad_requests": dict(self.bad_requests),
            "failures": dict(self.failures),
            "errors": dict(self.errors),
            "edits": self.edits,
            "deletes": self.deletes,
            "paid_broadcasts": self.paid_broadcasts,
            "photo_uploads": self.photo_uploads,
            "photos_by_file_id": self.photos_by_file_id,
            "dropped_updates": self.dropped_updates,
            "webhook_posts": dict(self.webhook_posts),
        }
