"""How fast one platform may be sent to: a global budget, one per chat, one per group.

The platform's limits are met by pacing, not discovered by hitting them: the global
budget is a leaky bucket holding a tenth of a second's messages, so bursts stay small.
Each chat's budget is a bucket too: a private chat may get ``per_chat_burst`` messages at
once (a reply and the next question; an alert and the acknowledgement of its receipt), then
``per_chat_per_second``; a group may get a minute's worth at once, then
``per_group_per_minute`` (Telegram's "20 a minute", counted as python-telegram-bot's own
limiter and Telegram's answers count it), so an officers' channel gets a request, its map and
the decision without waiting 3 s between each. A 429 for one chat delays only that chat; a
global one pauses the whole platform for ``retry_after``. Time is the bot's clock: tests
measure the pacing without waiting for it.

One pacer per platform serves everything sent there: the dispatcher's alert copies and the
reply sender's answers, notices and officers' posts. Each request says its ``Priority``:
when several are ready (their chat's slot has come), the global budget goes to the most
urgent first, first come first served within a priority. So a broadcast takes only the
slots that no reply wants, a reply waits at most one slot behind it, and the sum of both
stays within the platform's budget.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from bot.clock import Clock
from bot.config import PlatformRateLimits, RateLimitsConfig

SLICE = 0.1  # seconds: the global bucket's refill period, and so its largest burst
SWEEP_ABOVE = 10_000  # chats remembered before the first sweep of those whose slot passed
# Waits shorter than this are no wait: a float rounding remainder must not become a sleep
# too small to move the clock, repeated for ever.
EPSILON = 1e-9


class Priority(IntEnum):
    """Who takes the platform's next slot when several wait for it: the lowest value."""

    STAFF = 0  # the officers' channels and people with a role: never behind the public
    CONVERSATION = 1  # replies to people: receipts' acknowledgements, prompts, notices
    BULK = 2  # alert copies and their edits: whatever the others leave


class LeakyBucket:
    """``capacity`` messages at once, then ``rate`` per second."""

    def __init__(self, clock: Clock, rate: float, capacity: float) -> None:
        self._clock = clock
        self._rate = rate
        self._capacity = capacity
        self._level = 0.0
        self._updated = clock.monotonic()

    def wait(self) -> float:
        """Seconds until one more message fits (0 when it fits now)."""
        self._leak()
        excess = self._level + 1 - self._capacity
        return 0.0 if excess <= EPSILON * self._rate else excess / self._rate

    def take(self) -> None:
        self._level += 1

    def _leak(self) -> None:
        now = self._clock.monotonic()
        self._level = max(0.0, self._level - (now - self._updated) * self._rate)
        self._updated = now


@dataclass(eq=False, slots=True)
class _Waiter:
    """A request whose chat's slot has come, queued for the global budget."""

    chat_id: str
    priority: Priority
    turn: asyncio.Event = field(default_factory=asyncio.Event)  # set when it may be first


