"""After the broadcast: updates, all-clear, recall or withdrawal, and an alert's journal."""

from __future__ import annotations

import re

from bot.alerts import REQUEST, AlertInputError, follow_up, officers_request, require_body
from bot.commands import Command
from bot.context import Context
from bot.domain import ChatRef, EditTracked, Notify, Outgoing
from bot.render import when
from bot.roles import Action
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
    await follow_up(ctx, found[0], "update", body)


async def end(ctx: Context, args: str) -> None:
    """``/fin N [: texte]`` — closing message, and every delivered copy marked LEVÉE."""
    found = await _target(ctx, args, "lifecycle.usage_end")
    if found is None or not _open_broadcast(ctx, found[0]):
        return
    alert, text = found
    if len(text) > 4000:
        ctx.say("alert.text_too_long", length=len(text), max=4000)
        return
    # Closing and the all-clear's outbox rows are one transaction: a failure between them
    # must not leave an alert closed whose all-clear never goes (a retry would be refused).
    async with ctx.services.db.transaction():
        if not await ctx.stores.alerts.close(alert.id, "ended", ctx.now):
            ctx.say("lifecycle.already_closed", number=alert.id, closed="")
            return
        child = await follow_up(ctx, alert, "all_clear", text or ctx.t("lifecycle.default_end"))
    ctx.say("lifecycle.ended", number=alert.id, child=child.id)


async def withdraw(ctx: Context, args: str) -> None:
    """``/retirer N`` — a pending alert is withdrawn by its requester; a broadcast one is
    recalled: its copies deleted where the platform allows, pending sends dropped."""
    found = await _target(ctx, args, "lifecycle.usage_withdraw")
    if found is None:
        return
    alert = found[0]
    if alert.status == "pending":
        await _withdraw_pending(ctx, alert)
    elif _open_broadcast(ctx, alert):
        async with ctx.services.db.transaction():  # closed only with its recall rows
            if not await ctx.stores.alerts.close(alert.id, "recalled", ctx.now):
                ctx.say("lifecycle.already_closed", number=alert.id, closed="")
                return
            child = await follow_up(ctx, alert, "recall", "")
        ctx.say("lifecycle.recalling", number=alert.id, child=child.id)


async def _withdraw_pending(ctx: Context, alert: Alert) -> None:
    if alert.requested_by != ctx.who:
        ctx.say("lifecycle.withdraw_not_yours", number=alert.id)
        return
    if not await ctx.stores.alerts.transition(alert.id, "pending", "withdrawn", ctx.who, ctx.now):
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
    text = match.group(2).strip()[:2000]
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
