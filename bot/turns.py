"""Turns: work that may overlap, and work that must run alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Turns:
    """Work that may overlap (``shared``: incoming events, whose transactions take turns
    on the database anyway, so one can start while the previous commits) and work that
    runs alone (``alone``: the clock's jobs, which run several statements and must not see
    an event half-way). A job waiting closes the door to new shared work, waits for the
    shared work in progress, runs, then opens the door again."""

    def __init__(self) -> None:
        self._shared = 0
        self._none_shared = asyncio.Event()
        self._none_shared.set()
        self._open = asyncio.Event()
        self._open.set()
        self._alone = asyncio.Lock()

    def locked(self) -> bool:
        """Whether any work holds a turn."""
        return self._shared > 0 or self._alone.locked()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        while not self._open.is_set():
            await self._open.wait()
        self._shared += 1
        self._none_shared.clear()
        try:
            yield
        finally:
            self._shared -= 1
            if not self._shared:
                self._none_shared.set()

    @asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        async with self._alone:
            self._open.clear()
            try:
                await self._none_shared.wait()
                yield
            finally:
                self._open.set()
