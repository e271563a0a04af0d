"""The outbox: one row per (alert, recipient), moved pending → sending → sent/failed/blocked."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.clock import parse_stamp, stamp
from bot.enums import DeliveryAction, DeliveryStatus
from bot.limits import DELIVERY_ERROR_CHARS
from bot.storage.database import Database, Row, query, statement

# Matching recipients: active, in one of the communes, and (unless the alert reaches
# everyone) in one of the target communities. Written to start from the alert's communes
# (index on subscriber_communes.insee): a scan of every subscriber probing each commune
# took 6 s for 100,000 subscribers; this takes a fraction of a second.
# The rule on the subscriber, shared by the count and the slices below.
SUBSCRIBER_WANTED = """
      s.status = 'active'
      AND (:all_communities = 1 OR EXISTS (
            SELECT 1 FROM subscriber_communities sy WHERE sy.subscriber_id = s.id
            AND sy.community IN ({communities})))
"""
SUBSCRIBER_MATCH = """
    FROM subscribers s
    WHERE s.id IN (SELECT sc.subscriber_id FROM subscriber_communes sc
                   WHERE sc.insee IN ({communes}))
      AND""" + SUBSCRIBER_WANTED
GROUP_MATCH = """
    FROM chat_groups g
    WHERE g.id IN (SELECT gc.group_id FROM group_communes gc WHERE gc.insee IN ({communes}))
      AND g.status = 'active'
      AND (:all_communities = 1
           OR NOT EXISTS (SELECT 1 FROM group_communities gy0 WHERE gy0.group_id = g.id)
           OR g.id IN (SELECT gy.group_id FROM group_communities gy
                       WHERE gy.community IN ({communities})))
"""
FROM_JSON = {"communes": "SELECT value FROM json_each(:communes)",
             "communities": "SELECT value FROM json_each(:communities)"}
FROM_ALERT = {"communes": "SELECT insee FROM alert_communes WHERE alert_id = :alert_id",
              "communities": "SELECT community FROM alert_communities WHERE alert_id = :alert_id"}


# Due rows marked 'sending', with each subscriber's language. On PostgreSQL several bot
# processes may share the outbox (a leader and a standby taking over): a row another
# transaction is claiming is skipped, never claimed twice (SQLite has one writer at a time).
CLAIM = ("UPDATE deliveries SET status = 'sending', attempts = attempts + 1"
         " WHERE id IN (SELECT id FROM deliveries WHERE platform = ? AND status = 'pending'"
         "  AND next_try_at <= ? ORDER BY priority DESC, id LIMIT ?{lock})"
         " RETURNING *, (SELECT s.language FROM subscribers s"
         "  WHERE deliveries.recipient_kind = 'subscriber'"
         "  AND s.id = deliveries.recipient_id) AS language")
SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

# One slice of subscriber ids, reached from the alert's communes: a range seek per commune
# in the (insee, subscriber_id) index, so a slice reads only its own rows (re-matching every
# subscriber for each slice took 2.1 s for 100,000). Written in subscriber order, so the
# outbox's indexes grow at their ends instead of at random pages.
SUBSCRIBER_SLICE = """
    FROM alert_communes ac
    JOIN subscriber_communes sc ON sc.insee = ac.insee
         AND sc.subscriber_id > :after AND sc.subscriber_id <= :upto
    JOIN subscribers s ON s.id = sc.subscriber_id
    WHERE ac.alert_id = :alert_id AND""" + SUBSCRIBER_WANTED.format(
    communities=FROM_ALERT["communities"]) + """
    ORDER BY s.id
