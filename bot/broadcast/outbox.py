"""Writing an approved message's outbox: one row per recipient, before anything is sent."""

from __future__ import annotations

from datetime import datetime

from bot.context import Services
from bot.storage.alerts import Alert

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
    for platform in await stores.deliveries.platforms(alert.id):
        if platform not in services.platforms:
            await stores.deliveries.fail_platform(alert.id, platform,
                                                  f"platform {platform} is not running")
    await stores.alerts.transition(alert.id, "approved", "broadcasting", "system", now)
    return count


async def _enqueue(services: Services, alert: Alert, priority: int, now: datetime) -> int:
    deliveries = services.stores.deliveries
    parent = alert.parent_id
    if parent is None:
        return await deliveries.enqueue(alert.id, alert.all_communities, priority, now)
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
