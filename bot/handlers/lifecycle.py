"""After the broadcast: updates, all-clear, recall or withdrawal, and an alert's journal."""

from __future__ import annotations

import re

from bot.alert_approval import REQUEST, AlertInputError, follow_up, officers_request, require_body
from bot.closing import Ending, end_alert
from bot.commands import Command
from bot.context import Context
from bot.domain import ChatRef, EditTracked, Notify, Outgoing
from bot.enums import AlertKind, AlertStatus
from bot.limits import TIP_TEXT_CHARS
from bot.render import when
from bot.roles import Action, speaks_for_alert
from bot.storage.alerts import Alert

NUMBER_AND_TEXT = re.compile(r"^n?°?\s*(\d{1,9})\s*(?::(.*))?$", re.IGNORECASE | re.DOTALL)
BROADCAST = ("broadcasting", "done")


async def _target(ctx: Context, args: str, usage: str) -> tuple[Alert, str] | None:
    match = NUMBER_AND_TEXT.match(args.strip())
    if match is None:
        ctx.say(usage)
        return None
    alert = await ctx.stores.alerts.get(int(match.group(1)))
    if alert is None:
        ctx.say("approval.not_found", number=match.group(1))
        return None
    return alert, (match.group(2) or "").strip()


def _open_broadcast(ctx: Context, alert: Alert) -> bool:
    """Follow-ups apply to an alert that went out and is not over yet."""
    if alert.kind != "alert":
        ctx.say("lifecycle.not_an_alert", number=alert.id, parent=alert.parent_id or alert.id)
    elif alert.status not in BROADCAST:
        ctx.say("lifecycle.not_broadcast", number=alert.id,
                status=ctx.t(f"status.{alert.status}"))
    elif alert.closed is not None:
        ctx.say("lifecycle.already_closed", number=alert.id,
                closed=ctx.t(f"lifecycle.closed.{alert.closed}"))
    else:
        return True
    return False


async def _may_close(ctx: Context, alert: Alert) -> bool:
    """Ending or recalling is for an open broadcast, by the alert's organisation."""
    if not _open_broadcast(ctx, alert):
        return False
    if speaks_for_alert(ctx.identity, ctx.roles, alert.requested_by):
        return True
    await ctx.audit("alert.close_refused", alert.id)
    ctx.say("lifecycle.not_your_alert", number=alert.id)
    return False


async def update(ctx: Context, args: str) -> None:
    """``/suite N : texte`` — a threaded update, approved like the category requires."""
    found = await _target(ctx, args, "lifecycle.usage_update")
    if found is None or not _open_broadcast(ctx, found[0]):
        return
    try:
        body = require_body(found[1])
    except AlertInputError as error:
        ctx.say(error.key, **error.params)
        return
    await follow_up(ctx, found[0], AlertKind.UPDATE, body)


async def end(ctx: Context, args: str) -> None:
    """``/fin N [: texte]`` — the alert ends at once: every delivered copy marked LEVÉE
    and the bot's own closing words sent. A text of the operator's is a closing message
    that goes to the officers first, like ``/suite``: an operator ending an alert at 3 a.m.
    should not have to wait for an officer for it to stop, but nothing they write reaches
    a subscriber unapproved."""
    found = await _target(ctx, args, "lifecycle.usage_end")
    if found is None or not await _may_close(ctx, found[0]):
        return
    alert, text = found
    try:
        body = require_body(text) if text else ""
    except AlertInputError as error:
        ctx.say(error.key, **error.params)
        return
    async with ctx.services.db.transaction():
        ending = await _end(ctx, alert, "ended")
        if ending is None:
            return
        closing = await follow_up(ctx, alert, AlertKind.CLOSING, body) if body else None
    if closing is None:
        ctx.say("lifecycle.ended", number=alert.id, child=ending.child.id)
    else:
        ctx.say("lifecycle.ended_text_pending", number=alert.id, child=ending.child.id,
                closing=closing.id)


async def _end(ctx: Context, alert: Alert, how: str) -> Ending | None:
    ending = await end_alert(ctx.services, ctx.t, alert, how, ctx.who, ctx.incoming.chat,
                             ctx.now)
    if ending is None:
        ctx.say("lifecycle.already_closed", number=alert.id, closed="")
        return None
    ctx.effects.items.extend(ending.effects)
    ctx.effects.wake_dispatcher = True
    return ending