class Pacer:
    def __init__(self, limits: PlatformRateLimits, clock: Clock | None = None) -> None:
        self.limits = limits
        self._clock = clock or Clock()
        rate = max(limits.global_per_second, 1.0)
        self._global = LeakyBucket(self._clock, rate, max(1.0, rate * SLICE))
        self._chat_interval = 1.0 / max(limits.per_chat_per_second, 1e-6)
        self._group_interval = 60.0 / max(limits.per_group_per_minute, 1e-6)
        # How far ahead of its budget a chat may go: its burst beyond the one message.
        self._chat_burst = max(0, limits.per_chat_burst - 1) * self._chat_interval
        self._group_burst = max(0.0, 60.0 - self._group_interval)  # a minute's worth
        # chat → (when its budget is whole again, the burst it may take before that): its
        # next message may go ``burst`` seconds before the first (a virtual scheduling time).
        self._chats: dict[str, tuple[float, float]] = {}
        self._sweep_at = SWEEP_ABOVE
        self._paused_until = 0.0
        self._waiting: dict[Priority, collections.deque[_Waiter]] = {
            priority: collections.deque() for priority in Priority}

    @property
    def rate(self) -> float:
        return self.limits.global_per_second

    def _now(self) -> float:
        return self._clock.monotonic()

    async def acquire(self, chat_id: str, is_group: bool,
                      priority: Priority = Priority.BULK) -> None:
        """Wait until a message to ``chat_id`` respects every budget, then take it.

        The chat's slot is checked again when the global budget is granted: a more urgent
        message to the same chat may have gone meanwhile, and two messages to one chat
        never go closer than its interval, whatever their priorities."""
        while True:
            if (wait := self._chat_wait(chat_id)) > EPSILON:
                await self._clock.sleep(wait)
            if self._free_now(chat_id) or await self._queue(chat_id, priority):
                break
        self._grant(chat_id, is_group)

    def expected_wait(self, chat_id: str) -> float:
        """Seconds before a message to ``chat_id`` could go, as far as the platform's
        pause and the chat's own slot say (not counting the others waiting)."""
        return max(0.0, self._paused_until - self._now(), self._chat_wait(chat_id))

    def _chat_wait(self, chat_id: str) -> float:
        whole, burst = self._chats.get(chat_id, (0.0, 0.0))
        return whole - burst - self._now()

    def _free_now(self, chat_id: str) -> bool:
        """Nobody is queued, nothing is paused and the budget has room: no queueing."""
        return (not any(self._waiting.values()) and self._pause_wait() <= EPSILON
                and self._global.wait() <= EPSILON and self._chat_wait(chat_id) <= EPSILON)

    async def _queue(self, chat_id: str, priority: Priority) -> bool:
        """Wait for the global budget in priority order; False when the chat's slot was
        taken meanwhile (the caller waits for it again)."""
        waiter = _Waiter(chat_id, priority)
        self._waiting[priority].append(waiter)
        try:
            while True:
                if self._first() is not waiter:
                    waiter.turn.clear()
                    await waiter.turn.wait()
                    continue
                if self._chat_wait(chat_id) > EPSILON:
                    return False
                wait = max(self._pause_wait(), self._global.wait())
                if wait <= EPSILON:
                    return True
                # The first waits for the budget; another arriving first meanwhile (more
                # urgent) finds itself first when this sleep ends, and this one steps back.
                await self._clock.sleep(wait)
        finally:
            self._leave(waiter)

    def _first(self) -> _Waiter | None:
        for queue in self._waiting.values():  # in priority order (dicts keep insertion)
            if queue:
                return queue[0]
        return None

    def _leave(self, waiter: _Waiter) -> None:
        queue = self._waiting[waiter.priority]
        if queue and queue[0] is waiter:
            queue.popleft()
        else:  # cancelled while queued behind others
            queue.remove(waiter)
        if (first := self._first()) is not None:
            first.turn.set()

    def _grant(self, chat_id: str, is_group: bool) -> None:
        now = self._now()
        self._global.take()
        if len(self._chats) >= self._sweep_at and chat_id not in self._chats:
            self._sweep(now)
        interval, burst = ((self._group_interval, self._group_burst) if is_group
                           else (self._chat_interval, self._chat_burst))
        whole = self._chats.get(chat_id, (now, 0.0))[0]
        self._chats[chat_id] = (max(whole, now) + interval, burst)

    def _pause_wait(self) -> float:
        return self._paused_until - self._now()

    def pause(self, seconds: float) -> None:
        """The platform said slow down: nobody on it sends for ``seconds``."""
        self._paused_until = max(self._paused_until, self._now() + seconds)

    def delay_chat(self, chat_id: str, seconds: float) -> None:
        """The platform said this chat is over its limit: nothing to it for ``seconds``."""
        whole, burst = self._chats.get(chat_id, (0.0, 0.0))
        self._chats[chat_id] = (max(whole, self._now() + seconds + burst), burst)

    def forget_idle_chats(self) -> None:
        """Drop chats whose next slot has passed (called when the platform has no work)."""
        self._sweep(self._now())

    def __len__(self) -> int:
        return len(self._chats)

    def _sweep(self, now: float) -> None:
        # A broadcast adds a chat per message: sweeping only when the number remembered has
        # doubled since the last sweep keeps the cost O(1) per message and memory flat. A
        # chat is forgotten once its budget is whole again: forgetting is then no change.
        self._chats = {c: state for c, state in self._chats.items() if state[0] > now}
        self._sweep_at = max(SWEEP_ABOVE, 2 * len(self._chats))


def platform_limits(config: RateLimitsConfig, platform: str) -> PlatformRateLimits:
    """The limits configured for ``platform`` (the defaults for one without any)."""
    limits = getattr(config, platform, None)
    return limits if isinstance(limits, PlatformRateLimits) else PlatformRateLimits()


def pacers_for(config: RateLimitsConfig, platforms: Iterable[str],
               clock: Clock) -> dict[str, Pacer]:
    """One pacer per platform, for everything sent there: alert copies and replies."""
    return {platform: Pacer(platform_limits(config, platform), clock) for platform in platforms}
