"""How fast one platform may be sent to: a global budget, one per chat, one per group.

The platform's limits are met by pacing, not discovered by hitting them: the global
budget is a leaky bucket holding a tenth of a second's messages, so bursts stay small;
each chat has the time of its next allowed message. A 429 for one chat delays only that
chat; a global one pauses the whole platform for ``retry_after``. Time is the bot's clock:
tests measure the pacing without waiting for it.
"""

from __future__ import annotations

import asyncio

from bot.clock import Clock
from bot.config import PlatformRateLimits

SLICE = 0.1  # seconds: the global bucket's refill period, and so its largest burst
SWEEP_ABOVE = 10_000  # chats remembered before the first sweep of those whose slot passed
# Waits shorter than this are no wait: a float rounding remainder must not become a sleep
# too small to move the clock, repeated for ever.
EPSILON = 1e-9


class LeakyBucket:
    """``capacity`` messages at once, then ``rate`` per second.

    Callers wait their turn in a queue (first come, first served) and only the first of
    them watches the clock: it sleeps once until there is room, takes it, and hands the
    turn on. Waiters that each woke every millisecond to try again cost more CPU than the
    sends themselves at 1,000 msg/s (16 wake-ups a message).
    """

    def __init__(self, clock: Clock, rate: float, capacity: float) -> None:
        self._clock = clock
        self._rate = rate
        self._capacity = capacity
        self._level = 0.0
        self._updated = clock.monotonic()
        self._turn = asyncio.Lock()  # FIFO: its waiters are woken one at a time, in order

    async def acquire(self) -> None:
        async with self._turn:
            self._leak()
            while (wait := (self._level + 1 - self._capacity) / self._rate) > EPSILON:
                await self._clock.sleep(wait)
                self._leak()
            self._level += 1

    def _leak(self) -> None:
        now = self._clock.monotonic()
        self._level = max(0.0, self._level - (now - self._updated) * self._rate)
        self._updated = now


class Pacer:
    def __init__(self, limits: PlatformRateLimits, clock: Clock | None = None) -> None:
        self.limits = limits
        self._clock = clock or Clock()
        rate = max(limits.global_per_second, 1.0)
        self._global = LeakyBucket(self._clock, rate, max(1.0, rate * SLICE))
        self._chat_interval = 1.0 / max(limits.per_chat_per_second, 1e-6)
        self._group_interval = 60.0 / max(limits.per_group_per_minute, 1e-6)
        self._next_for_chat: dict[str, float] = {}
        self._sweep_at = SWEEP_ABOVE
        self._paused_until = 0.0

    @property
    def rate(self) -> float:
        return self.limits.global_per_second

    def _now(self) -> float:
        return self._clock.monotonic()

    async def acquire(self, chat_id: str, is_group: bool) -> None:
        """Wait until a message to ``chat_id`` respects every budget, then take it."""
        interval = self._group_interval if is_group else self._chat_interval
        now = self._now()
        slot = max(now, self._next_for_chat.get(chat_id, now))
        if len(self._next_for_chat) >= self._sweep_at:
            self._sweep(now)
        self._next_for_chat[chat_id] = slot + interval
        if slot - now > EPSILON:
            await self._clock.sleep(slot - now)
        await self._respect_pause()
        await self._global.acquire()

    async def _respect_pause(self) -> None:
        while (delay := self._paused_until - self._now()) > EPSILON:
            await self._clock.sleep(delay)

    def pause(self, seconds: float) -> None:
        """The platform said slow down: nobody on it sends for ``seconds``."""
        self._paused_until = max(self._paused_until, self._now() + seconds)

    def delay_chat(self, chat_id: str, seconds: float) -> None:
        self._next_for_chat[chat_id] = max(self._next_for_chat.get(chat_id, 0.0),
                                           self._now() + seconds)

    def forget_idle_chats(self) -> None:
        """Drop chats whose next slot has passed (called when the platform has no work)."""
        self._sweep(self._now())

    def __len__(self) -> int:
        return len(self._next_for_chat)

    def _sweep(self, now: float) -> None:
        # A broadcast adds a chat per message: sweeping only when the number remembered has
        # doubled since the last sweep keeps the cost O(1) per message and memory flat.
        self._next_for_chat = {c: t for c, t in self._next_for_chat.items() if t > now}
        self._sweep_at = max(SWEEP_ABOVE, 2 * len(self._next_for_chat))
