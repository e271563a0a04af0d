"""``/stats [jours]``: subscribers, alerts and deliveries, exercises kept apart."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import stamp
from bot.commands import Command, small_number
from bot.context import Context
from bot.roles import Action

TOP = 10


async def stats(ctx: Context, args: str) -> None:
    days = small_number(args.strip().rstrip("jJdD ") or "30")
    if days is None or not 1 <= days <= 3660:
        ctx.say("stats.usage")
        return
    since = stamp(ctx.now - timedelta(days=int(days)))
    db = ctx.services.db
    lines = [ctx.t("stats.title", days=days)]
    lines += await _subscribers(ctx)
    lines += await _alerts(ctx, since)
    sent, failed, blocked, receipts = await db.fetchone(
        "SELECT coalesce(sum(d.status = 'sent'), 0), coalesce(sum(d.status = 'failed'), 0),"
        " coalesce(sum(d.status = 'blocked'), 0), count(d.acknowledged_at) FROM deliveries d"
        " JOIN alerts a ON a.id = d.alert_id WHERE d.action = 'send' AND a.exercise = 0"
        " AND a.created_at >= ?", (since,)) or (0, 0, 0, 0)
    rate = f"{100 * receipts / sent:.0f}" if sent else "0"
    lines.append(ctx.t("stats.deliveries", sent=sent, failed=failed, blocked=blocked,
                       receipts=receipts, rate=rate))
    ctx.reply("\n".join(lines))


async def _subscribers(ctx: Context) -> list[str]:
    db = ctx.services.db
    by_status: dict[str, int] = {row[0]: int(row[1]) for row in await db.fetchall(
        "SELECT status, count(*) FROM subscribers GROUP BY status")}
    by_community = await db.fetchall(
        "SELECT community, count(*) FROM subscriber_communities c JOIN subscribers s"
        " ON s.id = c.subscriber_id AND s.status = 'active' GROUP BY community"
        " ORDER BY count(*) DESC")
    by_commune = await db.fetchall(
        "SELECT insee, count(*) FROM subscriber_communes c JOIN subscribers s"
        " ON s.id = c.subscriber_id AND s.status = 'active' GROUP BY insee"
        " ORDER BY count(*) DESC, insee LIMIT ?", (TOP,))
    labels = ctx.services.reference.communities
    communities = ", ".join(f"{labels[k].label if k in labels else k} {n}"
                            for k, n in by_community)
    geo = ctx.services.geo
    communes = ", ".join(f"{c.name if (c := geo.by_insee(code)) else code} {n}"
                         for code, n in by_commune)
    return [ctx.t("stats.subscribers", active=by_status.get("active", 0),
                  paused=by_status.get("paused", 0), blocked=by_status.get("blocked", 0)),
            ctx.t("stats.by_community", list=communities or "—"),
            ctx.t("stats.by_commune", list=communes or "—")]


async def _alerts(ctx: Context, since: str) -> list[str]:
    rows = await ctx.services.db.fetchall(
        "SELECT category, exercise, count(*) FROM alerts WHERE kind = 'alert'"
        " AND status IN ('broadcasting', 'done') AND created_at >= ?"
        " GROUP BY category, exercise ORDER BY count(*) DESC", (since,))
    real = ", ".join(f"{category} {n}" for category, exercise, n in rows if not exercise)
    drills = sum(n for _, exercise, n in rows if exercise)
    return [ctx.t("stats.alerts", list=real or "—", exercises=drills)]


COMMANDS = [Command("stats", stats, Action.LIST_ALERTS, "help.stats", in_groups=True)]
