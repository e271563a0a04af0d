"""Operator commands: issue an alert (one line or guided), list recent alerts."""

from __future__ import annotations

from bot.alert_approval import AlertInputError, parse_alert_command, submit
from bot.alert_copy import alert_place
from bot.commands import Command
from bot.context import Context
from bot.conversations.alert import GuidedAlertFlow
from bot.domain import Effects
from bot.geo.perimeter import PerimeterError
from bot.roles import Action

GUIDED = GuidedAlertFlow()


async def alert(ctx: Context, args: str) -> Effects:
    if not args.strip():
        return await GUIDED.begin(ctx)
    try:
        draft = parse_alert_command(ctx, args, ctx.now)
    except AlertInputError as error:
        return ctx.text(ctx.t(error.key, **error.params) + "\n" + ctx.t("alert.usage"))
    except PerimeterError as error:
        return ctx.text(ctx.t(error.key, **error.params))
    return (await submit(ctx, draft)).effects


async def alerts(ctx: Context, args: str) -> Effects:
    recent = await ctx.stores.alerts.recent_by(ctx.who)
    if not recent:
        return ctx.answer("alerts.none")
    lines = [ctx.t("alerts.title")]
    for item in recent:
        lines.append(ctx.t("alerts.line", number=item.id, category=item.category,
                           perimeter=alert_place(ctx.t, item),
                           status=ctx.t(f"status.{item.status}"),
                           time=ctx.t.when(ctx.local(item.created_at))))
    return ctx.text("\n".join(lines))


COMMANDS = [
    Command("alerte", alert, Action.ISSUE_ALERT, "help.alerte", in_groups=True),
    Command("alertes", alerts, Action.LIST_ALERTS, "help.alertes", in_groups=True),
]
