"""Operator commands: issue an alert (one line or guided), list recent alerts."""

from __future__ import annotations

from bot.alert_approval import AlertInputError, check_issuer, parse_alert_command, submit
from bot.alert_copy import alert_place
from bot.alert_photos import for_new_alert, keep_brought
from bot.commands import Command
from bot.context import Context
from bot.conversations.alert import GuidedAlertFlow
from bot.domain import Effects
from bot.geo.perimeter import PerimeterError
from bot.roles import Action, Role

GUIDED = GuidedAlertFlow()


async def alert(ctx: Context, args: str) -> Effects:
    """``/alerte …`` in one line, or guided; a photo sent with it (a Telegram photo whose
    caption is the command) or just before it goes with the alert (bot/alert_photos.py)."""
    if not args.strip():
        kept = await keep_brought(ctx, "photo.kept_guided")
        return kept + await GUIDED.begin(ctx)
    try:
        draft = parse_alert_command(ctx, args, ctx.now)
    except AlertInputError as error:
        return ctx.text(ctx.t(error.key, **error.params) + "\n" + ctx.t("alert.usage")) + \
            await keep_brought(ctx, "photo.kept_for_correction")
    except PerimeterError as error:
        return ctx.text(ctx.t(error.key, **error.params)) + \
            await keep_brought(ctx, "photo.kept_for_correction")
    issuer = await check_issuer(ctx, draft)
    if isinstance(issuer, Effects):  # outside the territory: nothing stored
        return issuer + await keep_brought(ctx, "photo.kept_for_correction")
    photo, refused = await for_new_alert(ctx)
    return (await submit(ctx, draft, photo=photo)).effects + refused


async def alerts(ctx: Context, args: str) -> Effects:
    """An operator's (or a mayor's) own recent alerts; with organisations, an officer's or
    an admin's are their organisation's (an overseer's: everyone's)."""
    organisations = ctx.organisations
    if organisations.implicit or ctx.roles & {Role.OPERATOR, Role.MAYOR}:
        recent = await ctx.stores.alerts.recent_by(ctx.who)
        title = ctx.t("alerts.title")
    else:
        scope = organisations.visible_keys(ctx.organisation)
        recent = await ctx.stores.alerts.recent_of(scope)
        names = ctx.t("orgs.everyone") if scope is None else ", ".join(
            organisations.get(key).name for key in sorted(scope))
        title = ctx.t("orgs.title", organisation=names or "—")
    if not recent:
        return ctx.answer("alerts.none")
    lines = [title]
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
