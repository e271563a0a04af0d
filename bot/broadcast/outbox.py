"""Writing an approved message's outbox: one row per recipient, before anything is sent.

This is the only way into the outbox, and the rule every path obeys is enforced here:
no text written by an operator reaches a subscriber without the approvals its category
requires (``_approved_by``). Only the bot's own wording (an all-clear without text, a
recall, an expiry) goes without an officer, and it carries no operator text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.context import Services
from bot.enums import AlertStatus
from bot.storage.alerts import Alert
from bot.storage.deliveries import Reach

log = logging.getLogger(__name__)

# Subscriber ids written with the approval, so the first messages leave at once; the rest
# by the resolver, broadcast.resolution_slice ids per transaction.
FIRST_SLICE = 1_000

PRIORITY_ALERT = 20
PRIORITY_UPDATE = 10
PRIORITY_PREVENTION = 0


# Follow-ups the bot words itself; with an empty body they carry no operator text.
BOT_WORDED = frozenset({"all_clear", "recall", "expiry", "redact"})


class UnapprovedText(Exception):
    """Operator text reached the outbox without the approvals its category requires: a
    path forgot the officers. Raised inside the caller's transaction, so nothing of it
    is written."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id}: operator text without the approval its "
                         "category requires")
        self.alert_id = alert_id


def priority_of(alert: Alert, severity: str) -> int:
    if alert.kind != "alert":
        return PRIORITY_UPDATE
    return PRIORITY_PREVENTION if severity == "low" else PRIORITY_ALERT


@dataclass(frozen=True, slots=True)
class Opened:
    """What opening an outbox wrote: ``rows`` recipients (all of them, those the resolver
    writes later included) and, for an alert, whom it reaches, counted in the transaction:
    a caller showing the reach uses it rather than counting again (each count reads every
    matching subscriber: 60 ms of CPU for 100,000, most of an approval's own cost)."""

    rows: int
    reach: Reach | None = None


async def start_broadcast(services: Services, alert_id: int, now: datetime) -> int:
    """``open_outbox``; returns the number of rows."""
    return (await open_outbox(services, alert_id, now)).rows


async def open_outbox(services: Services, alert_id: int, now: datetime) -> Opened:
    """Write the outbox rows of an approved alert or follow-up and mark it broadcasting.

    Runs inside the caller's transaction, so an approval is never recorded without its
    outbox, nor an outbox without its approval: operator text without the approvals its
    category requires raises ``UnapprovedText`` and the transaction writes nothing.
    A scheduled message whose time has not come stays 'approved'; the clock launches it
    later (no rows yet).
    """
    stores = services.stores
    alert = await stores.alerts.get(alert_id)
    assert alert is not None and alert.status == "approved"
    if alert.send_at is not None and alert.send_at > now:
        return Opened(0)
    officers = await _approved_by(services, alert)
    await stores.audit.record(now, "system", "outbox.opened", alert.id, kind=alert.kind,
                              approved_by=officers or "bot wording")
    priority = priority_of(alert, services.reference.categories[alert.category].severity)
    opened = await _enqueue(services, alert, priority, now)
    await _fail_missing_platforms(services, alert.id)
    await stores.alerts.transition(alert.id, AlertStatus.APPROVED, AlertStatus.BROADCASTING,
                                   "system", now)
    return opened


async def _approved_by(services: Services, alert: Alert) -> list[str]:
    """The officers whose approval covers the alert's text; raises ``UnapprovedText``
    when they are fewer than its category requires (never fewer than one)."""
    if alert.kind in BOT_WORDED and not alert.body:
        return []
    source = await _approved_row(services, alert)
    category = services.reference.categories[alert.category]
    needed = max(1, alert.required_approvals, category.required_approvals)
    officers = sorted({a.officer for a in await services.stores.alerts.approvals(source.id)
                       if a.decision == "approve" and a.officer != source.requested_by})
    if len(officers) < needed:
        raise UnapprovedText(alert.id)
    return officers