async def withdraw(ctx: Context, args: str) -> None:
    """``/retirer N`` — a pending alert is withdrawn by its requester; a broadcast one is
    recalled: its copies deleted where the platform allows, pending sends dropped."""
    found = await _target(ctx, args, "lifecycle.usage_withdraw")
    if found is None:
        return
    alert = found[0]
    if alert.status == "pending":
        await _withdraw_pending(ctx, alert)
    elif await _may_close(ctx, alert):
        async with ctx.services.db.transaction():
            ending = await _end(ctx, alert, "recalled")
        if ending is not None:
            ctx.say("lifecycle.recalling", number=alert.id, child=ending.child.id)


async def _withdraw_pending(ctx: Context, alert: Alert) -> None:
    if alert.requested_by != ctx.who:
        ctx.say("lifecycle.withdraw_not_yours", number=alert.id)
        return
    if not await ctx.stores.alerts.transition(alert.id, AlertStatus.PENDING,
                                              AlertStatus.WITHDRAWN, ctx.who, ctx.now):
        ctx.say("approval.not_pending", number=alert.id, status="")
        return
    await ctx.audit("alert.withdrawn", alert.id)
    withdrawn = await ctx.stores.alerts.get(alert.id)
    assert withdrawn is not None
    request = await officers_request(ctx.services, ctx.t, withdrawn, ctx.t(
        "lifecycle.withdrawn_status", who=ctx.who))
    ctx.effects.items.append(EditTracked(REQUEST, alert.id, request))
    ctx.say("lifecycle.withdrawn", number=alert.id)


async def journal(ctx: Context, args: str) -> None:
    """``/journal N`` — every state change, decision and follow-up of an alert."""
    found = await _target(ctx, args, "lifecycle.usage_journal")
    if found is None:
        return
    alert = found[0]
    lines = [ctx.t("lifecycle.journal_title", number=alert.id, category=alert.category,
                   perimeter=alert.perimeter)]
    for status, actor, at in await ctx.stores.alerts.transitions(alert.id):
        lines.append(f"{when(ctx.services.local(at))} · {ctx.t(f'status.{status}')} · {actor}")
    for approval in await ctx.stores.alerts.approvals(alert.id):
        lines.append(ctx.t(f"lifecycle.journal_{approval.decision}", who=approval.officer,
                           time=when(ctx.services.local(approval.decided_at))))
    for child in await ctx.stores.alerts.children(alert.id):
        lines.append(ctx.t("lifecycle.journal_child", number=child.id,
                           kind=ctx.t(f"lifecycle.kind.{child.kind}"),
                           status=ctx.t(f"status.{child.status}")))
    counts = await ctx.stores.deliveries.counts(alert.id)
    lines.append(ctx.t("lifecycle.journal_counts", sent=counts.sent, failed=counts.failed,
                       blocked=counts.blocked, receipts=counts.acknowledged))
    ctx.reply("\n".join(lines))


async def answer_tip(ctx: Context, args: str) -> None:
    """``/repondre T <texte>`` — answer a tip; the subscriber sees only the text."""
    match = re.match(r"^n?°?\s*(\d{1,9})\s+(.+)$", args.strip(), re.DOTALL)
    if match is None:
        ctx.say("tip.usage_answer")
        return
    tip = await ctx.stores.tips.get(int(match.group(1)))
    if tip is None:
        ctx.say("tip.unknown", tip=match.group(1))
        return
    text = match.group(2).strip()[:TIP_TEXT_CHARS]
    await ctx.stores.tips.mark_answered(tip.id, ctx.now)
    await ctx.audit("tip.answered", tip.alert_id, tip=tip.id)
    ctx.effects.items.append(Notify(ChatRef(tip.platform, tip.chat_id), Outgoing(
        ctx.t("tip.answer", tip=tip.id, number=tip.alert_id, text=text))))
    ctx.say("tip.answered", tip=tip.id)


COMMANDS = [
    Command("suite", update, Action.ISSUE_ALERT, "help.suite", in_groups=True),
    Command("fin", end, Action.CLOSE_ALERT, "help.fin", in_groups=True),
    Command("retirer", withdraw, Action.CLOSE_ALERT, "help.retirer", in_groups=True),
    Command("journal", journal, Action.LIST_ALERTS, "help.journal", in_groups=True),
    Command("repondre", answer_tip, Action.ANSWER_TIP, "help.repondre", in_groups=True),
]
