"""Officer commands: approve or reject a pending alert."""

from __future__ import annotations

import re

from bot.alert_approval import decide
from bot.commands import Command
from bot.context import Context
from bot.domain import Effects
from bot.roles import Action

NUMBER = re.compile(r"^n?°?\s*(\d{1,9})\b\s*(.*)$", re.IGNORECASE | re.DOTALL)
OVERRIDE_WORDS = {"forcer", "force", "override"}


def _number_and_rest(args: str) -> tuple[int, str] | None:
    match = NUMBER.match(args.strip())
    return None if match is None else (int(match.group(1)), match.group(2).strip())


PROSECUTOR = re.compile(r"\bparquet\s*:?\s*(\S.{0,99})$", re.IGNORECASE)


async def approve(ctx: Context, args: str) -> Effects:
    """``/valider N [forcer] [parquet <référence>]``."""
    parsed = _number_and_rest(args)
    if parsed is None:
        return ctx.answer("approval.usage_approve")
    alert_id, rest = parsed
    reference = PROSECUTOR.search(rest)
    if reference:
        rest = rest[:reference.start()].strip()
    if rest and rest.lower() not in OVERRIDE_WORDS:
        return ctx.answer("approval.usage_approve")
    return await decide(ctx, alert_id, approve=True, reason=None, override_stale=bool(rest),
                        prosecutor_ref=reference.group(1).strip() if reference else None)


async def reject(ctx: Context, args: str) -> Effects:
    parsed = _number_and_rest(args)
    if parsed is None:
        return ctx.answer("approval.usage_reject")
    alert_id, reason = parsed
    if not reason:
        return ctx.answer("approval.reason_required", number=alert_id)
    return await decide(ctx, alert_id, approve=False, reason=reason)


COMMANDS = [
    Command("valider", approve, Action.DECIDE_ALERT, "help.valider", aliases=("approve",),
            in_groups=True),
    Command("refuser", reject, Action.DECIDE_ALERT, "help.refuser", aliases=("reject",),
            in_groups=True),
]
