"""The bot's pending updates and getUpdates long polling, with Telegram's semantics."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Any

from telegram import TelegramObject, Update

from .errors import POLL_TERMINATED, conflict
from .payloads import ptb_json
from .stats import Stats

# Update kinds Telegram leaves out unless explicitly listed in allowed_updates.
OPT_IN_KINDS = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class UpdateQueue:
    """Updates wait here until confirmed by a getUpdates ``offset`` above their id.

    ``allowed_updates`` is remembered between calls and, as on Telegram, filters updates when
    they are *created* - updates already queued are delivered whatever the new setting.
    """

    def __init__(self, stats: Stats, first_update_id: int = 1) -> None:
        self._stats = stats
        self._pending: deque[dict[str, Any]] = deque()
        self._next_id = first_update_id
        self._allowed: frozenset[str] = frozenset()  # empty: Telegram's default set
        self._wakeup = asyncio.Event()
        self._generation = 0  # bumped by every getUpdates; an older long poll then gets 409
        self._closed = False

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending(self) -> list[dict[str, Any]]:
        return list(self._pending)

    def set_allowed(self, kinds: Iterable[str]) -> None:
        self._allowed = frozenset(kinds)

    def accepts(self, kind: str) -> bool:
        if self._allowed:
            return kind in self._allowed
        return kind not in OPT_IN_KINDS

    def push(self, kind: str, payload: TelegramObject) -> dict[str, Any] | None:
        """Queue ``Update(update_id, kind=payload)``; None if allowed_updates filters it out."""
        if not self.accepts(kind):
            self._stats.dropped_updates += 1
            return None
        update = ptb_json(Update(self._next_id, **{kind: payload}))  # type: ignore[arg-type]
        self._next_id += 1
        self._pending.append(update)
        self._wake()
        return update

    def confirm(self, offset: int | None) -> None:
        """Forget updates below ``offset``; a negative offset keeps only the last -offset ones."""
        if offset is None or offset == 0:
            return
        if offset < 0:
            while len(self._pending) > -offset:
                self._pending.popleft()
            return
        while self._pending and self._pending[0]["update_id"] < offset:
            self._pending.popleft()

    def clear(self) -> None:
        self._pending.clear()

    async def next_pending(self) -> dict[str, Any] | None:
        """The oldest pending update, waiting for one (webhook delivery); None once closed."""
        while not self._closed:
            if self._pending:
                return self._pending[0]
            await self._wakeup.wait()
        return None

    def confirm_update(self, update_id: int) -> None:
        """Forget the oldest update once the webhook took it (unless it was dropped since)."""
        if self._pending and self._pending[0]["update_id"] == update_id:
            self._pending.popleft()

    async def poll(self, limit: int, timeout: float) -> list[dict[str, Any]]:
        """Return up to ``limit`` updates, waiting up to ``timeout`` s for the first one."""
        self._generation += 1
        generation = self._generation
        self._wake()  # Telegram ends a concurrent long poll with 409 Conflict
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._closed:
                return []
            if generation != self._generation:
                raise conflict(POLL_TERMINATED)
            if self._pending:
                return [self._pending[i] for i in range(min(limit, len(self._pending)))]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            wakeup = self._wakeup
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), remaining)

    def open(self) -> None:
        self._closed = False

    def close(self) -> None:
        """Release every waiting long poll (with an empty result) - used on server stop."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()
