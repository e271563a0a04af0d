"""The clock's work: reminders, unapproved expiry, scheduled launches, alert expiry.

Every deadline is a column in the database; ``tick`` looks for what is due and claims
each item with a conditional UPDATE, so a restart neither loses a timer nor runs one
twice. The scheduler only calls ``tick`` regularly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.alert_approval import expire_unapproved
from bot.broadcast.outbox import UnapprovedText, record_refusal, start_broadcast
from bot.closing import clean_closing, end_alert
from bot.context import Services, staff_translator
from bot.domain import NO_EFFECTS, WAKE_DISPATCHER, ChatRef, Effects, Outgoing, ToOfficers
from bot.enums import AlertStatus
from bot.i18n import Translator
from bot.limits import PHOTO_KEPT
from bot.storage.alerts import Alert, NewAlert


async def tick(services: Services) -> Effects:
    """What came due, done; the effects (officers' notices, edits, a broadcast to send)
    are the clock's, performed like an event's."""
    now = services.clock.now()
    t = staff_translator(services)  # all it tells goes to staff
    effects = NO_EFFECTS
    for step in (_remind_pending, _expire_unapproved, _launch_scheduled, _expire_broadcasts,
                 _clean_protected_closings):
        effects += await step(services, t, now)
    # An operator's photo nobody attached in time is not kept (bot/alert_photos.py).
    await services.stores.photos.forget_drafts(now - PHOTO_KEPT)
    return effects


async def _remind_pending(services: Services, t: Translator, now: datetime) -> Effects:
    delay = timedelta(minutes=services.config.approval.reminder_after_minutes)
    effects = NO_EFFECTS
    for alert in await services.stores.alerts.pending_to_remind(now - delay):
        await services.stores.alerts.mark_reminded(alert.id, now)
        minutes = int((now - alert.created_at).total_seconds() // 60)
        effects += Effects.of(ToOfficers(Outgoing(t("lifecycle.reminder", number=alert.id,
                                                    minutes=minutes)),
                                         organisation=alert.organisation))
    return effects


async def _expire_unapproved(services: Services, t: Translator, now: datetime) -> Effects:
    delay = timedelta(minutes=services.config.approval.expire_after_minutes)
    effects = NO_EFFECTS
    for alert in await services.stores.alerts.pending_created_before(now - delay):
        effects += await expire_unapproved(services, t, alert, now)
    return effects


async def _launch_scheduled(services: Services, t: Translator, now: datetime) -> Effects:
    effects = NO_EFFECTS
    for alert in await services.stores.alerts.due_to_send(now):
        try:
            async with services.db.transaction():
                count = await start_broadcast(services, alert.id, now)
                if alert.schedule_id is not None:
                    await _next_occurrence(services, alert, now)
        except UnapprovedText as refused:
            effects += await _withdraw_refused(services, t, refused, now)
            continue
        await services.stores.audit.record(now, "system", "alert.scheduled_launch", alert.id,
                                           recipients=count)
        effects += WAKE_DISPATCHER
    return effects


async def _withdraw_refused(services: Services, t: Translator, refused: UnapprovedText,
                            now: datetime) -> Effects:
    """An occurrence whose text is not the one approved: withdrawn (not retried at every
    tick), audited, and the officers told."""
    async with services.db.transaction():
        await services.stores.alerts.transition(refused.alert_id, AlertStatus.APPROVED,
                                                AlertStatus.WITHDRAWN, "system", now)
        await record_refusal(services, refused, "system")
        refused_alert = await services.stores.alerts.get(refused.alert_id)
    organisation = None if refused_alert is None else refused_alert.organisation
    return Effects.of(ToOfficers(Outgoing(t("lifecycle.refused_unapproved",
                                            number=refused.alert_id)),
                                 organisation=organisation))


async def _next_occurrence(services: Services, alert: Alert, now: datetime) -> None:
    """A recurring schedule approved once: its next occurrence is created approved."""
    schedule = await services.stores.schedules.get(alert.schedule_id or 0)
    if schedule is None or schedule.cancelled_at is not None:
        return
    following = schedule.next_after(alert.send_at or now,
                                    services.timezone)
    if following is None:
        return
    communes = frozenset(await services.stores.alerts.communes(alert.id))
    communities = frozenset(await services.stores.alerts.communities(alert.id))
    category = services.reference.categories[alert.category]
    new = NewAlert(
        category=alert.category, perimeter=alert.perimeter, perimeter_json=alert.perimeter_json,
        communes=communes, communities=communities, all_communities=alert.all_communities,
        body=alert.body, facts_at=following, requested_by=alert.requested_by,
        request_platform=alert.request_platform, request_chat_id=alert.request_chat_id,
        required_approvals=alert.required_approvals,
        expires_at=following + category.default_expiry, exercise=alert.exercise,
        send_at=following, schedule_id=schedule.id, organisation=alert.organisation)
    created = await services.stores.alerts.create(new, now)
    await services.stores.alerts.transition(created.id, AlertStatus.PENDING, AlertStatus.APPROVED,
                                            f"schedule:{schedule.id}", now)
    await services.stores.schedules.set_next(schedule.id, following, created.id)


async def _expire_broadcasts(services: Services, t: Translator, now: datetime) -> Effects:
    effects = NO_EFFECTS
    for alert in await services.stores.alerts.due_to_expire(now):
        requester = ChatRef(alert.request_platform, alert.request_chat_id)
        async with services.db.transaction():
            ending = await end_alert(services, t, alert, "expired", "system", requester, now)
        if ending is not None:
            effects += ending.effects
    return effects


async def _clean_protected_closings(services: Services, t: Translator,
                                    now: datetime) -> Effects:
    protected = [c.key for c in services.reference.categories.values() if c.protected]
    if not protected:
        return NO_EFFECTS
    effects = NO_EFFECTS
    for closing in await services.stores.alerts.protected_closings_due(now, protected):
        async with services.db.transaction():
            effects += await clean_closing(services, t, closing, now)
    return effects
