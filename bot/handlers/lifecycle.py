"""After the broadcast: updates, all-clear, recall or withdrawal, and an alert's journal."""

from __future__ import annotations

import re

from bot.alert_approval import REQUEST, AlertInputError, follow_up, officers_request, require_body
from bot.alert_copy import alert_place
from bot.alert_photos import forget
from bot.closing import Ending, end_alert
from bot.commands import Command
from bot.context import Context
from bot.domain import ChatRef, EditTracked, Effects, Notify, Outgoing
from bot.enums import AlertKind, AlertStatus
from bot.i18n import Translator
from bot.limits import TIP_TEXT_CHARS
from bot.people import display_name
from bot.roles import Action, Role, speaks_for_alert
from bot.storage.alerts import Alert

NUMBER_AND_TEXT = re.compile(r"^n?°?\s*(\d{1,9})\s*(?::(.*))?$", re.IGNORECASE | re.DOTALL)
BROADCAST = ("broadcasting", "done")
# Who makes each change of an alert's state, to name an unnamed person by that role.
ACTING_AS = {"pending": Role.OPERATOR, "withdrawn": Role.OPERATOR,
             "approved": Role.OFFICER, "rejected": Role.OFFICER}


async def _target(ctx: Context, args: str, usage: str) -> tuple[Alert, str] | Effects:
    """The alert N a command names and the text after it, or the answer saying why not."""
    match = NUMBER_AND_TEXT.match(args.strip())
    if match is None:
        return ctx.answer(usage)
    alert = await ctx.stores.alerts.get(int(match.group(1)))
    if alert is None or not visible(ctx, alert):
        return ctx.answer("approval.not_found", number=match.group(1))
    return alert, (match.group(2) or "").strip()


def visible(ctx: Context, alert: Alert) -> bool:
    """Another organisation's alert is not shown (an overseer sees all; an author always
    sees their own, a mayor's message included)."""
    if alert.requested_by == ctx.who:
        return True
    return ctx.organisations.answers_for(ctx.organisation, alert.organisation)


def _not_open(ctx: Context, alert: Alert) -> Effects | None:
    """Follow-ups apply to an alert that went out and is not over yet: None when it is
    such an alert, else the answer saying why not."""
    if alert.kind != "alert":
        return ctx.answer("lifecycle.not_an_alert", number=alert.id,
                          parent=alert.parent_id or alert.id)
    if alert.status not in BROADCAST:
        return ctx.answer("lifecycle.not_broadcast", number=alert.id,
                          status=ctx.t(f"status.{alert.status}"))
    if alert.closed is not None:
        return ctx.answer("lifecycle.already_closed", number=alert.id,
                          closed=ctx.t(f"lifecycle.closed.{alert.closed}"))
    return None


async def _may_not_close(ctx: Context, alert: Alert) -> Effects | None:
    """Ending or recalling is for an open broadcast, by the alert's organisation: None
    when allowed, else the answer saying why not."""
    refusal = _not_open(ctx, alert)
    ours = ctx.organisations.answers_for(ctx.organisation, alert.organisation)
    if refusal is not None or speaks_for_alert(ctx.identity, ctx.roles, alert.requested_by, ours):
        return refusal
    await ctx.audit("alert.close_refused", alert.id)
    return ctx.answer("lifecycle.not_your_alert", number=alert.id)


async def update(ctx: Context, args: str) -> Effects:
    """``/suite N : texte`` — a threaded update, approved like the category requires."""
    found = await _target(ctx, args, "lifecycle.usage_update")
    if isinstance(found, Effects):
        return found
    alert, text = found
    refusal = _not_open(ctx, alert)
    if refusal is not None:
        return refusal
    try:
        body = require_body(text)
    except AlertInputError as error:
        return ctx.answer(error.key, **error.params)
    return (await follow_up(ctx, alert, AlertKind.UPDATE, body)).effects


async def end(ctx: Context, args: str) -> Effects:
    """``/fin N [: texte]`` — the alert ends at once: every delivered copy marked LEVÉE
    and the bot's own closing words sent. A text of the operator's is a closing message
    that goes to the officers first, like ``/suite``: an operator ending an alert at 3 a.m.
    should not have to wait for an officer for it to stop, but nothing they write reaches
    a subscriber unapproved."""
    found = await _target(ctx, args, "lifecycle.usage_end")
    if isinstance(found, Effects):
        return found
    alert, text = found
    refusal = await _may_not_close(ctx, alert)
    if refusal is not None:
        return refusal
    try:
        body = require_body(text) if text else ""
    except AlertInputError as error:
        return ctx.answer(error.key, **error.params)
    ending = await _end(ctx, alert, "ended")
    if isinstance(ending, Effects):
        return ending
    if not body:
        return ending.effects + ctx.answer("lifecycle.ended", number=alert.id,
                                           child=ending.child.id)
    closing = await follow_up(ctx, alert, AlertKind.CLOSING, body)
    return ending.effects + closing.effects + ctx.answer(
        "lifecycle.ended_text_pending", number=alert.id, child=ending.child.id,
        closing=closing.alert.id)


async def _end(ctx: Context, alert: Alert, how: str) -> Ending | Effects:
    ending = await end_alert(ctx.services, ctx.staff_t, alert, how, ctx.who, ctx.incoming.chat,
                             ctx.now)
    if ending is None:
        return ctx.answer("lifecycle.already_closed", number=alert.id, closed="")
    return ending


