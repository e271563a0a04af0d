"""Offline commands on the database: audit verification and CSV export."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

from bot.config import Config
from bot.storage.audit import AuditStore
from bot.storage.database import Database

EXPORT_SQL = """
SELECT a.id, a.kind, a.parent_id, a.category, a.exercise, a.status, a.closed, a.perimeter,
       (SELECT count(*) FROM alert_communes c WHERE c.alert_id = a.id) AS communes,
       a.requested_by, a.created_at, a.decided_at, a.broadcast_started_at, a.completed_at,
       sum(d.status = 'sent') AS sent, sum(d.status = 'failed') AS failed,
       sum(d.status = 'blocked') AS blocked, sum(d.status = 'dropped') AS dropped,
       count(d.acknowledged_at) AS receipts
FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id AND d.action = 'send'
GROUP BY a.id ORDER BY a.id
"""


async def open_database(config: Config) -> Database:
    path = config.database if config.database == ":memory:" else config.resolve(config.database)
    return await Database.open(path)


async def verify_audit(config: Config, out: TextIO = sys.stdout) -> int:
    db = await open_database(config)
    try:
        checked, broken = await AuditStore(db).verify()
        last = await AuditStore(db).last_hash()
    finally:
        await db.close()
    if broken is None:
        # Removing the newest events leaves a valid shorter chain: compare this last hash
        # with the one noted at the previous check (operations log) to detect it.
        print(f"audit chain intact: {checked} events, last hash {last or '-'}", file=out)
        return 0
    print(f"audit chain BROKEN at event {broken} (after {checked} intact events): "
          "an event was modified or deleted", file=out)
    return 1


async def export_csv(config: Config, target: Path | None, out: TextIO = sys.stdout) -> int:
    """Alerts with their delivery figures; no personal data (identities of staff only)."""
    db = await open_database(config)
    try:
        rows = await db.fetchall(EXPORT_SQL)
    finally:
        await db.close()
    handle = target.open("w", newline="", encoding="utf-8") if target else out
    try:
        writer = csv.writer(handle)
        writer.writerow(rows[0].keys() if rows else ["id"])
        writer.writerows(tuple(row) for row in rows)
    finally:
        if target:
            handle.close()
    return 0
