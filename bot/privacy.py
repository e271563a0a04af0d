"""Personal data: pseudonyms for the audit trail, access, erasure and retention.

What is kept and why is listed in docs/data-register.md; this module is where the
rights are exercised. Erasure keeps only anonymous delivery counts.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from bot.clock import stamp
from bot.context import Services
from bot.limits import PHOTO_KEPT
from bot.people import forget_names
from bot.storage.database import Database
from bot.storage.dialect import Dialect
from bot.storage.subscribers import Subscriber

log = logging.getLogger(__name__)
ERASED = "erased"


async def erase_subscriber(services: Services, subscriber: Subscriber) -> None:
    """Delete the subscriber and unlink everything that pointed to them, in one go, and
    out of the files too (``forget_in_files``)."""
    await _erase(services, subscriber)
    # After commit (and the replies: theirs name the chat): the erasure is written with
    # the event that asked for it.
    await services.db.after_commit(lambda: forget_in_files(services.db))


async def _erase(services: Services, subscriber: Subscriber) -> None:
    db = services.db
    async with db.transaction():
        await db.execute(
            # A negative recipient id (no subscriber has one) unlinks the row and keeps the
            # outbox key (alert, recipient, action) unique.
            "UPDATE deliveries SET chat_id = ? || ':' || id, message_id = NULL, recipient_id = -id"
            " WHERE recipient_kind = 'subscriber' AND recipient_id = ?", (ERASED, subscriber.id))
        await db.execute(
            # The text goes too: people write their name or phone number in it.
            "UPDATE tips SET chat_id = ?, subscriber_id = NULL, body = '', latitude = NULL,"
            " longitude = NULL WHERE subscriber_id = ? OR (platform = ? AND chat_id = ?)",
            (ERASED, subscriber.id, subscriber.platform, subscriber.chat_id))
        identity = f"{subscriber.platform}:{subscriber.platform_user_id}"
        # Through the store: an event's handling may have this conversation in memory.
        await services.stores.conversations.delete(identity)
        # A staff member who is also a subscriber: their platform name goes too (it comes
        # back at their next message while they hold a role, as the register says).
        await forget_names(services, [identity])
        await services.stores.subscribers.delete(subscriber)


async def scrub_free_pages_once(db: Database) -> None:
    """Rows deleted before secure_delete was on may lie in free pages: migration 0008 asks
    for one rewrite of the file (VACUUM), done at the next start of the bot."""
    if await db.fetchval("SELECT 1 FROM meta WHERE key = 'vacuum_pending'") is None:
        return
    if db.dialect is not Dialect.SQLITE:  # its VACUUM frees no page of a file to scrub
        await db.execute("DELETE FROM meta WHERE key = 'vacuum_pending'")
        return
    try:
        await db.execute("VACUUM")  # needs free disk space as large as the database
    except sqlite3.Error as error:  # serving alerts comes first: try again next start
        log.warning("privacy: the one-time rewrite of the database failed (%s)", error)
        return
    await db.execute("DELETE FROM meta WHERE key = 'vacuum_pending'")
    await forget_in_files(db)


async def forget_in_files(db: Database) -> None:
    """secure_delete zeroes erased rows in the database, but the WAL still holds the pages
    written before: copy them back and empty it. A reader (a backup) can hold it up; the
    daily purge tries again. PostgreSQL has no such file of its own to empty."""
    if db.dialect is not Dialect.SQLITE:
        return
    busy = await db.fetchval("PRAGMA wal_checkpoint(TRUNCATE)")
    if busy:
        log.warning("privacy: the WAL could not be emptied after an erasure (a reader was"
                    " active); the daily purge will try again")


async def export_subscriber(services: Services, subscriber: Subscriber) -> dict[str, Any]:
    """Everything held about one subscriber (right of access), field by field as
    docs/data-register.md lists it (tests/test_security.py compares the two)."""
    db = services.db
    profile = await services.stores.subscribers.profile(subscriber)
    identity = f"{subscriber.platform}:{subscriber.platform_user_id}"
    row = await db.fetchone("SELECT created_at, updated_at FROM subscribers WHERE id = ?",
                            (subscriber.id,))
    names = {c: commune.name for c in profile.communes
             if (commune := services.geo.by_insee(c)) is not None}
    return {
        "subscriber_number": subscriber.id,
        "platform": subscriber.platform, "platform_user_id": subscriber.platform_user_id,
        "chat_id": subscriber.chat_id, "language": subscriber.language,
        "status": subscriber.status, "consent_at": subscriber.consent_at,
        "consent_version": subscriber.consent_version,
        "created_at": row["created_at"] if row else None,
        "updated_at": row["updated_at"] if row else None,
        "communes": [{"insee": code, "name": names.get(code)} for code in profile.communes],
        "communities": profile.communities,
        "alerts_received": await _copies_received(services, subscriber),
        "information_sent": await _tips_sent(services, subscriber),
        "open_conversation": await _open_conversation(services, identity),
        "invitations_used": [dict(row) for row in
                             await services.stores.invitations.used_by(subscriber.id)],
        "pending_requests": [
            {"request_number": r.id, "community": r.community, "presentation": r.presentation,
             "created_at": stamp(r.created_at), "expires_at": stamp(r.expires_at)}
            for r in await services.stores.invitations.pending_of(subscriber.id)],
        "audit_events": await _own_audit_events(services, identity),
        "exported_at": stamp(services.clock.now()),
    }


async def _copies_received(services: Services, subscriber: Subscriber) -> list[dict[str, Any]]:
    """Each copy sent, with where it went and its message id (kept to edit or delete it)."""
    rows = await services.db.fetchall(
        "SELECT d.alert_id, a.category, d.status, d.chat_id, d.message_id, d.sent_at,"
        " d.acknowledged_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
        " WHERE d.recipient_kind = 'subscriber' AND d.recipient_id = ? AND d.action = 'send'"
        " ORDER BY d.id", (subscriber.id,))
    return [dict(row) for row in rows]


async def _tips_sent(services: Services, subscriber: Subscriber) -> list[dict[str, Any]]:
    rows = await services.db.fetchall(
        "SELECT id, alert_id, body, latitude, longitude, platform, chat_id, subscriber_id,"
        " received_at, answered_at FROM tips WHERE subscriber_id = ? ORDER BY id",
        (subscriber.id,))
    return [dict(row) for row in rows]


async def _open_conversation(services: Services, identity: str) -> dict[str, Any] | None:
    """The unfinished conversation, every column (its choices so far are in ``data``)."""
    row = await services.db.fetchone("SELECT * FROM conversations WHERE identity = ?",
                                     (identity,))
    if row is None:
        return None
    return {**dict(row), "data": json.loads(row["data"])}


async def _own_audit_events(services: Services, identity: str) -> list[dict[str, Any]]:
    """What the audit trail holds about this person: the events recorded under their
    pseudonym (staff appear by name; subscribers only this way)."""
    actor = services.stores.audit.pseudonym(identity)
    rows = await services.db.fetchall(
        "SELECT at, actor, action, alert_id, detail FROM audit_events WHERE actor = ?"
        " ORDER BY id", (actor,))
    return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]


def export_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


async def purge(services: Services, now: datetime) -> dict[str, int]:
    """The retention rules of the data register, run by the clock once a day."""
    settings, db = services.config.privacy, services.db
    counts = {"blocked": 0, "paused": 0, "message_ids": 0, "staff_names": 0, "photos": 0}
    # Not counted in the audit: ids of events handled and of replies sent, kept a week.
    await services.stores.inbox.prune(now)
    await services.stores.replies.prune(now)
    for status, days in (("blocked", settings.blocked_retention_days),
                         ("paused", settings.paused_retention_days)):
        rows = await db.fetchall(
            "SELECT * FROM subscribers WHERE status = ? AND updated_at <= ?",
            (status, stamp(now - timedelta(days=days))))
        for row in rows:
            await _erase(services, Subscriber.from_row(row))
        counts[status] = len(rows)
    counts["message_ids"] = await db.execute(
        "UPDATE deliveries SET message_id = NULL, chat_id = ? || ':' || id"
        " WHERE recipient_kind = 'subscriber' AND message_id IS NOT NULL AND alert_id IN ("
        "  SELECT a.id FROM alerts a LEFT JOIN alerts p ON p.id = a.parent_id"
        "  WHERE coalesce(p.closed_at, a.closed_at) <= ?)",
        (ERASED, stamp(now - timedelta(days=settings.message_ids_retention_days))))
    # Staff names are kept while the person holds a role (the configuration may have
    # dropped them since the last start) and is not named by the configuration.
    counts["staff_names"] = await forget_names(services)
    # Each alert's photo is deleted at its end; these are the ones an interrupted end
    # left (the daily safety net), and operators' photos never attached.
    counts["photos"] = (await services.stores.photos.forget_ended()
                        + await services.stores.photos.forget_drafts(now - PHOTO_KEPT))
    if any(counts.values()):
        await services.stores.audit.record(now, "system", "privacy.purge", None, **counts)
    await forget_in_files(db)
    return counts
