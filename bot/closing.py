"""The end of a broadcast alert — /fin, /retirer or expiry — as one transaction.

Closing the alert, its end message in the bot's own words and that message's outbox rows
are written together, in the caller's transaction: a failure leaves the alert open and a
retry works, instead of an alert closed whose all-clear never goes.
"""

from __future__ import annotations

from datetime import datetime

from bot.alerts import issue_follow_up
from bot.context import Services
from bot.domain import ChatRef
from bot.storage.alerts import Alert

END_KIND = {"ended": "all_clear", "recalled": "recall", "expired": "expiry"}


async def end_alert(services: Services, parent: Alert, how: str, actor: str, chat: ChatRef,
                    now: datetime) -> Alert | None:
    """Close ``parent`` (``how``: ended, recalled, expired) and issue its end message;
    None if it was already closed. Call inside a transaction."""
    stores = services.stores
    if not await stores.alerts.close(parent.id, how, now):
        return None
    kind = END_KIND[how]
    child = await issue_follow_up(services, parent, kind, actor, chat, now)
    await stores.audit.record(now, actor, f"alert.{kind}", parent.id, child=child.id)
    return child
