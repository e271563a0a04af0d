"""Writing an approved alert's outbox: one row per recipient, before anything is sent."""

from __future__ import annotations

from datetime import datetime

from bot.context import Services

PRIORITY_ALERT = 20
PRIORITY_UPDATE = 10
PRIORITY_PREVENTION = 0


def priority_of(severity: str) -> int:
    return PRIORITY_PREVENTION if severity == "low" else PRIORITY_ALERT


async def start_broadcast(services: Services, alert_id: int, now: datetime) -> int:
    """Resolve recipients into outbox rows and mark the alert broadcasting.

    Runs inside the caller's approval transaction, so an approval is never recorded
    without its outbox, nor an outbox without its approval.
    """
    stores = services.stores
    alert = await stores.alerts.get(alert_id)
    assert alert is not None and alert.status == "approved"
    severity = services.reference.categories[alert.category].severity
    count = await stores.deliveries.enqueue(alert.id, alert.all_communities,
                                            priority_of(severity), now)
    for platform in await stores.deliveries.platforms(alert.id):
        if platform not in services.platforms:
            await stores.deliveries.fail_platform(alert.id, platform,
                                                  f"platform {platform} is not running")
    await stores.alerts.transition(alert.id, "approved", "broadcasting", "system", now)
    return count
