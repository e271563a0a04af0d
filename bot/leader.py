"""Leader and standby: several bot processes on one PostgreSQL database, exactly one leading.

The leader holds a PostgreSQL advisory lock on a connection of its own: it alone receives
updates (polling or webhook), runs the clock and dispatches the outbox. The others wait for
the lock (``Leadership.acquire``) and answer /healthz as standby. PostgreSQL releases the lock
when the leader lets it go or its session ends: a process killed, or a host gone (the server
notices the dead connection through TCP keepalives, LOCK_KEEPALIVE below). The standby that
gets it then starts as any bot starts: the rows the dead leader left 'sending' are retried
(at most its in-flight window twice), the rest of the outbox goes on.

A leader that cannot reach its lock connection any more (``watch``) can no longer prove it
leads: it stops at once (the service manager starts it again, as a standby), so that two
processes never send side by side for longer than LOST_AFTER.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from bot.storage.postgresql import connect, redact

log = logging.getLogger(__name__)
LOCK_KEY = 7340042  # the same for every process of one database
TRY_EVERY = 0.5  # seconds between a standby's attempts
LOST_AFTER = 3.0  # seconds without an answer on the lock connection: leadership lost
CHECK_EVERY = 1.0
# Keepalives on the lock connection, both ends: the server drops a vanished leader's session
# (and so its lock) after about idle + interval × count seconds (its side, set for this
# session); the leader notices a vanished server as fast (libpq's side).
LOCK_KEEPALIVE: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                  "keepalives_count": 3, "tcp_user_timeout": 10_000}
SERVER_KEEPALIVE = ("SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2",
                    "SET tcp_keepalives_count = 3", "SET tcp_user_timeout = 10000")


class Leadership:
    """The advisory lock of one database, on a dedicated connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.leading = False
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        """Wait until this process leads (a new connection after any failure)."""
        announced = False
        while True:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = await connect(self.url, **LOCK_KEEPALIVE)
                    for setting in SERVER_KEEPALIVE:
                        await self._connection.execute(setting)
                cursor = await self._connection.execute("SELECT pg_try_advisory_lock($1)",
                                                        (LOCK_KEY,))
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    self.leading = True
                    log.info("leader: this process leads (advisory lock on %s)",
                             redact(self.url))
                    return
            except psycopg.Error as error:
                log.warning("leader: cannot reach the database (%s); trying again", error)
                await self._drop()
            if not announced:
                log.info("leader: another process leads; this one stands by")
                announced = True
            await asyncio.sleep(TRY_EVERY)

    def watch(self, lost: Callable[[], None]) -> None:
        """Call ``lost`` once the lock connection stops answering (leadership not proven)."""
        self._watcher = asyncio.create_task(self._watch(lost), name="leadership")

    async def _watch(self, lost: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            connection = self._connection
            try:
                assert connection is not None
                await asyncio.wait_for(connection.execute("SELECT 1"), LOST_AFTER)
            except (psycopg.Error, TimeoutError, AssertionError) as error:
                self.leading = False
                log.critical("leader: the lock's connection is lost (%s): this process stops"
                             " leading and exits", type(error).__name__)
                lost()
                return

    async def release(self) -> None:
        """Let a standby take over now (a clean stop); closing the session releases it."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        self.leading = False
        await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


async def wait_to_lead(leadership: Leadership, stop: asyncio.Event,
                       listen: tuple[str, int] | None) -> bool:
    """Stand by until this process leads (True) or is asked to stop (False). Meanwhile
    ``listen`` (monitoring.listen) answers /healthz as standby: the process is fine, and ready
    to take over; the services are built only once it leads, from what the database holds
    then (roles granted, conversations, the outbox)."""
    runner = await _standby_endpoint(listen) if listen is not None else None
    leading = asyncio.create_task(leadership.acquire(), name="standby")
    stopping = asyncio.create_task(stop.wait(), name="standby stop")
    try:
        await asyncio.wait({leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (leading, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if runner is not None:  # the port goes to the leader's own monitoring
            await runner.cleanup()
    if not leadership.leading:
        await leadership.release()
    return leadership.leading


async def _standby_endpoint(listen: tuple[str, int]) -> Any:
    from aiohttp import web

    from bot.http_serving import listen as serve

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "standby", "checks": {
            "leader": {"ok": True, "leading": False}}})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = await serve(app, *listen)
    log.info("leader: standing by; /healthz on %s port %d answers standby", *listen)
    return runner
