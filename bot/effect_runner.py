"""The effect runner: ``Effects`` become reply-outbox rows in the transaction that decided
them, and after commit the broadcast dispatcher is woken and the reply outbox drained
(files still to build are not waited for: bot/deferred.py).

One runner serves everything that has effects: an incoming event (the core writes them
in the event's transaction), the clock (``tick``), closed conversations, and the
broadcast dispatcher (progress messages, reports), which it was built with.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.broadcast.dispatcher import Dispatcher
from bot.broadcast.pacing import pacers_for
from bot.broadcast.replies import ReplySender, rows_of
from bot.context import Services
from bot.domain import ChatRef, Effects, Incoming
from bot.metrics import Metrics
from bot.organisations import Posting
from bot.transports.base import Transport


class EffectRunner:
    def __init__(self, services: Services, transports: Mapping[str, Transport],
                 metrics: Metrics) -> None:
        self.services = services
        self.transports = transports
        # One pacer per platform for alert copies and replies alike (replies go first).
        pacers = pacers_for(services.config.rate_limits, transports, services.clock)
        self.replies = ReplySender(services, transports, pacers, metrics)
        self.dispatcher = Dispatcher(services, transports, self.perform, metrics, pacers)

    def officers_channels(self) -> list[ChatRef]:
        return [chat for t in self.transports.values() for chat in t.officers_channels()]

    def postings(self, organisation: str | None) -> list[Posting]:
        """Where an organisation's officers' posts go among the running platforms' channels
        (bot/organisations.py); every channel for a post of no organisation, or when the
        configuration has none (its one implicit organisation)."""
        running = self.officers_channels()
        organisations = self.services.organisations
        if organisation is None or organisations.implicit:
            return [Posting(chat, True) for chat in running]
        return [p for p in organisations.postings(organisation) if p.chat in running]

    async def write(self, effects: Effects, incoming: Incoming | None = None) -> None:
        """The effects as reply-outbox rows, in the caller's transaction; ``incoming`` is
        the event they answer (replies go to its chat; a replay finds its rows)."""
        origin = None if incoming is None else incoming.chat
        source = None if incoming is None or incoming.event_id is None else (
            incoming.chat.platform, incoming.event_id)
        rows = [row for effect in effects.items
                for row in rows_of(effect, origin, self.postings)]
        if rows:
            await self.services.stores.replies.add(source, rows, self.services.clock.now())

    async def after_commit(self, effects: Effects) -> None:
        """Once the rows are committed: the broadcast they started goes, the replies go
        (a file still being built, the caller's or another's, is not waited for: its row
        goes when it is done), then the work kept for after commit
        (``Database.after_commit``)."""
        if effects.wake_dispatcher:
            self.dispatcher.wake()
        await self.replies.drain()
        await self.services.db.run_committed()

    async def perform(self, effects: Effects) -> None:
        """Effects of the clock and the dispatcher: in their own transaction, then sent."""
        async with self.services.db.transaction():
            await self.write(effects)
        await self.after_commit(effects)
