"""The platform-free core: each incoming event once, in one transaction, and the clock.

An event goes through the middleware (``bot/middleware.py``: flood control, input size,
the consent check) to the router (``bot/router.py``), which hands it to its handler; the
``Effects`` that come back are written to the reply outbox by the effect runner
(``bot/effect_runner.py``) in the same transaction, and sent after commit. The core holds
the wiring, the inbox transaction and the clock's jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.alert_deadlines import tick
from bot.broadcast.dispatcher import Dispatcher
from bot.broadcast.outbox import UnapprovedText, record_refusal
from bot.broadcast.replies import ReplySender
from bot.context import Context, Services, staff_translator
from bot.domain import (
    NO_EFFECTS,
    ChatRef,
    CommandMenu,
    Effects,
    Identity,
    Incoming,
    Notify,
    Outgoing,
    repaired,
)
from bot.effect_runner import EffectRunner
from bot.handlers.referent import expire_request
from bot.i18n import Translator
from bot.metrics import Metrics
from bot.middleware import (
    ConsentCheck,
    FloodControl,
    chain,
    input_limit,
    offered_choices,
    repair_notice,
    staff_name,
    with_repair_notice,
)
from bot.privacy import purge
from bot.roles import Role
from bot.router import Router
from bot.storage.database import Queued
from bot.throttle import Throttle
from bot.transports.base import Transport
from bot.turns import Turns

log = logging.getLogger(__name__)


class Core:
    def __init__(self, services: Services, transports: Mapping[str, Transport],
                 metrics: Metrics | None = None) -> None:
        self.services = services
        services.transports = dict(transports)  # their start links (invitations)
        self.metrics = metrics or Metrics()
        self.router = Router()
        self.runner = EffectRunner(services, transports, self.metrics)
        settings = services.config.throttle
        throttle = Throttle(settings.messages_per_minute, settings.burst)
        self.pipeline = chain([
            FloodControl(throttle), repair_notice, offered_choices, input_limit, staff_name,
            ConsentCheck(self.router.registry, self.router.flows["reconsent"]),
        ], self.router.route)
        # Events overlap (their transactions take turns on the database); clock jobs
        # run alone.
        self._lock = Turns()

    @property
    def dispatcher(self) -> Dispatcher:
        return self.runner.dispatcher

    @property
    def replies(self) -> ReplySender:
        return self.runner.replies

    def command_menus(self) -> list[CommandMenu]:
        """The router's menus: the public's in the bot's language, staff's in theirs."""
        t = Translator(self.services.catalog, self.services.config.language)
        return self.router.command_menus(self.services.roles.people(), t,
                                         staff_translator(self.services))

    # -- incoming ---------------------------------------------------------------

    async def handle(self, incoming: Incoming) -> None:
        """Entry point for every transport; never raises, whatever came in.

        One transaction records the event as handled (inbox), applies the handler's state
        changes and writes its effects to the reply outbox; they are sent after commit. A
        replayed event (a crash before the transport confirmed it) is skipped, so its
        state changes happen once and its replies go at least once.
        """
        self.metrics.incoming(incoming.chat.platform)
        incoming, replaced = repaired(incoming)  # before anything tries to store it
        async with self._lock.shared():
            try:
                handled = await self._apply(incoming, replaced)
            except Exception as error:
                log.exception("handler failed for a %s message", incoming.chat.platform)
                self.metrics.handler_failed()
                handled = await self._apply_failure(incoming, error, replaced)
        if handled is not None:
            await self.runner.after_commit(handled)

    async def _apply(self, incoming: Incoming, replaced: int) -> Effects | None:
        """The event's transaction; None when it was handled before."""
        async with self.services.db.transaction(), self.services.stores.conversations.memo():
            seen = await self._record(incoming)
            ctx = await Context.of(self.services, incoming, replaced)  # runs the inbox row too
            if seen is not None and await seen.answer() != 1:
                log.debug("skipping event %s:%s, handled already", incoming.chat.platform,
                          incoming.event_id)
                return None
            effects = await self.pipeline(ctx)
            await self.runner.write(effects, incoming)
            return effects

    async def _apply_failure(self, incoming: Incoming, error: Exception,
                             replaced: int) -> Effects | None:
        """The handler's changes were rolled back: record the event anyway (a replay
        would fail again) with the apology, and a refused outbox in the audit trail."""
        try:
            async with (self.services.db.transaction(),
                        self.services.stores.conversations.memo()):
                await self._record(incoming)
                ctx = await Context.of(self.services, incoming, replaced)
                if isinstance(error, UnapprovedText):
                    await record_refusal(self.services, error, ctx.who)
                effects = with_repair_notice(ctx, ctx.answer("core.internal_error"))
                await self.runner.write(effects, incoming)
                return effects
        except Exception:
            log.exception("could not record a failed %s event", incoming.chat.platform)
            return None

    async def _record(self, incoming: Incoming) -> Queued[int] | None:
        """The event's inbox row, queued to go with the sender's reads (one trip to the
        database for both); its answer says whether the event is new."""
        if incoming.event_id is None:  # a caller without platform ids (tools, some tests)
            return None
        return await self.services.stores.inbox.record(
            incoming.chat.platform, incoming.event_id, self.services.clock.now())

    # -- timers ----------------------------------------------------------------------

    async def tick(self) -> None:
        """Whatever the database says is due: reminders, expiries, scheduled sends."""
        async with self._lock.alone():
            effects = await tick(self.services)
            expired = await self._expire_requests()
        await self.runner.perform(effects)
        if expired:
            await self.runner.after_commit(NO_EFFECTS)

    async def _expire_requests(self) -> int:
        """Requests to join a vetted community nobody decided in time: each closed and its
        author's notice written in one transaction (a crash between them cannot lose it)."""
        expired = await self.services.stores.invitations.expired_requests(
            self.services.clock.now())
        for request in expired:
            async with self.services.db.transaction():
                await self.runner.write(await expire_request(self.services, request))
        return len(expired)

    async def idle(self) -> None:
        """Wait until no message or clock job is being handled."""
        async with self._lock.alone():
            pass

    async def purge(self) -> dict[str, int]:
        """The data register's retention rules (daily)."""
        async with self._lock.alone():
            return await purge(self.services, self.services.clock.now())

    async def expire_conversations(self) -> int:
        """Close abandoned conversations and tell each person, in their language."""
        stores, now = self.services.stores, self.services.clock.now()
        expired = await stores.conversations.expired(now)
        for state in expired:
            t = Translator(self.services.catalog, state.language, state.platform)
            notice = Notify(ChatRef(state.platform, state.chat_id),
                            Outgoing(t(f"conversation.timed_out.{state.kind}")))
            async with self.services.db.transaction():  # closed once, told at least once
                await stores.conversations.delete(state.identity)
                await self.runner.write(Effects.of(notice))
        if expired:
            await self.runner.after_commit(NO_EFFECTS)
        return len(expired)

    def from_staff(self, sender: Identity, chat: ChatRef) -> bool:
        """Whether an event comes from staff: said in an officers' channel, or by someone
        with a role. The transports' lanes (bot/lanes.py) take these before the public's."""
        return (chat in self.runner.officers_channels()
                or bool(self.services.roles.roles_of(sender) - {Role.SUBSCRIBER}))
