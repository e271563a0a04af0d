"""Alerts, their state changes, approvals, and the officers' posts about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import parse_stamp, stamp
from bot.enums import ALERT_TRANSITIONS, AlertKind, AlertStatus, Decision
from bot.storage.database import Database, Row

# Column set when an alert enters a state, so each state change keeps its time.
STATE_TIME_COLUMN = {
    AlertStatus.APPROVED: "decided_at",
    AlertStatus.REJECTED: "decided_at",
    AlertStatus.BROADCASTING: "broadcast_started_at",
    AlertStatus.DONE: "completed_at",
}


class IllegalTransition(RuntimeError):
    """A status change the alert's life does not have (``ALERT_TRANSITIONS``): a bug."""


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_stamp(text)


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    category: str
    perimeter: str
    perimeter_json: str
    all_communities: bool
    body: str
    facts_at: datetime
    requested_by: str
    request_platform: str
    request_chat_id: str
    status: AlertStatus
    required_approvals: int
    stale_override: bool
    rejection_reason: str | None
    created_at: datetime
    decided_at: datetime | None
    broadcast_started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime
    kind: AlertKind = AlertKind.ALERT
    parent_id: int | None = None
    exercise: bool = False
    prosecutor_ref: str | None = None
    closed: str | None = None  # ended | expired | recalled
    send_at: datetime | None = None
    schedule_id: int | None = None
    closed_at: datetime | None = None
    facts_stated: bool = False  # the operator said when the facts happened
    organisation: str = "defaut"  # the issuing organisation's key (bot/organisations.py)

    @classmethod
    def from_row(cls, row: Row) -> Alert:
        return cls(
            row["id"], row["category"], row["perimeter"], row["perimeter_json"],
            bool(row["all_communities"]), row["body"], parse_stamp(row["facts_at"]),
            row["requested_by"],
            row["request_platform"], row["request_chat_id"], AlertStatus(row["status"]),
            row["required_approvals"], bool(row["stale_override"]), row["rejection_reason"],
            parse_stamp(row["created_at"]), _moment(row["decided_at"]),
            _moment(row["broadcast_started_at"]), _moment(row["completed_at"]),
            parse_stamp(row["expires_at"]), AlertKind(row["kind"]), row["parent_id"],
            bool(row["exercise"]), row["prosecutor_ref"], row["closed"], _moment(row["send_at"]),
            row["schedule_id"], _moment(row["closed_at"]), bool(row["facts_stated"]),
            row["organisation"])


@dataclass(frozen=True, slots=True)
class NewAlert:
    category: str
    perimeter: str
    perimeter_json: str
    communes: frozenset[str]
    communities: frozenset[str]
    all_communities: bool
    body: str
    facts_at: datetime
    requested_by: str
    request_platform: str
    request_chat_id: str
    required_approvals: int
    expires_at: datetime
    kind: AlertKind = AlertKind.ALERT
    parent_id: int | None = None
    exercise: bool = False
    send_at: datetime | None = None
    schedule_id: int | None = None
    facts_stated: bool = False
    organisation: str = "defaut"


@dataclass(frozen=True, slots=True)
class Approval:
    officer: str
    decision: Decision
    reason: str | None
    override_stale: bool
    decided_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Approval:
        return cls(row["officer"], Decision(row["decision"]), row["reason"],
                   bool(row["override_stale"]), parse_stamp(row["decided_at"]))


