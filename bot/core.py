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
    Attachment,
    ChatRef,
    CommandMenu,
    Effects,
    Incoming,
    Notify,
    Outgoing,
    Reply,
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


def _tell_replaced(ctx: Context, count: int) -> None:
    """Say which characters were replaced, whenever the bot answers at all (chatter in a
    group gets no answer, so no remark either)."""
    if count and any(isinstance(effect, Reply) for effect in ctx.effects.items):
        ctx.say("core.text_repaired_one" if count == 1 else "core.text_repaired", count=count)


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
        await self.replies.send_ready()
        await self.services.db.run_committed()

    async def _apply(self, incoming: Incoming, replaced: int) -> Effects | None:
        """The event's transaction; None when it was handled before."""
        async with self.services.db.transaction():
            if not await self._first_time(incoming):
                log.debug("skipping event %s:%s, handled already", incoming.chat.platform,
                          incoming.event_id)
                return None
            ctx = await self._context(incoming)
            if self._admitted(ctx):
                await self._route(ctx)
                await remember_offered(ctx)
                _tell_replaced(ctx, replaced)
            await self._write(ctx.effects, incoming)
            return ctx.effects

    async def _apply_failure(self, incoming: Incoming, error: Exception,
                             replaced: int) -> Effects | None:
        """The handler's changes were rolled back: record the event anyway (a replay
        would fail again) with the apology, and a refused outbox in the audit trail."""
        try:
            async with self.services.db.transaction():
                await self._first_time(incoming)
                ctx = await self._context(incoming)
                if isinstance(error, UnapprovedText):
                    await record_refusal(self.services, error, ctx.who)
                ctx.say("core.internal_error")
                _tell_replaced(ctx, replaced)
                await self._write(ctx.effects, incoming)
                return ctx.effects
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

    def _admitted(self, ctx: Context) -> bool:
        if ctx.incoming.membership is not None or ctx.incoming.moved_to is not None:
            return True  # platform events, not a person typing
        staff = bool(ctx.roles - {Role.SUBSCRIBER})
        verdict = self.throttle.admit(ctx.who, ctx.now, weight=0.2 if staff else 1.0)
        if verdict is Verdict.WARN and ctx.is_private:
            ctx.say("throttle.slow_down")
        return verdict is Verdict.ALLOW

    async def _context(self, incoming: Incoming) -> Context:
        sender = incoming.sender
        found = await self.services.stores.subscribers.get(sender.platform, sender.user_id)
        language = found.language if found else self.services.config.language
        if found is None:
            state = await self.services.stores.conversations.get(str(sender))
            language = state.language if state else language
        return Context(self.services, incoming, found, Translator(self.services.catalog, language))

    async def _route(self, ctx: Context) -> None:
        incoming = ctx.incoming
        if incoming.membership is not None or incoming.moved_to is not None:
            await self._on_chat_event(ctx)
            return
        if len(incoming.text) > INPUT_CHARS:
            if ctx.is_private:
                ctx.say("core.too_long", max=INPUT_CHARS)
            return
        if incoming.choice is not None:
            await self._on_choice(ctx, incoming.choice)
            return
        parsed = split_command(incoming.text)
        if await self._consent_outdated(ctx, parsed):
            return
        if parsed is not None:
            await self._on_command(ctx, *parsed)
        elif ctx.is_private:
            await self._on_private_text(ctx)
        # Chatter in groups and officers' channels is none of the bot's business.

    async def _consent_outdated(self, ctx: Context, parsed: tuple[str, str] | None) -> bool:
        """A subscriber who agreed to an older privacy notice is asked again before
        anything else (except leaving or seeing their data)."""
        subscriber = ctx.subscriber
        if subscriber is None or not ctx.is_private:
            return False
        if subscriber.consent_version == self.services.config.consent_version:
            return False
        command = self.registry.find(parsed[0]) if parsed else None
        if command is not None and command.name in ("stop", "mesdonnees"):
            return False
        state = await self.services.stores.conversations.get(ctx.who)
        if state is not None and state.kind == "reconsent" and parsed is None:
            return False  # the answer to the question: let the conversation take it
        await self.flows["reconsent"].begin(ctx)
        return True

    async def _on_chat_event(self, ctx: Context) -> None:
        """The platform told us a chat went away, came back, or changed id; no reply."""
        chat, stores = ctx.incoming.chat, self.services.stores
        if ctx.incoming.moved_to is not None:
            await stores.groups.move(chat.platform, chat.chat_id, ctx.incoming.moved_to)
            return
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

    async def _on_private_text(self, ctx: Context) -> None:
        state = await self.services.stores.conversations.get(ctx.who)
        attachment = ctx.incoming.attachment
        if attachment is not None and ctx.may(Action.ISSUE_ALERT) and _is_xml(attachment):
            await cap_commands.import_file(ctx, attachment)
        elif state is not None:
            await self._continue(ctx, state, Answer(None, ctx.incoming.text,
                                                    ctx.incoming.location))
        elif ctx.incoming.unsupported == "encrypted":
            ctx.say("core.encrypted")
        elif ctx.incoming.unsupported or attachment is not None:
            ctx.say("core.unsupported")
        else:
            ctx.say("core.not_understood")

    async def _on_command(self, ctx: Context, name: str, args: str) -> None:
        command = self.registry.find(name)
        if command is None:
            if ctx.is_private:
                ctx.say("core.unknown_command", name=name)
            return
        if not self._right_place(ctx, command):
            return
        if not ctx.may(command.action):
            await ctx.audit("command.refused", command=command.name)
            ctx.say("core.not_allowed", name=command.name)
            return
        if not command.keeps_conversation:
            await self.services.stores.conversations.delete(ctx.who)
        await command.handler(ctx, args)

    def _right_place(self, ctx: Context, command: Command) -> bool:
        if ctx.is_private and not command.in_private:
            ctx.say("core.groups_only", name=command.name)
            return False
        if not ctx.is_private and not command.in_groups:
            ctx.say("core.private_only", name=command.name)
            return False
        return True

    async def _on_choice(self, ctx: Context, data: str) -> None:
        match decode(data):
            case ApprovalButton(alert_id, approve):
                await self._on_approval_choice(ctx, alert_id, approve)
            case ReceiptButton(alert_id) | TipButton(alert_id) as pressed:
                await self._on_receipt_choice(ctx, pressed, alert_id)
            case ConversationButton() as pressed:
                await self._on_conversation_choice(ctx, pressed, data)
            case None:
                await self._stale_choice(ctx, data)

    async def _on_conversation_choice(self, ctx: Context, pressed: ConversationButton,
                                      data: str) -> None:
        state = await self.services.stores.conversations.get(ctx.who)
        if state is None or not was_offered(state, pressed):
            await self._stale_choice(ctx, data)
            return
        await self._continue(ctx, state, Answer(pressed.value, "", None))

    async def _stale_choice(self, ctx: Context, data: str) -> None:
        await ctx.audit("choice.stale", data=data[:CALLBACK_DATA_BYTES])
        ctx.say("core.stale_choice")

    async def _on_receipt_choice(self, ctx: Context, pressed: ReceiptButton | TipButton,
                                 alert_id: int) -> None:
        """« Reçu » and « J'ai une information » are honoured only from a chat the alert
        was delivered to: the button's data alone proves nothing."""
        chat = ctx.incoming.chat
        deliveries = self.services.stores.deliveries
        if not await deliveries.received(alert_id, chat.platform, chat.chat_id):
            await ctx.audit("choice.stale", alert_id, data=encode(pressed))
            ctx.say("core.stale_choice")
        elif isinstance(pressed, TipButton):
            await self.flows["tip"].begin(ctx, alert_id=alert_id)
        elif await deliveries.acknowledge(alert_id, chat.platform, chat.chat_id, ctx.now):
            ctx.say("receipt.noted", number=alert_id)
        else:
            ctx.say("receipt.already", number=alert_id)

    async def _on_approval_choice(self, ctx: Context, alert_id: int, approve: bool) -> None:
        if not ctx.may(Action.DECIDE_ALERT):
            await ctx.audit("approval.refused_role", alert_id)
            ctx.say("core.not_allowed", name="valider")
            return
        await decide(ctx, alert_id, approve, reason=None)

    async def _continue(self, ctx: Context, state: ConversationState, answer: Answer) -> None:
        if state.expires_at <= ctx.now:
            await self.services.stores.conversations.delete(ctx.who)
            ctx.say("conversation.expired")
            return
        flow = self.flows.get(state.kind)
        step = flow.steps().get(state.step) if flow else None
        if step is None:  # a flow or step removed by an upgrade
            await self.services.stores.conversations.delete(ctx.who)
            ctx.say("conversation.expired")
            return
        await step(ctx, state, answer)

    async def _help(self, ctx: Context, args: str) -> None:
        lines = [ctx.t("help.title")]
        lines += [ctx.t(command.help_key) for command in self.registry.visible_to(ctx.roles)]
        ctx.reply("\n".join(lines))

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
                await self._write(Effects([notice]))
        if expired:
            await self.replies.send_ready()
        return len(expired)

    # -- effects ------------------------------------------------------------------

    async def perform(self, effects: Effects) -> None:
        """Effects of the clock and the dispatcher: through the reply outbox too."""
        async with self.services.db.transaction():
            await self._write(effects)
        if effects.wake_dispatcher:
            self.dispatcher.wake()
        await self.replies.send_ready()
        await self.services.db.run_committed()

    def officers_channels(self) -> list[ChatRef]:
        return [chat for t in self.transports.values() for chat in t.officers_channels()]
