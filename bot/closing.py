"""The end of a broadcast alert — /fin, /retirer or expiry — as one transaction.

Closing the alert, its end message in the bot's own words and that message's outbox rows
are written together, in the caller's transaction: a failure leaves the alert open and a
retry works, instead of an alert closed whose all-clear never goes.

A protected alert (a missing person) is cleaned everywhere at its end: the copies of its
updates repeat the description, so each is redacted like the original (deleted on a
recall), and its requests, map and photo in the officers' channels go too. Its closing
text, approved after the end, is cleaned when the alert would have expired
(``clean_closing``). Any alert's photo leaves the database at its end
(bot/alert_photos.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.alert_approval import MAP, REQUEST, issue_follow_up, officers_request
from bot.alert_photos import PHOTO, forget_at_end
from bot.context import Records, Services
from bot.domain import (
    NO_EFFECTS,
    WAKE_DISPATCHER,
    ChatRef,
    DeleteTracked,
    EditTracked,
    Effects,
    Outgoing,
)
from bot.enums import AlertKind, AlertStatus
from bot.i18n import Translator
from bot.storage.alerts import Alert

END_KIND = {"ended": AlertKind.ALL_CLEAR, "recalled": AlertKind.RECALL,
            "expired": AlertKind.EXPIRY}
OPERATOR_TEXT = ("update", "closing")  # follow-ups that may repeat the description


@dataclass(frozen=True)
class Ending:
    child: Alert  # the end message (all-clear, recall, expiry)
    effects: Effects  # for the officers' channels; wakes the dispatcher for the end message


async def end_alert(services: Services, t: Translator, parent: Alert, how: str, actor: str,
                    chat: ChatRef, now: datetime) -> Ending | None:
    """Close ``parent`` (``how``: ended, recalled, expired) and issue its end message;
    None if it was already closed. Call inside a transaction."""
    stores = services.stores
    if not await stores.alerts.close(parent.id, how, now):
        return None
    kind = END_KIND[how]
    child = await issue_follow_up(services, parent, kind, actor, chat, now)
    await stores.audit.record(now, actor, f"alert.{kind}", parent.id, child=child.id)
    effects = await _withdraw_pending_updates(services, t, parent, actor, now)
    await forget_at_end(services, parent.id)
    if services.reference.categories[parent.category].protected:
        await _clean_follow_ups(services, parent, how, actor, chat, now)
        effects += await _clean_officers_posts(services, t, parent)
    return Ending(child, effects + WAKE_DISPATCHER)


async def _withdraw_pending_updates(records: Records, t: Translator, parent: Alert,
                                    actor: str, now: datetime) -> Effects:
    """An update not yet approved would go out after the end (with a missing person's
    description, after it was removed): it is withdrawn, as /suite is refused by then."""
    effects = NO_EFFECTS
    stores = records.stores
    for child in await stores.alerts.children(parent.id):
        if child.kind != "update" or not await stores.alerts.transition(
                child.id, AlertStatus.PENDING, AlertStatus.WITHDRAWN, actor, now):
            continue
        await stores.audit.record(now, actor, "alert.withdrawn", child.id,
                                  reason=f"alert {parent.id} ended")
        withdrawn = await stores.alerts.get(child.id)
        assert withdrawn is not None
        status = t("lifecycle.withdrawn_ended", number=parent.id)
        effects += Effects.of(EditTracked(REQUEST, child.id,
                                          await officers_request(records, t, withdrawn, status),
                                          withdrawn.organisation))
    return effects


async def _clean_follow_ups(services: Services, parent: Alert, how: str, actor: str,
                            chat: ChatRef, now: datetime) -> None:
    """Each update (or closing text) delivered about a protected alert gets its own
    cleaning follow-up: copies redacted — deleted on a recall — and unsent rows dropped."""
    kind = AlertKind.RECALL if how == "recalled" else AlertKind.REDACT
    for child in await services.stores.alerts.children(parent.id):
        if child.kind in OPERATOR_TEXT and child.status in ("broadcasting", "done"):
            cleaning = await issue_follow_up(services, child, kind, actor, chat, now)
            await services.stores.audit.record(now, actor, f"alert.{kind}", child.id,
                                               child=cleaning.id)


async def _clean_officers_posts(records: Records, t: Translator, parent: Alert) -> Effects:
    """The requests in the officers' channels quote the description: each is edited to a
    redacted line; the map and the photo (images, which cannot become text) are deleted."""
    ids = [parent.id] + [child.id for child in await records.stores.alerts.children(parent.id)
                         if child.kind in OPERATOR_TEXT]
    return Effects((
        *(EditTracked(REQUEST, number, Outgoing(t("lifecycle.request_redacted", number=number,
                                                  alert=parent.id)))
          for number in ids),
        DeleteTracked(MAP, parent.id), DeleteTracked(PHOTO, parent.id)))


async def clean_closing(services: Services, t: Translator, closing: Alert,
                        now: datetime) -> Effects:
    """A protected alert's closing text (it may name the person), cleaned once the alert
    would have expired. Call inside a transaction; nothing to do if already cleaned."""
    if not await services.stores.alerts.close(closing.id, "expired", now):
        return NO_EFFECTS
    requester = ChatRef(closing.request_platform, closing.request_chat_id)
    cleaning = await issue_follow_up(services, closing, AlertKind.REDACT, "system", requester, now)
    await services.stores.audit.record(now, "system", "alert.redact", closing.id,
                                       child=cleaning.id)
    return Effects.of(EditTracked(REQUEST, closing.id, Outgoing(t(
        "lifecycle.request_redacted", number=closing.id, alert=closing.parent_id))),
                      wake_dispatcher=True)
