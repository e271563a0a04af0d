"""Scheduled prevention messages: ``/programmer``, ``/programmes``, ``/deprogrammer``."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from bot.alert_approval import AlertInputError, parse_alert_command, shown_perimeter, submit
from bot.commands import Command, small_number
from bot.context import Context
from bot.errors import UserFacingError
from bot.render import when
from bot.roles import Action
from bot.storage.schedules import next_weekly

MAX_AHEAD = timedelta(days=366)  # a schedule further ahead is surely a typo
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
WEEKLY = re.compile(r"^(?:chaque|tous\s+les)\s+([a-z]+?)s?\s+(\d{1,2})\s*[:hH]\s*(\d{2})\s+(.*)$",
                    re.IGNORECASE | re.DOTALL)
ONCE = re.compile(r"^(?:(\d{4})-(\d{2})-(\d{2})|(\d{1,2})/(\d{1,2})(?:/(\d{4}))?)\s+"
                  r"(\d{1,2})\s*[:hH]\s*(\d{2})\s+(.*)$", re.DOTALL)


class ScheduleInputError(AlertInputError):
    pass


def parse_when(ctx: Context, args: str) -> tuple[str, datetime, str]:
    """``(rule, first occurrence, rest of the command)``."""
    weekly = WEEKLY.match(args.strip())
    if weekly:
        day = weekly.group(1).lower()
        if day not in WEEKDAYS:
            raise ScheduleInputError("schedule.bad_day", day=weekly.group(1))
        at = _clock(int(weekly.group(2)), int(weekly.group(3)))
        first = next_weekly(ctx.now, WEEKDAYS.index(day), at, ctx.services.timezone)
        return f"weekly:{WEEKDAYS.index(day)}:{at.strftime('%H:%M')}", first, weekly.group(4)
    once = ONCE.match(args.strip())
    if once is None:
        raise ScheduleInputError("schedule.usage")
    moment = datetime.combine(_date(ctx, once), _clock(int(once.group(7)), int(once.group(8))),
                              ctx.services.timezone)
    if moment <= ctx.now:
        raise ScheduleInputError("schedule.in_the_past", time=when(moment))
    if moment > ctx.now + MAX_AHEAD:
        raise ScheduleInputError("schedule.too_far", days=MAX_AHEAD.days)
    return "once", moment, once.group(9)


def _clock(hour: int, minute: int) -> time:
    if hour > 23 or minute > 59:
        raise ScheduleInputError("alert.bad_time", hour=hour, minute=minute)
    return time(hour, minute)


def _date(ctx: Context, match: re.Match[str]) -> date:
    if match.group(1):
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    else:
        day, month = int(match.group(4)), int(match.group(5))
        year = int(match.group(6) or ctx.services.local(ctx.now).year)
    try:
        return date(year, month, day)
    except ValueError:
        raise ScheduleInputError("schedule.bad_date") from None


async def program(ctx: Context, args: str) -> None:
    """``/programmer <quand> <périmètre> [pour …] : <texte>`` — approved like an alert."""
    try:
        rule, first, rest = parse_when(ctx, args)
        draft = parse_alert_command(ctx.services, "prevention " + rest, first)
    except UserFacingError as error:
        ctx.reply(ctx.t(error.key, **error.params) + "\n" + ctx.t("schedule.usage"))
        return
    communities = [] if draft.all_communities else sorted(draft.communities)
    schedule_id = await ctx.stores.schedules.create(
        rule, draft.category.key, shown_perimeter(ctx.services, draft.perimeter), communities,
        draft.body, ctx.who, first, ctx.now)
    alert = await submit(ctx, draft, send_at=first, schedule_id=schedule_id)
    await ctx.stores.schedules.set_next(schedule_id, first, alert.id)
    ctx.say("schedule.created", number=schedule_id, time=when(ctx.services.local(first)),
            rule=ctx.t(f"schedule.rule.{rule.split(':')[0]}"))


async def programs(ctx: Context, args: str) -> None:
    schedules = await ctx.stores.schedules.active()
    if not schedules:
        ctx.say("schedule.none")
        return
    lines = [ctx.t("schedule.title")]
    for item in schedules:
        following = when(ctx.services.local(item.next_run_at)) if item.next_run_at else "—"
        lines.append(ctx.t("schedule.line", number=item.id, next=following,
                           rule=ctx.t(f"schedule.rule.{item.rule.split(':')[0]}"),
                           perimeter=item.perimeter, body=item.body[:60]))
    ctx.reply("\n".join(lines))


async def unprogram(ctx: Context, args: str) -> None:
    number = small_number(args)
    if number is None:
        ctx.say("schedule.usage_cancel")
        return
    schedule = await ctx.stores.schedules.get(number)
    if schedule is None or schedule.cancelled_at is not None:
        ctx.say("schedule.unknown", number=number)
        return
    async with ctx.services.db.transaction():
        await ctx.stores.schedules.cancel(schedule.id, ctx.now)
        withdrawn = await ctx.stores.schedules.withdraw_unsent(schedule.id, ctx.who, ctx.now)
        await ctx.audit("schedule.cancelled", schedule.alert_id, schedule=schedule.id)
    ctx.say("schedule.cancelled", number=schedule.id, withdrawn=withdrawn)


COMMANDS = [
    Command("programmer", program, Action.SCHEDULE, "help.programmer", in_groups=True),
    Command("programmes", programs, Action.SCHEDULE, "help.programmes", in_groups=True),
    Command("deprogrammer", unprogram, Action.SCHEDULE, "help.deprogrammer", in_groups=True),
]
