"""Append-only audit trail of privileged actions and refusals, hash-chained and keyed.

Each event stores an HMAC-SHA256, keyed by the deployment's secret key (bot/keys.py), of
(previous event's hash + its own content): editing, inserting or deleting a past event
breaks every link after it, and the database alone does not allow recomputing them.
Removing the newest events leaves a valid shorter chain: the head (last hash) goes to the
logs and into backups' names, to compare with.

``meta.audit_key`` names the key that signs the chain (``Keys.audit_check``), so a bot
started with another key is refused instead of adding links that never verify. A chain
without it (written before the key: plain SHA-256 links, the oldest none) or signed with
the public development key is signed with the key once, at start, which the trail
(``audit.chain_signed``) and the logs (a warning) record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import stamp
from bot.keys import DEVELOPMENT_SECRET, Keys
from bot.storage.database import (
    Database,
    DatabaseError,
    PgConnection,
    Row,
    Work,
    query,
    statement,
)

log = logging.getLogger(__name__)
CHAIN = ("SELECT id, at, actor, action, alert_id, detail, prev_hash, hash"
         " FROM audit_events ORDER BY id")
LAST_HASH = "SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1"
Link = Callable[[str, tuple[Any, ...]], str]


def canonical(previous: str, content: tuple[Any, ...]) -> bytes:
    return json.dumps([previous, *content], ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def keyed_link(key: bytes) -> Link:
    return lambda previous, content: hmac.new(key, canonical(previous, content),
                                              hashlib.sha256).hexdigest()


def legacy_link(previous: str, content: tuple[Any, ...]) -> str:
    """The links written before the key existed (migrations 0003 to 0007)."""
    return hashlib.sha256(canonical(previous, content)).hexdigest()


INSERT_EVENT = ("INSERT INTO audit_events (at, actor, action, alert_id, detail, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)")
# Two bot processes on one PostgreSQL database (a leader and a standby) must not both link to
# the same tail: the second waits for the first's transaction (its lock ends with it).
CHAIN_LOCK = "SELECT pg_advisory_xact_lock(7340041)"


@dataclass(frozen=True, eq=False)
class Append(Work[None]):
    """One event linked to the chain's tail, read in the same hop as it is written."""

    link: Link
    content: tuple[Any, ...]

    def on_sqlite(self, connection: sqlite3.Connection) -> None:
        cursor = connection.execute(LAST_HASH)
        try:
            found = cursor.fetchone()
        finally:
            cursor.close()
        previous = str(found[0] or "") if found is not None else ""
        connection.execute(INSERT_EVENT, (*self.content, previous,
                                          self.link(previous, self.content))).close()

    async def on_postgresql(self, connection: PgConnection) -> None:
        await query(CHAIN_LOCK).on_postgresql(connection)
        found = await query(LAST_HASH).on_postgresql(connection)
        previous = str(found[0][0] or "") if found else ""
        await statement(INSERT_EVENT, (*self.content, previous,
                                       self.link(previous, self.content))).on_postgresql(connection)


@dataclass(frozen=True)
class ChainCheck:
    checked: int  # events found intact, from the first
    broken_at: int | None = None  # the first event that is not
    problem: str = ""  # what is wrong, for the operator; empty when intact


