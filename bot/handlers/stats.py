"""``/stats [jours]``: subscribers, alerts and deliveries, exercises kept apart."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.commands import Command, small_number
from bot.context import Context
from bot.domain import Effects
from bot.roles import Action
from bot.storage.whatsapp import WhatsAppStore

TOP = 10


async def stats(ctx: Context, args: str) -> Effects:
    days = small_number(args.strip().rstrip("jJdD ") or "30")
    if days is None or not 1 <= days <= 3660:
        return ctx.answer("stats.usage")
    since = ctx.now - timedelta(days=int(days))
    # An organisation's own alerts and their deliveries; an overseer's: everyone's.
    scope = ctx.organisations.visible_keys(ctx.organisation)
    lines = [ctx.t("stats.title", days=days)]
    if not ctx.organisations.implicit:
        lines.append(ctx.t("orgs.issued_by", organisation=_scope_name(ctx, scope)))
    lines += await _subscribers(ctx, _territory(ctx, scope))
    lines += await _alerts(ctx, since, scope)
    lines += await _invitations(ctx)
    counts = await ctx.stores.stats.deliveries(since, scope)
    rate = f"{100 * counts.receipts / counts.sent:.0f}" if counts.sent else "0"
    t = ctx.t
    lines.append(t("stats.deliveries", sent=t("quantity.sent", count=counts.sent),
                   failed=t("quantity.failed", count=counts.failed),
                   blocked=t("quantity.blocked", count=counts.blocked),
                   receipts=t("quantity.receipts", count=counts.receipts), rate=rate))
    lines += await _whatsapp_cost(ctx, since)
    return ctx.text("\n".join(lines))


async def _whatsapp_cost(ctx: Context, since: datetime) -> list[str]:
    """The template messages WhatsApp charged over the period, at the configured price."""
    price = ctx.config.whatsapp.cost_per_message
    if price <= 0:
        return []
    cost = await WhatsAppStore(ctx.stores.deliveries.db).cost_since(since, price)
    return [ctx.t("stats.whatsapp_cost", cost=ctx.t.number(cost.euros, 2),
                  count=ctx.t.number(cost.billed))]


def _territory(ctx: Context, scope: frozenset[str] | None) -> frozenset[str] | None:
    """The communes whose subscribers an organisation's /stats counts: its territory's
    (the police of Mende count Mende's people, not the whole Lozère); None: everyone's."""
    if scope is None:
        return None
    return frozenset().union(*(ctx.organisations.get(key).territory for key in scope))


async def _subscribers(ctx: Context, communes: frozenset[str] | None) -> list[str]:
    counts = await ctx.stores.stats.subscribers(TOP, communes)
    labels = ctx.reference.communities
    communities = ", ".join(f"{labels[k].label if k in labels else k} {n}"
                            for k, n in counts.by_community)
    by_commune = ", ".join(f"{c.name if (c := ctx.geo.by_insee(code)) else code} {n}"
                           for code, n in counts.by_commune)
    by_status = counts.by_status
    t = ctx.t
    return [t("stats.subscribers", active=t("quantity.active", count=by_status.get("active", 0)),
              paused=t("quantity.paused", count=by_status.get("paused", 0)),
              blocked=t("quantity.blocked", count=by_status.get("blocked", 0))),
            ctx.t("stats.by_community", list=communities or "—"),
            ctx.t("stats.by_commune", list=by_commune or "—")]


def _scope_name(ctx: Context, scope: frozenset[str] | None) -> str:
    if scope is None:
        return ctx.t("orgs.everyone")
    return ", ".join(ctx.organisations.get(key).name for key in sorted(scope)) or "—"


async def _alerts(ctx: Context, since: datetime, scope: frozenset[str] | None) -> list[str]:
    counts = await ctx.stores.stats.alerts(since, scope)
    real = ", ".join(f"{category} {n}" for category, n in counts.real)
    return [ctx.t("stats.alerts", list=real or "—", exercises=counts.exercises)]


async def _invitations(ctx: Context) -> list[str]:
    """Enrollments per invitation and per partner (counts: partners never see who)."""
    store = ctx.stores.invitations
    per_invitation = [c for c in await store.counts(None) if c.enrolled][:TOP]
    t = ctx.t
    invitations = ", ".join(
        f"n°{c.invitation.id} ({c.invitation.partner}) {c.enrolled}" for c in per_invitation)
    partners = ", ".join(f"{partner} {enrolled}" for partner, enrolled, _ in
                         await store.by_partner() if enrolled)
    pending = len(await store.pending(None))
    return [t("stats.by_invitation", list=invitations or "—"),
            t("stats.by_partner", list=partners or "—"), t("stats.requests", count=pending)]


COMMANDS = [Command("stats", stats, Action.LIST_ALERTS, "help.stats", in_groups=True)]
