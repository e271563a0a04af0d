"""Telegram's flood limits, as token buckets.

Why token buckets (and not sliding windows): the limiter bots actually use - PTB's
``AIORateLimiter``, built on ``aiolimiter`` - is a leaky bucket that lets a full period's
worth through at once and then refills steadily. A token bucket whose size is one period's worth
accepts exactly that traffic, so a correctly throttled bot sees no 429 here, while a bot that
sends faster than the long-run rate is refused as Telegram would. A sliding window would refuse
aiolimiter's "burst, then steady" pattern and produce false alarms.

Buckets (defaults are Telegram's documented limits):

* global: ``global_rate`` msg/s for the whole bot, size ``global_burst`` (default: 1 s worth);
  ``paid_rate`` (1000/s) instead when paid broadcast is on - for the whole double, or for
  one request carrying ``allow_paid_broadcast=true``;
* private chat: ``private_rate`` msg/s, size ``private_burst`` (3);
* group/supergroup/channel: ``group_per_minute`` msg/min, size ``group_burst`` (1 min worth).

A request needs its ``cost`` of tokens in its chat's bucket *and* the global one; a refused
request consumes nothing. Sends cost 1, edits ``edit_cost`` (Telegram counts edits too, but
they are cheap for it). ``jitter_allowance`` lets a bucket dip slightly below zero so that a bot
pacing itself exactly at the limit is not refused because loopback scheduling delivered two
requests a few milliseconds closer together than they were sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

PRIVATE_SCOPE = "private"
GROUP_SCOPE = "group"
GLOBAL_SCOPE = "global"
PAID_SCOPE = "paid_global"
INJECTED_SCOPE = "injected"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Limit configuration; every field defaults to Telegram's documented value."""

    enabled: bool = True
    global_rate: float = 30.0
    global_burst: float | None = None  # None: one second's worth (global_rate)
    paid_broadcast: bool = False
    paid_rate: float = 1000.0
    private_rate: float = 1.0
    private_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float | None = None  # None: one minute's worth (group_per_minute)
    edit_cost: float = 0.25
    jitter_allowance: float = 0.2


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def wait_time(self, now: float, cost: float, allowance: float) -> float:
        """Seconds until ``cost`` tokens are available (0.0: available now)."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        missing = cost - allowance - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, cost: float) -> None:
        self.tokens -= cost


@dataclass(slots=True)
class _Forced:
    chat_id: int | None  # None: whichever chat the next request targets
    retry_after: int
    remaining: int


class RateLimiter:
    """Decides, per request, whether Telegram would answer 429 and with which retry_after."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        now = clock()
        self._global = TokenBucket(
            limits.global_rate, limits.global_burst or limits.global_rate, now
        )
        self._paid = TokenBucket(limits.paid_rate, limits.paid_rate, now)
        self._chats: dict[int, TokenBucket] = {}
        self._forced: list[_Forced] = []

    def force(self, chat_id: int | None, retry_after: int, count: int) -> None:
        """Answer the next ``count`` matching requests with 429 regardless of the buckets."""
        self._forced.append(_Forced(chat_id, max(1, retry_after), count))

    def admit(
        self, chat_id: int, chat_type: str, cost: float, paid: bool
    ) -> tuple[str, int] | None:
        """Take the tokens and return None, or return ``(scope, retry_after)`` and take nothing."""
        if self._forced:
            refused = self._take_forced(chat_id)
            if refused is not None:
                return refused
        if not self.limits.enabled:
            return None
        now = self._clock()
        allowance = self.limits.jitter_allowance
        chat_bucket, chat_scope = self._chat_bucket(chat_id, chat_type, now)
        global_bucket, global_scope = (
            (self._paid, PAID_SCOPE)
            if paid or self.limits.paid_broadcast
            else (self._global, GLOBAL_SCOPE)
        )
        for bucket, scope in ((chat_bucket, chat_scope), (global_bucket, global_scope)):
            wait = bucket.wait_time(now, cost, allowance)
            if wait > 0:
                return scope, max(1, math.ceil(wait))
        chat_bucket.take(cost)
        global_bucket.take(cost)
        return None

    def _chat_bucket(self, chat_id: int, chat_type: str, now: float) -> tuple[TokenBucket, str]:
        scope = PRIVATE_SCOPE if chat_type == "private" else GROUP_SCOPE
        bucket = self._chats.get(chat_id)
        if bucket is None:
            limits = self.limits
            if scope == PRIVATE_SCOPE:
                bucket = TokenBucket(limits.private_rate, limits.private_burst, now)
            else:
                per_minute = limits.group_per_minute
                bucket = TokenBucket(per_minute / 60.0, limits.group_burst or per_minute, now)
            self._chats[chat_id] = bucket
        return bucket, scope

    def _take_forced(self, chat_id: int) -> tuple[str, int] | None:
        for forced in self._forced:
            if forced.chat_id is None or forced.chat_id == chat_id:
                forced.remaining -= 1
                if forced.remaining <= 0:
                    self._forced.remove(forced)
                return INJECTED_SCOPE, forced.retry_after
        return None
