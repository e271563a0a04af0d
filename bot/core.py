"""The platform-free core: routes what people do to handlers and performs their effects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from bot.alert_approval import decide
from bot.alert_deadlines import tick
from bot.broadcast.dispatcher import Dispatcher
from bot.broadcast.outbox import UnapprovedText, record_refusal
from bot.broadcast.replies import ReplySender, rows_of
from bot.buttons import (
    ApprovalButton,
    ConversationButton,
    ReceiptButton,
    TipButton,
    decode,
    encode,
)
from bot.commands import Command, CommandRegistry, split_command
from bot.context import Context, Services
from bot.conversations.alert import GuidedAlertFlow
from bot.conversations.cap_draft import CAP_DRAFT
from bot.conversations.engine import Answer, Flow, remember_offered, was_offered
from bot.conversations.enrollment import EnrollmentFlow
from bot.conversations.reconsent import ReconsentFlow
from bot.conversations.tip import TipFlow
from bot.conversations.unsubscribe import UnsubscribeFlow
from bot.domain import (
    NO_EFFECTS,
    Attachment,
    ChatRef,
    CommandMenu,
    Effects,
    Incoming,
    Notify,
    Outgoing,
    repaired,
)
from bot.enums import Verdict
from bot.handlers import admin, officer, operator, schedule, stats, subscriber
from bot.handlers import cap as cap_commands
from bot.handlers import lifecycle as lifecycle_commands
from bot.i18n import Translator
from bot.limits import CALLBACK_DATA_BYTES, INPUT_CHARS
from bot.metrics import Metrics
from bot.privacy import purge
from bot.roles import Action, Role
from bot.storage.conversations import ConversationState
from bot.throttle import Throttle
from bot.transports.base import Transport

log = logging.getLogger(__name__)


def _is_xml(attachment: Attachment) -> bool:
    return attachment.filename.lower().endswith(".xml") or "xml" in attachment.mime_type


def _tell_replaced(ctx: Context, effects: Effects) -> Effects:
    """Say which characters were replaced, whenever the bot answers at all (chatter in a
    group gets no answer, so no remark either)."""
    count = ctx.repaired
    if not count or not effects.replies():
        return effects
    return effects + ctx.answer("core.text_repaired_one" if count == 1
                                else "core.text_repaired", count=count)


class Core:
    def __init__(self, services: Services, transports: Mapping[str, Transport],
                 metrics: Metrics | None = None) -> None:
        self.services = services
        self.transports = transports
        self.metrics = metrics or Metrics()
        self.flows: dict[str, Flow] = {
            flow.kind: flow
            for flow in (EnrollmentFlow(), GuidedAlertFlow(), UnsubscribeFlow(), TipFlow(),
                         ReconsentFlow(), CAP_DRAFT)}
        self.registry = CommandRegistry([
            *subscriber.COMMANDS, *operator.COMMANDS, *lifecycle_commands.COMMANDS,
            *schedule.COMMANDS, *officer.COMMANDS, *stats.COMMANDS, *cap_commands.COMMANDS,
            *admin.COMMANDS,
            Command("aide", self._help, Action.SUBSCRIBE, "help.aide",
                    aliases=("help", "commandes"), in_groups=True, keeps_conversation=True),
        ])
        self.dispatcher = Dispatcher(services, transports, self.perform, self.metrics)
        self.replies = ReplySender(services, transports)
        self._lock = asyncio.Lock()
        settings = services.config.throttle
        self.throttle = Throttle(settings.messages_per_minute, settings.burst)

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
        async with self._lock:
            try:
                handled = await self._apply(incoming, replaced)
            except Exception as error:
                log.exception("handler failed for a %s message", incoming.chat.platform)
                self.metrics.handler_failed()
                handled = await self._apply_failure(incoming, error, replaced)
        if handled is None:
            return
        if handled.wake_dispatcher:
            self.dispatcher.wake()
        await self.replies.drain()
        await self.services.db.run_committed()

    async def _apply(self, incoming: Incoming, replaced: int) -> Effects | None:
        """The event's transaction; None when it was handled before."""
        async with self.services.db.transaction():
            if not await self._first_time(incoming):
                log.debug("skipping event %s:%s, handled already", incoming.chat.platform,
                          incoming.event_id)
                return None
            ctx = await Context.of(self.services, incoming, replaced)
            effects = await self._admit(ctx)
            if effects is None:
                effects = await self._route(ctx)
                await remember_offered(ctx, effects)
                effects = _tell_replaced(ctx, effects)
            await self._write(effects, incoming)
            return effects

    async def _apply_failure(self, incoming: Incoming, error: Exception,
                             replaced: int) -> Effects | None:
        """The handler's changes were rolled back: record the event anyway (a replay
        would fail again) with the apology, and a refused outbox in the audit trail."""
        try:
            async with self.services.db.transaction():
                await self._first_time(incoming)
                ctx = await Context.of(self.services, incoming, replaced)
                if isinstance(error, UnapprovedText):
                    await record_refusal(self.services, error, ctx.who)
                effects = _tell_replaced(ctx, ctx.answer("core.internal_error"))
                await self._write(effects, incoming)
                return effects
        except Exception:
            log.exception("could not record a failed %s event", incoming.chat.platform)
            return None

    async def _first_time(self, incoming: Incoming) -> bool:
        if incoming.event_id is None:  # a caller without platform ids (tools, some tests)
            return True
        return await self.services.stores.inbox.first_time(
            incoming.chat.platform, incoming.event_id, self.services.clock.now())

    async def _write(self, effects: Effects, incoming: Incoming | None = None) -> None:
        """The effects as reply-outbox rows, in the caller's transaction."""
        origin = None if incoming is None else incoming.chat
        source = None if incoming is None or incoming.event_id is None else (
            incoming.chat.platform, incoming.event_id)
        officers = self.officers_channels()
        rows = [row for effect in effects.items for row in rows_of(effect, origin, officers)]
        if rows:
            await self.services.stores.replies.add(source, rows, self.services.clock.now())

    async def _admit(self, ctx: Context) -> Effects | None:
        """None when the event may go on; else what to answer instead (maybe nothing)."""
        if ctx.incoming.membership is not None or ctx.incoming.moved_to is not None:
            return None  # platform events, not a person typing
        staff = bool(ctx.roles - {Role.SUBSCRIBER})
        verdict = self.throttle.admit(ctx.who, ctx.now, weight=0.2 if staff else 1.0)
        if verdict is Verdict.ALLOW:
            return None
        if verdict is Verdict.WARN and ctx.is_private:
            return ctx.answer("throttle.slow_down")
        return NO_EFFECTS

    async def _route(self, ctx: Context) -> Effects:
        incoming = ctx.incoming
        if incoming.membership is not None or incoming.moved_to is not None:
            return await self._on_chat_event(ctx)
        if len(incoming.text) > INPUT_CHARS:
            return ctx.answer("core.too_long", max=INPUT_CHARS) if ctx.is_private else NO_EFFECTS
        if incoming.choice is not None:
            return await self._on_choice(ctx, incoming.choice)
        parsed = split_command(incoming.text)
        reconsent = await self._consent_outdated(ctx, parsed)
        if reconsent is not None:
            return reconsent
        if parsed is not None:
            return await self._on_command(ctx, *parsed)
        if ctx.is_private:
            return await self._on_private_text(ctx)
        return NO_EFFECTS  # chatter in groups and officers' channels is none of our business

    async def _consent_outdated(self, ctx: Context,
                                parsed: tuple[str, str] | None) -> Effects | None:
        """A subscriber who agreed to an older privacy notice is asked again before
        anything else (except leaving or seeing their data): the question, or None."""
        subscriber = ctx.subscriber
        if subscriber is None or not ctx.is_private:
            return None
        if subscriber.consent_version == ctx.config.consent_version:
            return None
        command = self.registry.find(parsed[0]) if parsed else None
        if command is not None and command.name in ("stop", "mesdonnees"):
            return None
        state = await ctx.stores.conversations.get(ctx.who)
        if state is not None and state.kind == "reconsent" and parsed is None:
            return None  # the answer to the question: let the conversation take it
        return await self.flows["reconsent"].begin(ctx)

    async def _on_chat_event(self, ctx: Context) -> Effects:
        """The platform told us a chat went away, came back, or changed id; no reply."""
        chat, stores = ctx.incoming.chat, ctx.stores
        if ctx.incoming.moved_to is not None:
            await stores.groups.move(chat.platform, chat.chat_id, ctx.incoming.moved_to)
            return NO_EFFECTS
        status = "blocked" if ctx.incoming.membership == "left" else "active"
        if ctx.is_private and status == "blocked":
            await stores.subscribers.set_status_by_chat(chat.platform, chat.chat_id, status,
                                                        ctx.now)
            await ctx.audit("chat.membership", status=status)  # the actor's pseudonym says who
        elif ctx.is_private:
            sender = ctx.identity
            await stores.subscribers.rejoin(sender.platform, sender.user_id, chat.chat_id,
                                            ctx.now)
            await ctx.audit("chat.membership", status=status)
        else:
            await stores.groups.set_status_by_chat(chat.platform, chat.chat_id, status)
            await ctx.audit("chat.membership", chat=str(chat), status=status)
        return NO_EFFECTS

    async def _on_private_text(self, ctx: Context) -> Effects:
        state = await ctx.stores.conversations.get(ctx.who)
        attachment = ctx.incoming.attachment
        if attachment is not None and ctx.may(Action.ISSUE_ALERT) and _is_xml(attachment):
            return await cap_commands.import_file(ctx, attachment)
        if state is not None:
            return await self._continue(ctx, state, Answer(None, ctx.incoming.text,
                                                           ctx.incoming.location))
        if ctx.incoming.unsupported == "encrypted":
            return ctx.answer("core.encrypted")
        if ctx.incoming.unsupported or attachment is not None:
            return ctx.answer("core.unsupported")
        return ctx.answer("core.not_understood")

    async def _on_command(self, ctx: Context, name: str, args: str) -> Effects:
        command = self.registry.find(name)
        if command is None:
            return ctx.answer("core.unknown_command", name=name) if ctx.is_private \
                else NO_EFFECTS
        misplaced = self._wrong_place(ctx, command)
        if misplaced is not None:
            return misplaced
        if not ctx.may(command.action):
            await ctx.audit("command.refused", command=command.name)
            return ctx.answer("core.not_allowed", name=command.name)
        if not command.keeps_conversation:
            await ctx.stores.conversations.delete(ctx.who)
        return await command.handler(ctx, args)

    def _wrong_place(self, ctx: Context, command: Command) -> Effects | None:
        """None when the command may run in this chat; else the answer saying where."""
        if ctx.is_private and not command.in_private:
            return ctx.answer("core.groups_only", name=command.name)
        if not ctx.is_private and not command.in_groups:
            return ctx.answer("core.private_only", name=command.name)
        return None

    async def _on_choice(self, ctx: Context, data: str) -> Effects:
        match decode(data):
            case ApprovalButton(alert_id, approve):
                return await self._on_approval_choice(ctx, alert_id, approve)
            case ReceiptButton(alert_id) | TipButton(alert_id) as pressed:
                return await self._on_receipt_choice(ctx, pressed, alert_id)
            case ConversationButton() as pressed:
                return await self._on_conversation_choice(ctx, pressed, data)
            case None:
                return await self._stale_choice(ctx, data)

    async def _on_conversation_choice(self, ctx: Context, pressed: ConversationButton,
                                      data: str) -> Effects:
        state = await ctx.stores.conversations.get(ctx.who)
        if state is None or not was_offered(state, pressed):
            return await self._stale_choice(ctx, data)
        return await self._continue(ctx, state, Answer(pressed.value, "", None))

    async def _stale_choice(self, ctx: Context, data: str) -> Effects:
        await ctx.audit("choice.stale", data=data[:CALLBACK_DATA_BYTES])
        return ctx.answer("core.stale_choice")

    async def _on_receipt_choice(self, ctx: Context, pressed: ReceiptButton | TipButton,
                                 alert_id: int) -> Effects:
        """« Reçu » and « J'ai une information » are honoured only from a chat the alert
        was delivered to: the button's data alone proves nothing."""
        chat = ctx.incoming.chat
        deliveries = ctx.stores.deliveries
        if not await deliveries.received(alert_id, chat.platform, chat.chat_id):
            await ctx.audit("choice.stale", alert_id, data=encode(pressed))
            return ctx.answer("core.stale_choice")
        if isinstance(pressed, TipButton):
            return await self.flows["tip"].begin(ctx, alert_id=alert_id)
        if await deliveries.acknowledge(alert_id, chat.platform, chat.chat_id, ctx.now):
            return ctx.answer("receipt.noted", number=alert_id)
        return ctx.answer("receipt.already", number=alert_id)

    async def _on_approval_choice(self, ctx: Context, alert_id: int, approve: bool) -> Effects:
        if not ctx.may(Action.DECIDE_ALERT):
            await ctx.audit("approval.refused_role", alert_id)
            return ctx.answer("core.not_allowed", name="valider")
        return await decide(ctx, alert_id, approve, reason=None)

    async def _continue(self, ctx: Context, state: ConversationState, answer: Answer) -> Effects:
        flow = self.flows.get(state.kind)
        step = flow.steps().get(state.step) if flow else None
        # Past its deadline, or a flow or step removed by an upgrade.
        if state.expires_at <= ctx.now or step is None:
            await ctx.stores.conversations.delete(ctx.who)
            return ctx.answer("conversation.expired")
        return await step(ctx, state, answer)

    async def _help(self, ctx: Context, args: str) -> Effects:
        lines = [ctx.t("help.title")]
        lines += [ctx.t(command.help_key) for command in self.registry.visible_to(ctx.roles)]
        return ctx.text("\n".join(lines))

    def command_menus(self) -> list[CommandMenu]:
        """Menus per audience: everyone sees subscriber commands; each person with a role
        and each officers' channel sees theirs. Built from the registry, never by hand."""
        menus = [CommandMenu("everyone", self._menu(frozenset({Role.SUBSCRIBER}), private=True))]
        officer_roles = frozenset({Role.OFFICER})
        menus.append(CommandMenu("officers", self._menu(officer_roles, private=False)))
        for identity, roles in self.services.roles.people().items():
            menus.append(CommandMenu(identity, self._menu(roles | {Role.SUBSCRIBER}, True)))
        return menus

    def _menu(self, roles: frozenset[Role], private: bool) -> tuple[tuple[str, str], ...]:
        t = Translator(self.services.catalog, self.services.config.language)
        return tuple(
            # Each transport fits the description to its platform's menu (Telegram: 256).
            (c.name, t(c.help_key).split(" — ", 1)[-1])
            for c in self.registry.visible_to(roles)
            if (c.in_private if private else c.in_groups))

    # -- timers ----------------------------------------------------------------------

    async def tick(self) -> None:
        """Whatever the database says is due: reminders, expiries, scheduled sends."""
        async with self._lock:
            effects = await tick(self.services)
        await self.perform(effects)

    async def idle(self) -> None:
        """Wait until no message or clock job is being handled."""
        async with self._lock:
            pass

    async def purge(self) -> dict[str, int]:
        """The data register's retention rules (daily)."""
        async with self._lock:
            return await purge(self.services, self.services.clock.now())

    async def expire_conversations(self) -> int:
        """Close abandoned conversations and tell each person, in their language."""
        stores, now = self.services.stores, self.services.clock.now()
        expired = await stores.conversations.expired(now)
        for state in expired:
            t = Translator(self.services.catalog, state.language)
            notice = Notify(ChatRef(state.platform, state.chat_id),
                            Outgoing(t(f"conversation.timed_out.{state.kind}")))
            async with self.services.db.transaction():  # closed once, told at least once
                await stores.conversations.delete(state.identity)
                await self._write(Effects.of(notice))
        if expired:
            await self.replies.drain()
        return len(expired)

    # -- effects ------------------------------------------------------------------

    async def perform(self, effects: Effects) -> None:
        """Effects of the clock and the dispatcher: through the reply outbox too."""
        async with self.services.db.transaction():
            await self._write(effects)
        if effects.wake_dispatcher:
            self.dispatcher.wake()
        await self.replies.drain()
        await self.services.db.run_committed()

    def officers_channels(self) -> list[ChatRef]:
        return [chat for t in self.transports.values() for chat in t.officers_channels()]