async def _approved_row(services: Services, alert: Alert) -> Alert:
    """The row the officers decided on: the alert itself, or for a later occurrence of a
    recurring schedule (created by the clock) the occurrence they approved — provided
    it still says the same thing to the same people."""
    alerts = services.stores.alerts
    if alert.schedule_id is None:
        return alert
    approved = await alerts.first_approved_occurrence(alert.schedule_id)
    if approved is None:
        return alert
    same = ((approved.body, approved.category, approved.perimeter_json,
             approved.all_communities) == (alert.body, alert.category, alert.perimeter_json,
                                           alert.all_communities)
            and await alerts.communes(approved.id) == await alerts.communes(alert.id)
            and await alerts.communities(approved.id) == await alerts.communities(alert.id))
    return approved if same else alert


async def record_refusal(services: Services, refused: UnapprovedText, actor: str) -> None:
    """Audit a refusal (after the rollback that undid the attempt)."""
    log.error("outbox refused unapproved operator text alert=%d", refused.alert_id)
    await services.stores.audit.record(services.clock.now(), actor,
                                       "outbox.refused_unapproved", refused.alert_id)


async def _fail_missing_platforms(services: Services, alert_id: int) -> None:
    deliveries = services.stores.deliveries
    for platform in await deliveries.platforms(alert_id):
        if platform not in services.platforms:
            await deliveries.fail_platform(alert_id, platform,
                                           f"platform {platform} is not running")


async def resolve_more(services: Services, alert_id: int, after_id: int,
                       now: datetime) -> int | None:
    """Write the next chunk of an alert's recipients (its own transaction; the cursor is
    saved with it, so a restart resumes where it stopped). None when complete."""
    stores = services.stores
    async with services.db.transaction():
        alert = await stores.alerts.get(alert_id)
        assert alert is not None
        priority = priority_of(alert, services.reference.categories[alert.category].severity)
        last = await stores.deliveries.enqueue_subscribers(
            alert.id, alert.all_communities, priority, now, after_id,
            services.config.broadcast.resolution_slice)
        await stores.alerts.set_resolve_after(alert.id, last)
        if last is None:  # once, at the end: the check reads every row of the alert
            await _fail_missing_platforms(services, alert.id)
    return last


async def _enqueue(services: Services, alert: Alert, priority: int, now: datetime) -> Opened:
    deliveries = services.stores.deliveries
    parent = alert.parent_id
    if parent is None:
        await deliveries.enqueue_groups(alert.id, alert.all_communities, priority, now)
        last = await deliveries.enqueue_subscribers(alert.id, alert.all_communities, priority,
                                                    now, 0, FIRST_SLICE)
        await services.stores.alerts.set_resolve_after(alert.id, last)
        communes = await services.stores.alerts.communes(alert.id)
        # The mayors of its communes hear of every alert there, whatever they chose.
        mayors = await deliveries.enqueue_people(
            alert.id, services.organisations.mayors_of(communes), priority, now)
        reach = await deliveries.reach(communes,
                                       await services.stores.alerts.communities(alert.id),
                                       alert.all_communities)
        reach = Reach(reach.subscribers + mayors, reach.groups)
        return Opened(reach.subscribers + reach.groups, reach)  # all, not this first chunk
    count = 0
    if alert.kind in ("update", "all_clear", "closing"):
        count += await deliveries.enqueue_followup(alert.id, parent, "send", priority, now)
    if alert.kind in ("all_clear", "expiry", "redact"):
        count += await deliveries.enqueue_followup(alert.id, parent, "edit", priority, now)
    if alert.kind == "recall":
        count += await deliveries.enqueue_followup(alert.id, parent, "delete", priority, now)
    if alert.kind in ("recall", "expiry", "redact"):
        await deliveries.drop_pending(parent, alert.kind)
    return Opened(count)