@dataclass(frozen=True, slots=True)
class PostedMessage:
    platform: str
    chat_id: str
    message_id: str


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, alert: NewAlert, now: datetime) -> Alert:
        async with self.db.transaction():
            alert_id = await self.db.insert(
                "INSERT INTO alerts (category, perimeter, perimeter_json, all_communities, body,"
                " facts_at, requested_by, request_platform, request_chat_id, status,"
                " required_approvals, created_at, expires_at, kind, parent_id, exercise, send_at,"
                " schedule_id, facts_stated, organisation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alert.category, alert.perimeter, alert.perimeter_json, int(alert.all_communities),
                 alert.body, stamp(alert.facts_at), alert.requested_by,
                 alert.request_platform, alert.request_chat_id, alert.required_approvals,
                 stamp(now), stamp(alert.expires_at), alert.kind, alert.parent_id,
                 int(alert.exercise), stamp(alert.send_at) if alert.send_at else None,
                 alert.schedule_id, int(alert.facts_stated), alert.organisation))
            await self.db.executemany(
                "INSERT INTO alert_communes (alert_id, insee) VALUES (?, ?)",
                [(alert_id, code) for code in sorted(alert.communes)])
            await self.db.executemany(
                "INSERT INTO alert_communities (alert_id, community) VALUES (?, ?)",
                [(alert_id, key) for key in sorted(alert.communities)])
            await self._log_transition(alert_id, AlertStatus.PENDING, alert.requested_by, now)
        created = await self.get(alert_id)
        assert created is not None
        return created

    async def get(self, alert_id: int) -> Alert | None:
        row = await self.db.fetchone("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return None if row is None else Alert.from_row(row)

    async def communes(self, alert_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT insee FROM alert_communes WHERE alert_id = ? ORDER BY insee", (alert_id,))
        return [row[0] for row in rows]

    async def communities(self, alert_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT community FROM alert_communities WHERE alert_id = ? ORDER BY community",
            (alert_id,))
        return [row[0] for row in rows]

    async def recent_of(self, organisations: frozenset[str] | None,
                        limit: int = 10) -> list[Alert]:
        """The latest alerts of these organisations (None: of all)."""
        if organisations is None:
            rows = await self.db.fetchall(
                "SELECT * FROM alerts WHERE kind = 'alert' ORDER BY id DESC LIMIT ?", (limit,))
        else:
            keys = tuple(sorted(organisations))
            marks = ", ".join("?" * len(keys)) or "NULL"
            rows = await self.db.fetchall(
                f"SELECT * FROM alerts WHERE kind = 'alert' AND organisation IN ({marks})"
                " ORDER BY id DESC LIMIT ?", (*keys, limit))
        return [Alert.from_row(row) for row in rows]

    async def recent_by(self, requester: str, limit: int = 10) -> list[Alert]:
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE requested_by = ? ORDER BY id DESC LIMIT ?",
            (requester, limit))
        return [Alert.from_row(row) for row in rows]

    async def transition(self, alert_id: int, expected: AlertStatus, new: AlertStatus,
                         actor: str, now: datetime, reason: str | None = None) -> bool:
        """Move an alert from ``expected`` to ``new``; False if it was no longer ``expected``.
        A change ``ALERT_TRANSITIONS`` does not allow raises ``IllegalTransition``."""
        if new not in ALERT_TRANSITIONS[AlertStatus(expected)]:
            raise IllegalTransition(f"alert {alert_id}: {expected} → {new}")
        column = STATE_TIME_COLUMN.get(new)
        stamp_sql = f", {column} = :now" if column else ""
        async with self.db.transaction():
            changed = await self.db.execute(
                f"UPDATE alerts SET status = :new, rejection_reason = coalesce(:reason,"
                f" rejection_reason){stamp_sql} WHERE id = :id AND status = :expected",
                {"new": new, "reason": reason, "now": stamp(now), "id": alert_id,
                 "expected": expected})
            if changed:
                await self._log_transition(alert_id, new, actor, now)
        return changed == 1

    async def transitions(self, alert_id: int) -> list[tuple[str, str, datetime]]:
        rows = await self.db.fetchall(
            "SELECT status, actor, at FROM alert_transitions WHERE alert_id = ? ORDER BY id",
            (alert_id,))
        return [(row[0], row[1], parse_stamp(row[2])) for row in rows]

    async def mark_reported(self, alert_id: int, now: datetime) -> bool:
        """Claim the right to post the final report: True exactly once per alert."""
        changed = await self.db.execute(
            "UPDATE alerts SET reported_at = ? WHERE id = ? AND reported_at IS NULL",
            (stamp(now), alert_id))
        return changed == 1

    async def unreported_broadcasts(self) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT id FROM alerts WHERE status = 'done' AND reported_at IS NULL ORDER BY id")
        return [row[0] for row in rows]

    async def broadcasts_without_work(self) -> list[int]:
        """Alerts still 'broadcasting' whose outbox has nothing pending or in flight."""
        rows = await self.db.fetchall(
            "SELECT id FROM alerts a WHERE status = 'broadcasting' AND resolve_after IS NULL"
            " AND NOT EXISTS ("
            " SELECT 1 FROM deliveries d WHERE d.alert_id = a.id"
            " AND d.status IN ('pending', 'sending')) ORDER BY id")
        return [row[0] for row in rows]

    async def add_approval(self, alert_id: int, officer: str, decision: str, reason: str | None,
                           override_stale: bool, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO approvals (alert_id, officer, decision, reason, override_stale,"
            " decided_at) VALUES (?, ?, ?, ?, ?, ?)",
            (alert_id, officer, decision, reason, int(override_stale), stamp(now)))

    async def approvals(self, alert_id: int) -> list[Approval]:
        rows = await self.db.fetchall(
            "SELECT * FROM approvals WHERE alert_id = ? ORDER BY id", (alert_id,))
        return [Approval.from_row(row) for row in rows]

    async def set_resolve_after(self, alert_id: int, subscriber_id: int | None) -> None:
        await self.db.execute("UPDATE alerts SET resolve_after = ? WHERE id = ?",
                              (subscriber_id, alert_id))

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, count(*) FROM alerts GROUP BY status")
        return {row[0]: int(row[1]) for row in rows}

    async def broadcasting(self) -> list[Alert]:
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE status = 'broadcasting' ORDER BY id")
        return [Alert.from_row(row) for row in rows]

    async def resolving(self) -> list[tuple[int, int]]:
        """Broadcasts whose recipients are still being written: (alert id, resume after)."""
        rows = await self.db.fetchall(
            "SELECT id, resolve_after FROM alerts WHERE status = 'broadcasting'"
            " AND resolve_after IS NOT NULL ORDER BY id")
        return [(row[0], row[1]) for row in rows]

    async def set_prosecutor_ref(self, alert_id: int, reference: str) -> None:
        await self.db.execute("UPDATE alerts SET prosecutor_ref = ? WHERE id = ?",
                              (reference, alert_id))

    async def close(self, alert_id: int, how: str, now: datetime) -> bool:
        """Mark a broadcast alert ended/expired/recalled; False if it was already closed."""
        changed = await self.db.execute(
            "UPDATE alerts SET closed = ?, closed_at = ? WHERE id = ? AND closed IS NULL",
            (how, stamp(now), alert_id))
        return changed == 1

    async def children(self, parent_id: int) -> list[Alert]:
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE parent_id = ? ORDER BY id", (parent_id,))
        return [Alert.from_row(row) for row in rows]

    async def pending_to_remind(self, created_before: datetime) -> list[Alert]:
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE status = 'pending' AND reminded_at IS NULL"
            " AND created_at <= ? ORDER BY id", (stamp(created_before),))
        return [Alert.from_row(row) for row in rows]

    async def mark_reminded(self, alert_id: int, now: datetime) -> None:
        await self.db.execute("UPDATE alerts SET reminded_at = ? WHERE id = ?",
                              (stamp(now), alert_id))

    async def pending_created_before(self, moment: datetime) -> list[Alert]:
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE status = 'pending' AND created_at <= ? ORDER BY id",
            (stamp(moment),))
        return [Alert.from_row(row) for row in rows]

    async def due_to_send(self, now: datetime) -> list[Alert]:
        """Approved scheduled messages whose time has come."""
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE status = 'approved' AND send_at <= ? ORDER BY id",
            (stamp(now),))
        return [Alert.from_row(row) for row in rows]

    async def due_to_expire(self, now: datetime) -> list[Alert]:
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE kind = 'alert' AND status IN ('broadcasting', 'done')"
            " AND closed IS NULL AND expires_at <= ? ORDER BY id", (stamp(now),))
        return [Alert.from_row(row) for row in rows]

    async def first_approved_occurrence(self, schedule_id: int) -> Alert | None:
        """The occurrence of a schedule the officers approved (later ones are copies)."""
        row = await self.db.fetchone(
            "SELECT * FROM alerts a WHERE schedule_id = ? AND EXISTS (SELECT 1 FROM approvals p"
            " WHERE p.alert_id = a.id AND p.decision = 'approve') ORDER BY id LIMIT 1",
            (schedule_id,))
        return None if row is None else Alert.from_row(row)

    async def protected_closings_due(self, now: datetime,
                                     categories: list[str]) -> list[Alert]:
        """Closing texts of protected categories past their alert's planned expiry."""
        marks = ", ".join("?" * len(categories))
        rows = await self.db.fetchall(
            "SELECT * FROM alerts WHERE kind = 'closing' AND status IN ('broadcasting', 'done')"
            f" AND closed IS NULL AND expires_at <= ? AND category IN ({marks}) ORDER BY id",
            (stamp(now), *categories))
        return [Alert.from_row(row) for row in rows]

    async def set_stale_override(self, alert_id: int) -> None:
        await self.db.execute("UPDATE alerts SET stale_override = 1 WHERE id = ?", (alert_id,))

    async def remember_post(self, purpose: str, alert_id: int, post: PostedMessage,
                            now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO posted_messages (purpose, alert_id, platform, chat_id, message_id,"
            " posted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (purpose, alert_id, post.platform, post.chat_id, post.message_id, stamp(now)))

    async def posts(self, purpose: str, alert_id: int) -> list[PostedMessage]:
        rows = await self.db.fetchall(
            "SELECT platform, chat_id, message_id FROM posted_messages"
            " WHERE purpose = ? AND alert_id = ? ORDER BY id", (purpose, alert_id))
        return [PostedMessage(row[0], row[1], row[2]) for row in rows]

    async def _log_transition(self, alert_id: int, status: str, actor: str,
                              now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO alert_transitions (alert_id, status, actor, at) VALUES (?, ?, ?, ?)",
            (alert_id, status, actor, stamp(now)))