async def withdraw(ctx: Context, args: str) -> Effects:
    """``/retirer N`` — a pending alert is withdrawn by its requester; a broadcast one is
    recalled: its copies deleted where the platform allows, pending sends dropped."""
    found = await _target(ctx, args, "lifecycle.usage_withdraw")
    if isinstance(found, Effects):
        return found
    alert = found[0]
    if alert.status == "pending":
        return await _withdraw_pending(ctx, alert)
    refusal = await _may_not_close(ctx, alert)
    if refusal is not None:
        return refusal
    ending = await _end(ctx, alert, "recalled")
    if isinstance(ending, Effects):
        return ending
    return ending.effects + ctx.answer("lifecycle.recalling", number=alert.id,
                                       child=ending.child.id)


async def _withdraw_pending(ctx: Context, alert: Alert) -> Effects:
    if alert.requested_by != ctx.who:
        return ctx.answer("lifecycle.withdraw_not_yours", number=alert.id)
    if not await ctx.stores.alerts.transition(alert.id, AlertStatus.PENDING,
                                              AlertStatus.WITHDRAWN, ctx.who, ctx.now):
        return ctx.answer("approval.not_pending", number=alert.id, status="")
    await ctx.audit("alert.withdrawn", alert.id)
    withdrawn = await ctx.stores.alerts.get(alert.id)
    assert withdrawn is not None
    staff = ctx.staff_t
    request = await officers_request(ctx, staff, withdrawn, staff(
        "lifecycle.withdrawn_status", who=await display_name(ctx, staff, ctx.who,
                                                             Role.OPERATOR)))
    await forget(ctx, alert.id)  # after the request that still says what was asked
    return Effects.of(EditTracked(REQUEST, alert.id, request, alert.organisation)) + ctx.answer(
        "lifecycle.withdrawn", number=alert.id)


async def journal(ctx: Context, args: str) -> Effects:
    """``/journal N`` — every state change, decision and follow-up of an alert."""
    found = await _target(ctx, args, "lifecycle.usage_journal")
    if isinstance(found, Effects):
        return found
    alert = found[0]
    lines = [ctx.t("lifecycle.journal_title", number=alert.id, category=alert.category,
                   perimeter=alert_place(ctx.t, alert, counted=False))]
    for status, actor, at in await ctx.stores.alerts.transitions(alert.id):
        # Named, in the role the change is made in; the id is in the audit trail.
        who = await display_name(ctx, ctx.t, actor, ACTING_AS.get(status))
        lines.append(f"{ctx.t.when(ctx.local(at))} · {ctx.t(f'status.{status}')} · {who}")
    for approval in await ctx.stores.alerts.approvals(alert.id):
        lines.append(ctx.t(f"lifecycle.journal_{approval.decision}",
                           who=await display_name(ctx, ctx.t, approval.officer),
                           time=ctx.t.when(ctx.local(approval.decided_at))))
    if alert.prosecutor_ref:  # given at approval (/valider N parquet <référence>)
        lines.append(ctx.t("lifecycle.journal_prosecutor", reference=alert.prosecutor_ref))
    for child in await ctx.stores.alerts.children(alert.id):
        lines.append(ctx.t("lifecycle.journal_child", number=child.id,
                           kind=ctx.t(f"lifecycle.kind.{child.kind}"),
                           status=ctx.t(f"status.{child.status}")))
    counts = await ctx.stores.deliveries.counts(alert.id)
    t = ctx.t
    lines.append(t("lifecycle.journal_counts", sent=t("quantity.sent", count=counts.sent),
                   failed=t("quantity.failed", count=counts.failed),
                   blocked=t("quantity.blocked", count=counts.blocked),
                   receipts=t("quantity.receipts", count=counts.acknowledged)))
    return ctx.text("\n".join(lines))


async def answer_tip(ctx: Context, args: str) -> Effects:
    """``/repondre T <texte>`` — answer a tip; the subscriber sees only the text."""
    match = re.match(r"^n?°?\s*(\d{1,9})\s+(.+)$", args.strip(), re.DOTALL)
    if match is None:
        return ctx.answer("tip.usage_answer")
    tip = await ctx.stores.tips.get(int(match.group(1)))
    if tip is None:
        return ctx.answer("tip.unknown", tip=match.group(1))
    text = match.group(2).strip()[:TIP_TEXT_CHARS]
    await ctx.stores.tips.mark_answered(tip.id, ctx.now)
    await ctx.audit("tip.answered", tip.alert_id, tip=tip.id)
    # In the language of the person who gave the tip, not the officer's.
    language = await ctx.stores.subscribers.language_of(tip.subscriber_id) \
        if tip.subscriber_id is not None else None
    theirs = Translator(ctx.catalog, language or ctx.config.language)
    answer = Notify(ChatRef(tip.platform, tip.chat_id), Outgoing(
        theirs("tip.answer", tip=tip.id, number=tip.alert_id, text=text)))
    return Effects.of(answer) + ctx.answer("tip.answered", tip=tip.id)


COMMANDS = [
    Command("suite", update, Action.ISSUE_ALERT, "help.suite", in_groups=True),
    Command("fin", end, Action.CLOSE_ALERT, "help.fin", in_groups=True),
    Command("retirer", withdraw, Action.CLOSE_ALERT, "help.retirer", in_groups=True),
    Command("journal", journal, Action.LIST_ALERTS, "help.journal", in_groups=True),
    Command("repondre", answer_tip, Action.ANSWER_TIP, "help.repondre", in_groups=True),
]
