"""Scheduled prevention messages: ``/programmer``, ``/programmes``, ``/deprogrammer``."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.alert_approval import (
    AlertInputError,
    check_issuer,
    parse_alert_command,
    shown_perimeter,
    submit,
)
from bot.commands import Command, small_number
from bot.context import Context
from bot.domain import Effects
from bot.errors import UserFacingError
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


def parse_when(args: str, now: datetime, zone: ZoneInfo) -> tuple[str, datetime, str]:
    """``(rule, first occurrence, rest of the command)``; times are in ``zone``."""
    weekly = WEEKLY.match(args.strip())
    if weekly:
        day = weekly.group(1).lower()
        if day not in WEEKDAYS:
            raise ScheduleInputError("schedule.bad_day", day=weekly.group(1))
        at = _clock(int(weekly.group(2)), int(weekly.group(3)))
        first = next_weekly(now, WEEKDAYS.index(day), at, zone)
        return f"weekly:{WEEKDAYS.index(day)}:{at.strftime('%H:%M')}", first, weekly.group(4)
    once = ONCE.match(args.strip())
    if once is None:
        raise ScheduleInputError("schedule.usage")
    moment = datetime.combine(_date(once, now.astimezone(zone).year),
                              _clock(int(once.group(7)), int(once.group(8))), zone)
    if moment <= now:
        raise ScheduleInputError("schedule.in_the_past", time=moment)
    if moment > now + MAX_AHEAD:
        raise ScheduleInputError("schedule.too_far", days=MAX_AHEAD.days)
    return "once", moment, once.group(9)


def _clock(hour: int, minute: int) -> time:
    if hour > 23 or minute > 59:
        raise ScheduleInputError("alert.bad_time", hour=hour, minute=minute)
    return time(hour, minute)


def _date(match: re.Match[str], this_year: int) -> date:
    if match.group(1):
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    else:
        day, month = int(match.group(4)), int(match.group(5))
        year = int(match.group(6) or this_year)
    try:
        return date(year, month, day)
    except ValueError:
        raise ScheduleInputError("schedule.bad_date") from None


async def program(ctx: Context, args: str) -> Effects:
    """``/programmer <quand> <périmètre> [pour …] : <texte>`` — approved like an alert."""
    try:
        rule, first, rest = parse_when(args, ctx.now, ctx.timezone)
        draft = parse_alert_command(ctx, "prevention " + rest, first)
    except UserFacingError as error:
        # A date in the error (« Cette date est passée ») is written in the person's language.
        params = {name: ctx.t.when(value) if isinstance(value, datetime) else value
                  for name, value in error.params.items()}
        return ctx.text(ctx.t(error.key, **params) + "\n" + ctx.t("schedule.usage"))
    issuer = await check_issuer(ctx, draft)
    if isinstance(issuer, Effects):
        return issuer
    communities = [] if draft.all_communities else sorted(draft.communities)
    schedule_id = await ctx.stores.schedules.create(
        rule, draft.category.key, shown_perimeter(ctx, draft.perimeter), communities,
        draft.body, ctx.who, first, ctx.now)
    submitted = await submit(ctx, draft, send_at=first, schedule_id=schedule_id)
    await ctx.stores.schedules.set_next(schedule_id, first, submitted.alert.id)
    return submitted.effects + ctx.answer(
        "schedule.created", number=schedule_id, time=ctx.t.when(ctx.local(first)),
        rule=ctx.t(f"schedule.rule.{rule.split(':')[0]}"))


async def programs(ctx: Context, args: str) -> Effects:
    schedules = await ctx.stores.schedules.active()
    if not schedules:
        return ctx.answer("schedule.none")
    lines = [ctx.t("schedule.title")]
    for item in schedules:
        following = ctx.t.when(ctx.local(item.next_run_at)) if item.next_run_at else "—"
        lines.append(ctx.t("schedule.line", number=item.id, next=following,
                           rule=ctx.t(f"schedule.rule.{item.rule.split(':')[0]}"),
                           perimeter=item.perimeter, body=item.body[:60]))
    return ctx.text("\n".join(lines))


async def unprogram(ctx: Context, args: str) -> Effects:
    number = small_number(args)
    if number is None:
        return ctx.answer("schedule.usage_cancel")
    schedule = await ctx.stores.schedules.get(number)
    if schedule is None or schedule.cancelled_at is not None:
        return ctx.answer("schedule.unknown", number=number)
    await ctx.stores.schedules.cancel(schedule.id, ctx.now)
    withdrawn = await ctx.stores.schedules.withdraw_unsent(schedule.id, ctx.who, ctx.now)
    await ctx.audit("schedule.cancelled", schedule.alert_id, schedule=schedule.id)
    return ctx.answer("schedule.cancelled", number=schedule.id,
                      withdrawn=ctx.t("quantity.unsent_withdrawn", count=withdrawn))


COMMANDS = [
    Command("programmer", program, Action.SCHEDULE, "help.programmer", in_groups=True),
    Command("programmes", programs, Action.SCHEDULE, "help.programmes", in_groups=True),
    Command("deprogrammer", unprogram, Action.SCHEDULE, "help.deprogrammer", in_groups=True),
]