"""

# The copy of an alert delivered to a chat, found through the chat's recipient (the outbox
# is keyed by recipient; CROSS JOIN keeps SQLite on that key). Parameters: platform, chat
# twice, then the alert, platform, chat. 'sending' counts: the copy may be on the phone
# before the dispatcher records its batch, and a quick « Reçu » is a receipt all the same.
DELIVERED_TO_CHAT = """
    FROM (SELECT 'subscriber' AS kind, id FROM subscribers WHERE platform = ? AND chat_id = ?
          UNION ALL
          SELECT 'group', id FROM chat_groups WHERE platform = ? AND chat_id = ?) r
    CROSS JOIN deliveries d ON d.alert_id = ? AND d.recipient_kind = r.kind
         AND d.recipient_id = r.id AND d.action = 'send'
    WHERE d.status IN ('sent', 'sending') AND d.platform = ? AND d.chat_id = ?
"""

INSERT_ROWS = ("INSERT OR IGNORE INTO deliveries (alert_id, recipient_kind, recipient_id,"
               " platform, chat_id, priority, next_try_at) ")


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    alert_id: int
    recipient_kind: str
    recipient_id: int
    platform: str
    chat_id: str
    status: DeliveryStatus
    attempts: int
    action: DeliveryAction = DeliveryAction.SEND
    target_message_id: str | None = None
    reply_to_message_id: str | None = None
    language: str | None = None  # a subscriber's, when claimed (claim_due); None: the bot's

    @classmethod
    def from_row(cls, row: Row) -> Delivery:
        return cls(row["id"], row["alert_id"], row["recipient_kind"], row["recipient_id"],
                   row["platform"], row["chat_id"], DeliveryStatus(row["status"]),
                   row["attempts"], DeliveryAction(row["action"]), row["target_message_id"],
                   row["reply_to_message_id"])


@dataclass(frozen=True, slots=True)
class Reach:
    subscribers: int
    groups: int


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    dropped: int = 0
    maybe_duplicates: int = 0
    acknowledged: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.sending + self.sent + self.failed + self.blocked + self.dropped

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.sending == 0


class DeliveryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def reach(self, communes: Iterable[str], communities: Iterable[str],
                    all_communities: bool) -> Reach:
        params = {"communes": json.dumps(sorted(communes)),
                  "communities": json.dumps(sorted(communities)),
                  "all_communities": int(all_communities)}
        subscribers = await self.db.fetchval(
            "SELECT count(*) " + SUBSCRIBER_MATCH.format(**FROM_JSON), params)
        groups = await self.db.fetchval("SELECT count(*) " + GROUP_MATCH.format(**FROM_JSON),
                                        params)
        return Reach(int(subscribers), int(groups))

    async def enqueue_groups(self, alert_id: int, all_communities: bool, priority: int,
                             now: datetime) -> int:
        params = {"alert_id": alert_id, "all_communities": int(all_communities),
                  "priority": priority, "now": stamp(now)}
        return await self.db.execute(
            INSERT_ROWS + "SELECT :alert_id, 'group', g.id, g.platform, g.chat_id, :priority,"
            " :now" + GROUP_MATCH.format(**FROM_ALERT), params)

    async def enqueue_people(self, alert_id: int, identities: Sequence[str], priority: int,
                             now: datetime) -> int:
        """Rows for these people (PLATFORM:ID) whoever they chose to hear about: the mayors
        of the alert's communes (bot/organisations.py). Only subscribers who have not
        paused or left; someone already counted in is not written twice."""
        pairs = [identity.partition(":")[::2] for identity in identities]
        if not pairs:
            return 0
        match = " OR ".join("(s.platform = ? AND s.platform_user_id = ?)" for _ in pairs)
        return await self.db.execute(
            INSERT_ROWS + "SELECT ?, 'subscriber', s.id, s.platform, s.chat_id, ?, ?"
            f" FROM subscribers s WHERE s.status = 'active' AND ({match})",
            (alert_id, priority, stamp(now), *(part for pair in pairs for part in pair)))

    async def enqueue_subscribers(self, alert_id: int, all_communities: bool, priority: int,
                                  now: datetime, after_id: int, span: int) -> int | None:
        """Write the rows of the matching subscribers whose id is in (after_id, after_id +
        span]. Returns where to resume, or None when no subscriber id lies beyond."""
        upto = after_id + span
        params = {"alert_id": alert_id, "all_communities": int(all_communities),
                  "priority": priority, "now": stamp(now), "after": after_id, "upto": upto}
        await self.db.execute(INSERT_ROWS + "SELECT :alert_id, 'subscriber', s.id, s.platform,"
                              " s.chat_id, :priority, :now" + SUBSCRIBER_SLICE, params)
        highest = await self.db.fetchval("SELECT max(id) FROM subscribers")
        return upto if highest is not None and highest > upto else None

    async def claim_due(self, platform: str, now: datetime, limit: int) -> list[Delivery]:
        """Mark due rows 'sending' and return them, with each subscriber's language (read
        now: the copy is written in the language they have when it goes); the attempt
        counts from now."""
        rows = await self.db.run(query(CLAIM.format(lock=""), (platform, stamp(now), limit),
                                       postgresql=CLAIM.format(lock=SKIP_LOCKED)))
        return sorted((replace(Delivery.from_row(row), language=row["language"]) for row in rows),
                      key=lambda d: d.id)

    async def due(self, platform: str, now: datetime) -> tuple[int, datetime | None]:
        """Rows due now on the platform and when the oldest of them fell due. Reads only
        the platform's pending rows (deliveries_claim's first two columns), never the sent
        ones: about 0.1 s with 200,000 pending."""
        row = await self.db.fetchone(
            "SELECT count(*), min(next_try_at) FROM deliveries"
            " WHERE platform = ? AND status = 'pending' AND next_try_at <= ?",
            (platform, stamp(now)))
        assert row is not None  # an aggregate always has a row
        return int(row[0]), None if row[1] is None else parse_stamp(str(row[1]))

    async def started_without_copy(self, alert_id: int) -> datetime | None:
        """When the alert's broadcast started, if none of its copies was sent yet."""
        value = await self.db.fetchval(
            "SELECT coalesce(a.broadcast_started_at, a.decided_at, a.created_at)"
            " FROM alerts a WHERE a.id = ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
            "  WHERE d.alert_id = a.id AND d.status = 'sent' AND d.action = 'send')",
            (alert_id,))
        return None if value is None else parse_stamp(str(value))

    async def next_due(self, platform: str) -> datetime | None:
        value = await self.db.fetchval(
            "SELECT min(next_try_at) FROM deliveries WHERE platform = ? AND status = 'pending'",
            (platform,))
        return None if value is None else parse_stamp(str(value))

    async def mark_sent_many(self, sent: list[tuple[int, str]], now: datetime) -> None:
        await self.db.executemany(
            "UPDATE deliveries SET status = 'sent', message_id = ?, sent_at = ?,"
            " last_error = NULL WHERE id = ?",
            [(message_id, stamp(now), row_id) for row_id, message_id in sent])

    async def mark_final(self, delivery_id: int, status: str, error: str) -> None:
        await self.db.execute(
            "UPDATE deliveries SET status = ?, last_error = ? WHERE id = ?",
            (status, error[:DELIVERY_ERROR_CHARS], delivery_id))

    async def retry_later(self, delivery_id: int, next_try: datetime, error: str,
                          count_attempt: bool = True) -> None:
        await self.db.execute(
            "UPDATE deliveries SET status = 'pending', next_try_at = ?, last_error = ?,"
            " attempts = attempts - ? WHERE id = ?",
            (stamp(next_try), error[:DELIVERY_ERROR_CHARS], 0 if count_attempt else 1, delivery_id))

    async def move_chat(self, delivery_id: int, new_chat_id: str) -> None:
        await self.db.execute("UPDATE deliveries SET chat_id = ? WHERE id = ?",
                              (new_chat_id, delivery_id))

    async def recover_interrupted(self) -> int:
        """After a crash, rows left 'sending' may or may not have gone out: send again,
        and count them as possible duplicates in the report."""
        return await self.db.execute(
            "UPDATE deliveries SET status = 'pending', maybe_duplicate = 1"
            " WHERE status = 'sending'")

    async def counts(self, alert_id: int, action: str = "send") -> DeliveryCounts:
        rows = await self.db.fetchall(
            "SELECT status, count(*), sum(maybe_duplicate), count(acknowledged_at)"
            " FROM deliveries WHERE alert_id = ? AND action = ? GROUP BY status",
            (alert_id, action))
        by_status = {row[0]: int(row[1]) for row in rows}
        duplicates = sum(int(row[2] or 0) for row in rows if row[0] == "sent")
        receipts = sum(int(row[3]) for row in rows)
        return DeliveryCounts(maybe_duplicates=duplicates, acknowledged=receipts, **by_status)

    async def follow_ups_sent(self, alert_id: int, platform: str) -> int:
        """Edits and deletions of an alert sent on ``platform`` (as follow-ups, where it
        can do neither: bot/broadcast/dispatcher.py)."""
        return int(await self.db.fetchval(
            "SELECT count(*) FROM deliveries WHERE alert_id = ? AND platform = ?"
            " AND action IN ('edit', 'delete') AND status = 'sent'", (alert_id, platform)) or 0)

    async def enqueue_followup(self, alert_id: int, parent_id: int, action: str, priority: int,
                               now: datetime) -> int:
        """Rows acting on every delivered copy of the parent: a threaded reply ('send'),
        or an edit or deletion of the copy itself."""
        target = "reply_to_message_id" if action == "send" else "target_message_id"
        return await self.db.execute(
            "INSERT OR IGNORE INTO deliveries (alert_id, recipient_kind, recipient_id, platform,"
            f" chat_id, action, {target}, priority, next_try_at)"
            " SELECT ?, recipient_kind, recipient_id, platform, chat_id, ?, message_id, ?, ?"
            " FROM deliveries WHERE alert_id = ? AND action = 'send' AND status = 'sent'",
            (alert_id, action, priority, stamp(now), parent_id))

    async def drop_pending(self, alert_id: int, reason: str) -> int:
        return await self.db.execute(
            "UPDATE deliveries SET status = 'dropped', last_error = ?"
            " WHERE alert_id = ? AND status = 'pending'", (reason, alert_id))

    async def acknowledge(self, alert_id: int, platform: str, chat_id: str,
                          now: datetime) -> bool | None:
        """Record a receipt: True the first time, False if already noted, None if that chat
        never received the alert (a forged or misrouted button)."""
        row = await self._copy_in_chat(alert_id, platform, chat_id)
        if row is None:
            return None
        if row[1] is not None:
            return False
        await self.db.later(statement("UPDATE deliveries SET acknowledged_at = ? WHERE id = ?",
                                      (stamp(now), row[0])))
        return True

    async def received(self, alert_id: int, platform: str, chat_id: str) -> bool:
        return await self._copy_in_chat(alert_id, platform, chat_id) is not None

    async def _copy_in_chat(self, alert_id: int, platform: str, chat_id: str) -> Row | None:
        return await self.db.fetchone(
            "SELECT d.id, d.acknowledged_at" + DELIVERED_TO_CHAT,
            (platform, chat_id, platform, chat_id, alert_id, platform, chat_id))

    async def fail_platform(self, alert_id: int, platform: str, error: str) -> int:
        return await self.db.execute(
            "UPDATE deliveries SET status = 'failed', last_error = ?"
            " WHERE alert_id = ? AND platform = ? AND status = 'pending'",
            (error, alert_id, platform))

    async def platforms(self, alert_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT platform FROM deliveries WHERE alert_id = ?", (alert_id,))
        return [row[0] for row in rows]
