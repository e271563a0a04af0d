"""Writing an approved message's outbox: one row per recipient, before anything is sent."""

from __future__ import annotations

from datetime import datetime

from bot.context import Services
from bot.storage.alerts import Alert

# Subscriber ids written with the approval, so the first messages leave at once; the rest
# by the resolver, broadcast.resolution_slice ids per transaction.
FIRST_SLICE = 1_000

PRIORITY_ALERT = 20
PRIORITY_UPDATE = 10
PRIORITY_PREVENTION = 0


def priority_of(alert: Alert, severity: str) -> int:
    if alert.kind != "alert":
        return PRIORITY_UPDATE
    return PRIORITY_PREVENTION if severity == "low" else PRIORITY_ALERT


async def start_broadcast(services: Services, alert_id: int, now: datetime) -> int:
    """Write the outbox rows of an approved alert or follow-up and mark it broadcasting.

    Runs inside the caller's transaction, so an approval is never recorded without its
    outbox, nor an outbox without its approval. A scheduled message whose time has not
    come stays 'approved'; the clock launches it later. Returns the number of rows.
    """
    stores = services.stores
    alert = await stores.alerts.get(alert_id)
    assert alert is not None and alert.status == "approved"
    if alert.send_at is not None and datetime.fromisoformat(alert.send_at) > now:
        return 0
    priority = priority_of(alert, services.reference.categories[alert.category].severity)
    count = await _enqueue(services, alert, priority, now)
    await _fail_missing_platforms(services, alert.id)
    await stores.alerts.transition(alert.id, "approved", "broadcasting", "system", now)
    return count


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


async def _enqueue(services: Services, alert: Alert, priority: int, now: datetime) -> int:
    deliveries = services.stores.deliveries
    parent = alert.parent_id
    if parent is None:
        await deliveries.enqueue_groups(alert.id, alert.all_communities, priority, now)
        last = await deliveries.enqueue_subscribers(alert.id, alert.all_communities, priority,
                                                    now, 0, FIRST_SLICE)
        await services.stores.alerts.set_resolve_after(alert.id, last)
        reach = await deliveries.reach(await services.stores.alerts.communes(alert.id),
                                       await services.stores.alerts.communities(alert.id),
                                       alert.all_communities)
        return reach.subscribers + reach.groups  # all of them, not just this first chunk
    count = 0
    if alert.kind in ("update", "all_clear"):
        count += await deliveries.enqueue_followup(alert.id, parent, "send", priority, now)
    if alert.kind in ("all_clear", "expiry"):
        count += await deliveries.enqueue_followup(alert.id, parent, "edit", priority, now)
    if alert.kind == "recall":
        count += await deliveries.enqueue_followup(alert.id, parent, "delete", priority, now)
    if alert.kind in ("recall", "expiry"):
        await deliveries.drop_pending(parent, alert.kind)
    return count