class AuditStore:
    def __init__(self, db: Database, keys: Keys) -> None:
        self.db = db
        self.keys = keys
        self._link = keyed_link(keys.audit)

    async def record(self, now: datetime, actor: str, action: str, alert_id: int | None = None,
                     **detail: Any) -> None:
        """Queued for the transaction's next trip to the database (``Database.later``): the
        chain's tail is read and the event linked to it there, on the database's thread, in
        the order of the transaction's statements (an outside one: of its own)."""
        content = (stamp(now), actor, action, alert_id,
                   json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str))
        await self.db.later(self._append(content))

    def _append(self, content: tuple[Any, ...]) -> Work[None]:
        return Append(self._link, content)

    def pseudonym(self, identity: str) -> str:
        """A stable stand-in for a subscriber in this append-only trail, which cannot be
        edited when the subscriber is erased: keyed by the secret key, which the database
        does not hold, so the file alone cannot tell whose it is (bot/keys.py)."""
        return self.keys.pseudonym_of(identity)

    async def last_hash(self) -> str:
        return str(await self.db.fetchval(LAST_HASH) or "")

    async def head(self) -> tuple[int, str]:
        """(events, last hash): what to note outside the database."""
        count = int(await self.db.fetchval("SELECT count(*) FROM audit_events"))
        return count, await self.last_hash()

    async def verify(self) -> ChainCheck:
        rows = await self.db.fetchall(CHAIN)
        signer = await self._signer()
        if rows and signer is None:
            return ChainCheck(0, None, f"its {len(rows)} events are not signed with the secret "
                                       "key; expected only for a database of a bot older than "
                                       "the key (start the bot to sign it), else the trail "
                                       "was rewritten")
        if rows and signer != self.keys.audit_check:
            return ChainCheck(0, None, "it is signed with another secret key (check "
                                       "ALERTE_BOT_SECRET_KEY)")
        return check_links(rows, self._link)

    async def open_chain(self, now: datetime) -> None:
        """At start: refuse another key than the one that signed the chain; sign a chain
        that has no key yet, or only the public development key."""
        async with self.db.transaction():
            signer = await self._signer()
            if signer == self.keys.audit_check:
                return
            development = Keys.from_secret(DEVELOPMENT_SECRET).audit_check
            if signer is not None and signer != development:
                raise DatabaseError("the audit trail is signed with another secret key: start "
                                    "with the ALERTE_BOT_SECRET_KEY that signed it "
                                    "(docs/recovery.md)")
            await self._sign(now, "sha256" if signer is None else "development key")

    async def _sign(self, now: datetime, before: str) -> None:
        rows = await self.db.fetchall(CHAIN)
        link = legacy_link if before == "sha256" else keyed_link(
            Keys.from_secret(DEVELOPMENT_SECRET).audit)
        broken_at = check_links(rows, link, legacy=before == "sha256").broken_at
        updates, previous = [], ""
        for row in rows:
            digest = self._link(previous, content_of(row))
            updates.append((previous, digest, row[0]))
            previous = digest
        await self.db.executemany("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
                                  updates)
        await self.db.execute("INSERT INTO meta (key, value) VALUES ('audit_key', ?)"
                              " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                              (self.keys.audit_check,))
        if rows:
            log.warning("audit: the trail's %d events are now signed with the secret key "
                        "(before: %s, broken at event %s); this happens once per database: "
                        "seen again, someone reset the trail", len(rows), before, broken_at)
            await self.record(now, "system", "audit.chain_signed", None, events=len(rows),
                              previous=before, broken_at=broken_at)

    async def _signer(self) -> str | None:
        value = await self.db.fetchval("SELECT value FROM meta WHERE key = 'audit_key'")
        return None if value is None else str(value)


def content_of(row: Row) -> tuple[Any, ...]:
    return (row[1], row[2], row[3], row[4], row[5])


def check_links(rows: Sequence[Row], link: Link, legacy: bool = False) -> ChainCheck:
    """Every event must follow the one before and carry the link of its content. With
    ``legacy``, events before the first hash were written before the chain existed."""
    previous, checked = "", 0
    for row in rows:
        if legacy and not row[7] and not previous:
            continue
        problem = link_problem(row, previous, link)
        if problem:
            return ChainCheck(checked, int(row[0]), problem)
        previous, checked = row[7], checked + 1
    return ChainCheck(checked)


def link_problem(row: Row, previous: str, link: Link) -> str:
    if not row[7]:
        return "its hash is blank"
    if row[6] != previous:
        return "it does not follow the event before it (an event was removed or inserted)"
    if not hmac.compare_digest(str(row[7]), link(previous, content_of(row))):
        return ("its hash does not match its content (modified, or the chain recomputed "
                "without the key)")
    return ""
