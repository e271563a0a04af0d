"""What WhatsApp's rules need remembered (migration 0014): each person's 24-hour window and
unreachable mark, every message's last status and whether it is billed, the webhook
deliveries already handled. Written by the WhatsApp transport; read by reports and /stats.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from bot.clock import parse_stamp, stamp
from bot.storage.database import Database, statement
from bot.storage.deliveries import FROM_JSON, SUBSCRIBER_MATCH

WINDOW = timedelta(hours=24)  # free text only this long after the person's last message


class Status(IntEnum):
    """A message's status, by rank: a status only replaces a lower one (webhooks may come
    out of order: « read » before « delivered »); a failure replaces any."""

    ACCEPTED = 0  # the API took it (our own record, before any webhook)
    SENT = 1
    DELIVERED = 2
    READ = 3
    FAILED = 9

    @classmethod
    def named(cls, name: str) -> Status | None:
        return cls.__members__.get(name.upper())


@dataclass(frozen=True, slots=True)
class Cost:
    billed: int  # template messages charged
    euros: float


class WhatsAppStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the 24-hour window and the unreachable mark -------------------------------------

    async def last_inbound(self, wa_id: str) -> datetime | None:
        value = await self.db.fetchval(
            "SELECT last_inbound_at FROM whatsapp_contacts WHERE wa_id = ?", (wa_id,))
        return None if value is None else parse_stamp(str(value))

    async def heard_from(self, wa_id: str, now: datetime) -> None:
        """The person wrote: their window opens, their unreachable mark goes."""
        await self.db.later(statement(
            "INSERT INTO whatsapp_contacts (wa_id, last_inbound_at) VALUES (?, ?)"
            " ON CONFLICT (wa_id) DO UPDATE SET last_inbound_at = excluded.last_inbound_at,"
            " unreachable_at = NULL, unreachable_code = NULL", (wa_id, stamp(now))),
            key=("whatsapp.heard", wa_id))

    async def window_closed(self, wa_id: str) -> None:
        """Meta says the window is closed (131047) whatever our clock says."""
        await self.db.grouped(statement(
            "UPDATE whatsapp_contacts SET last_inbound_at = NULL WHERE wa_id = ?", (wa_id,)))

    async def mark_unreachable(self, wa_id: str, code: int, now: datetime) -> None:
        await self.db.grouped(statement(
            "INSERT INTO whatsapp_contacts (wa_id, unreachable_at, unreachable_code)"
            " VALUES (?, ?, ?) ON CONFLICT (wa_id) DO UPDATE SET"
            " unreachable_at = excluded.unreachable_at,"
            " unreachable_code = excluded.unreachable_code", (wa_id, stamp(now), code)))

    async def unreachable(self, wa_id: str) -> bool:
        return await self.db.fetchval(
            "SELECT 1 FROM whatsapp_contacts WHERE wa_id = ? AND unreachable_at IS NOT NULL",
            (wa_id,)) is not None

    # -- messages and their statuses -----------------------------------------------------

    async def sent(self, message_id: str, template: bool, now: datetime) -> None:
        """A message the API accepted; a status webhook may have come first."""
        await self.db.grouped(statement(
            "INSERT INTO whatsapp_messages (message_id, template, billable, status, status_rank,"
            " sent_at, updated_at) VALUES (?, ?, ?, 'accepted', 0, ?, ?)"
            " ON CONFLICT (message_id) DO UPDATE SET template = excluded.template,"
            " billable = excluded.billable",
            (message_id, int(template), int(template), stamp(now), stamp(now))))

    async def status(self, message_id: str, status: Status, now: datetime,
                     error_code: int | None = None, billable: bool | None = None) -> None:
        """A status webhook: recorded unless a higher status is already known."""
        # Meta's pricing block says whether it is charged; without it, what we knew stays.
        billed = "" if billable is None else " billable = excluded.billable,"
        await self.db.grouped(statement(
            "INSERT INTO whatsapp_messages (message_id, template, billable, status, status_rank,"
            " error_code, sent_at, updated_at) VALUES (?, 0, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (message_id) DO UPDATE SET"
            " status = CASE WHEN excluded.status_rank >= whatsapp_messages.status_rank"
            "   THEN excluded.status ELSE whatsapp_messages.status END,"
            " status_rank = CASE WHEN excluded.status_rank >= whatsapp_messages.status_rank"
            "   THEN excluded.status_rank ELSE whatsapp_messages.status_rank END,"
            " error_code = coalesce(excluded.error_code, whatsapp_messages.error_code),"
            + billed + " updated_at = excluded.updated_at",
            (message_id, int(bool(billable)), status.name.lower(), int(status), error_code,
             stamp(now), stamp(now))))

    async def status_of(self, message_id: str) -> tuple[str, int | None] | None:
        row = await self.db.fetchone(
            "SELECT status, error_code FROM whatsapp_messages WHERE message_id = ?",
            (message_id,))
        return None if row is None else (str(row[0]), row[1])

    async def statuses(self, alert_id: int) -> dict[str, int]:
        """The last status of each WhatsApp copy of an alert: its outbox rows' messages."""
        rows = await self.db.fetchall(
            "SELECT m.status, count(*) FROM deliveries d"
            " JOIN whatsapp_messages m ON m.message_id = d.message_id"
            " WHERE d.alert_id = ? AND d.platform = 'whatsapp' GROUP BY m.status", (alert_id,))
        return {str(row[0]): int(row[1]) for row in rows}

    async def requeue(self, message_id: str, now: datetime) -> int:
        """An outbox row whose message Meta refused after accepting it (131047: the window
        had closed): sent again (the transport then uses the template)."""
        return await self.db.execute(
            "UPDATE deliveries SET status = 'pending', next_try_at = ?, message_id = NULL"
            " WHERE platform = 'whatsapp' AND status = 'sent' AND action = 'send'"
            " AND message_id = ?", (stamp(now), message_id))

    # -- cost ------------------------------------------------------------------------------

    async def alert_cost(self, alert_id: int, price: float) -> Cost:
        billed = int(await self.db.fetchval(
            "SELECT count(*) FROM deliveries d JOIN whatsapp_messages m"
            " ON m.message_id = d.message_id WHERE d.alert_id = ? AND d.platform = 'whatsapp'"
            # an edit row that sent nothing (an all-clear's) keeps the copy's own id
            " AND (d.target_message_id IS NULL OR d.message_id <> d.target_message_id)"
            " AND m.billable = 1", (alert_id,)) or 0)
        return Cost(billed, billed * price)

    async def cost_since(self, since: datetime, price: float) -> Cost:
        billed = int(await self.db.fetchval(
            "SELECT count(*) FROM whatsapp_messages WHERE billable = 1 AND sent_at >= ?",
            (stamp(since),)) or 0)
        return Cost(billed, billed * price)

    async def recipients(self, communes: Iterable[str], communities: Iterable[str],
                         all_communities: bool) -> int:
        """Active WhatsApp subscribers an alert would reach: the preview's cost estimate."""
        params = {"communes": json.dumps(sorted(communes)),
                  "communities": json.dumps(sorted(communities)),
                  "all_communities": int(all_communities)}
        return int(await self.db.fetchval(
            "SELECT count(*) " + SUBSCRIBER_MATCH.format(**FROM_JSON)
            + " AND s.platform = 'whatsapp'", params) or 0)

    # -- webhook deliveries and retention ------------------------------------------------

    async def first_delivery(self, digest: str, now: datetime) -> bool:
        """Whether this webhook body is new (and now remembered)."""
        return await self.db.execute(
            "INSERT INTO whatsapp_webhooks (digest, received_at) VALUES (?, ?)"
            " ON CONFLICT (digest) DO NOTHING", (digest, stamp(now))) == 1

    async def purge(self, now: datetime, message_days: int, unreachable_days: int) -> None:
        """Nothing kept longer than it serves: a window is 24 hours, Meta retries a webhook
        for days, statuses as long as message ids (privacy.message_ids_retention_days)."""
        async with self.db.transaction():
            await self.db.execute(
                "DELETE FROM whatsapp_contacts WHERE (last_inbound_at IS NULL"
                " OR last_inbound_at < ?) AND (unreachable_at IS NULL OR unreachable_at < ?)",
                (stamp(now - WINDOW), stamp(now - timedelta(days=unreachable_days))))
            await self.db.execute("DELETE FROM whatsapp_webhooks WHERE received_at < ?",
                                  (stamp(now - timedelta(days=7)),))
            await self.db.execute("DELETE FROM whatsapp_messages WHERE sent_at < ?",
                                  (stamp(now - timedelta(days=message_days)),))
