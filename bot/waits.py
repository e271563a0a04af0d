"""Waiting for an event with a timeout, without losing a cancellation.

``asyncio.wait_for(event.wait(), timeout)`` runs the wait in a task of its own, and on
Python 3.11 it returns normally when it is cancelled at the instant that task finishes (the
event set, say, by another task being stopped): the cancellation is lost, and a loop that
should stop waits on. ``asyncio.timeout`` waits in the caller's own task, so a
cancellation always arrives.
"""

from __future__ import annotations

import asyncio


async def until_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds have passed (False)."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
