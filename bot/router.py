"""The router: what a person did — a command, a pressed choice, private text, a chat
event — to the handler that answers it, and back the ``Effects`` it returns.

It reads and writes the stores only: admission (flood control, the consent check) is the
middleware's (``bot/middleware.py``), the event's transaction the core's, and sending the
effect runner's (``bot/effect_runner.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.alert_approval import decide
from bot.buttons import (
    ApprovalButton,
    ConversationButton,
    ReceiptButton,
    TipButton,
    decode,
    encode,
)
from bot.commands import Command, CommandRegistry, split_command
from bot.context import Context
from bot.conversations.alert import GuidedAlertFlow
from bot.conversations.cap_draft import CAP_DRAFT
from bot.conversations.engine import Answer, Flow, was_offered
from bot.conversations.enrollment import EnrollmentFlow
from bot.conversations.reconsent import ReconsentFlow
from bot.conversations.tip import TipFlow
from bot.conversations.unsubscribe import UnsubscribeFlow
from bot.domain import NO_EFFECTS, Attachment, CommandMenu, Effects
from bot.handlers import admin, officer, operator, photos, referent, schedule, stats, subscriber
from bot.handlers import cap as cap_commands
from bot.handlers import lifecycle as lifecycle_commands
from bot.i18n import Translator
from bot.limits import CALLBACK_DATA_BYTES
from bot.roles import Action, Role
from bot.storage.conversations import ConversationState


def _is_xml(attachment: Attachment) -> bool:
    return attachment.filename.lower().endswith(".xml") or "xml" in attachment.mime_type


class Router:
    def __init__(self) -> None:
        self.flows: dict[str, Flow] = {
            flow.kind: flow
            for flow in (EnrollmentFlow(), GuidedAlertFlow(), UnsubscribeFlow(), TipFlow(),
                         ReconsentFlow(), CAP_DRAFT)}
        self.registry = CommandRegistry([
            *subscriber.COMMANDS, *operator.COMMANDS, *lifecycle_commands.COMMANDS,
            *schedule.COMMANDS, *officer.COMMANDS, *stats.COMMANDS, *cap_commands.COMMANDS,
            *admin.COMMANDS, *referent.COMMANDS,
            Command("aide", self._help, Action.SUBSCRIBE, "help.aide",
                    aliases=("help", "commandes"), in_groups=True, keeps_conversation=True),
        ])

    async def route(self, ctx: Context) -> Effects:
        incoming = ctx.incoming
        if incoming.about_chat:
            return await self._on_chat_event(ctx)
        if incoming.choice is not None:
            return await self._on_choice(ctx, incoming.choice)
        parsed = split_command(incoming.text)
        if parsed is not None:
            return await self._on_command(ctx, *parsed)
        if ctx.is_private:
            return await self._on_private_text(ctx)
        return NO_EFFECTS  # chatter in groups and officers' channels is none of our business

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
        if photos.wanted(ctx):
            return await photos.received(ctx, None if state is None else state.kind)
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
            # A member of the public is told plainly whom the command is for (no warning
            # that their attempt is recorded: they did nothing wrong); staff, that it
            # belongs to another role.
            staff = ctx.roles - {Role.SUBSCRIBER}
            return ctx.answer("core.not_allowed" if staff else "core.staff_only",
                              name=command.name)
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
        return ctx.privately("core.stale_choice")

    async def _on_receipt_choice(self, ctx: Context, pressed: ReceiptButton | TipButton,
                                 alert_id: int) -> Effects:
        """« Reçu » and « J'ai une information » are honoured only from a chat the alert
        was delivered to: the button's data alone proves nothing."""
        chat = ctx.incoming.chat
        deliveries = ctx.stores.deliveries
        noted: bool | None = None
        if isinstance(pressed, TipButton):
            received = await deliveries.received(alert_id, chat.platform, chat.chat_id)
        else:  # the receipt is noted (or found noted) as the copy is found
            noted = await deliveries.acknowledge(alert_id, chat.platform, chat.chat_id, ctx.now)
            received = noted is not None
        if not received:
            await ctx.audit("choice.stale", alert_id, data=encode(pressed))
            return ctx.privately("core.stale_choice")
        if isinstance(pressed, TipButton):
            return await self.flows["tip"].begin(ctx, alert_id=alert_id)
        return ctx.answer("receipt.noted" if noted else "receipt.already", number=alert_id)

    async def _on_approval_choice(self, ctx: Context, alert_id: int, approve: bool) -> Effects:
        if not ctx.may(Action.DECIDE_ALERT):  # a ✅ pressed or a reaction, not a command
            await ctx.audit("approval.refused_role", alert_id)
            return ctx.privately("approval.press_refused")
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

    def command_menus(self, people: Mapping[str, frozenset[Role]], t: Translator,
                      staff: Translator | None = None) -> list[CommandMenu]:
        """Menus per audience: everyone sees subscriber commands; each person with a role
        (``people``) and each officers' channel sees theirs. Built from the registry, never
        by hand; described in the bot's language (``t``), staff's in the staff language."""
        staff = staff or t
        menus = [CommandMenu("everyone", self._menu(frozenset({Role.SUBSCRIBER}), t, True))]
        officer_roles = frozenset({Role.OFFICER})
        menus.append(CommandMenu("officers", self._menu(officer_roles, staff, private=False)))
        for identity, roles in people.items():
            menus.append(CommandMenu(identity, self._menu(roles | {Role.SUBSCRIBER}, staff,
                                                          True)))
        return menus

    def _menu(self, roles: frozenset[Role], t: Translator,
              private: bool) -> tuple[tuple[str, str], ...]:
        return tuple(
            # Each transport fits the description to its platform's menu (Telegram: 256).
            (c.name, t(c.help_key).split(" — ", 1)[-1])
            for c in self.registry.visible_to(roles)
            if (c.in_private if private else c.in_groups))
