"""Alerts' photos (one per alert, kept while the alert lives) and operators' photos not yet
attached (one per operator and chat, kept a few minutes): migration 0011."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import parse_stamp, stamp
from bot.photos import Photo, PhotoType
from bot.storage.database import Database, Row

COLUMNS = "mime_type, size, sha256, width, height"


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """What a request says of a photo, without its bytes."""

    kind: PhotoType
    size: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Draft:
    photo: Photo
    received_at: datetime


def _info(row: Row) -> PhotoInfo:
    return PhotoInfo(PhotoType.of_mime(row["mime_type"]), row["size"], row["width"],
                     row["height"])


def _photo(row: Row) -> Photo:
    return Photo(PhotoType.of_mime(row["mime_type"]), bytes(row["data"]), row["sha256"],
                 row["width"], row["height"])


def _values(photo: Photo) -> tuple[object, ...]:
    return (photo.kind.mime_type, photo.size, photo.digest, photo.width, photo.height,
            photo.data)


class PhotoStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- an alert's photo ----------------------------------------------------------------

    async def attach(self, alert_id: int, photo: Photo, now: datetime) -> bool:
        """Store ``photo`` as the alert's; False if it has one already (one per alert)."""
        return await self.db.execute(
            f"INSERT OR IGNORE INTO alert_photos (alert_id, {COLUMNS}, data, stored_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (alert_id, *_values(photo), stamp(now))) == 1

    async def get(self, alert_id: int) -> Photo | None:
        row = await self.db.fetchone(f"SELECT {COLUMNS}, data FROM alert_photos"
                                     " WHERE alert_id = ?", (alert_id,))
        return None if row is None else _photo(row)

    async def info(self, alert_id: int) -> PhotoInfo | None:
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM alert_photos WHERE alert_id = ?",
                                     (alert_id,))
        return None if row is None else _info(row)

    async def forget(self, alert_id: int) -> bool:
        return await self.db.execute("DELETE FROM alert_photos WHERE alert_id = ?",
                                     (alert_id,)) == 1

    async def latest_alert(self, identity: str, platform: str, chat_id: str,
                           since: datetime) -> int | None:
        """The last alert (not a follow-up, not a scheduled message) this person filed from
        this chat at ``since`` or later."""
        value = await self.db.fetchval(
            "SELECT max(id) FROM alerts WHERE requested_by = ? AND request_platform = ?"
            " AND request_chat_id = ? AND kind = 'alert' AND schedule_id IS NULL"
            " AND created_at >= ?", (identity, platform, chat_id, stamp(since)))
        return None if value is None else int(value)

    async def forget_ended(self) -> int:
        """The photos of alerts that no longer live (refused, withdrawn, expired, ended):
        the daily purge's safety net behind the deletions at each end."""
        return await self.db.execute(
            "DELETE FROM alert_photos WHERE alert_id IN (SELECT id FROM alerts"
            " WHERE status IN ('rejected', 'withdrawn', 'expired') OR closed IS NOT NULL)")

    # -- photos not attached yet -----------------------------------------------------------

    async def keep_draft(self, identity: str, platform: str, chat_id: str, photo: Photo,
                         now: datetime) -> bool:
        """Keep ``photo`` for the operator's next alert in this chat; True if it replaced
        an earlier one."""
        replaced = await self.db.execute(
            "DELETE FROM photo_drafts WHERE identity = ? AND platform = ? AND chat_id = ?",
            (identity, platform, chat_id))
        await self.db.execute(
            f"INSERT INTO photo_drafts (identity, platform, chat_id, {COLUMNS}, data,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (identity, platform, chat_id, *_values(photo), stamp(now)))
        return replaced == 1

    async def draft(self, identity: str, platform: str, chat_id: str,
                    since: datetime) -> Draft | None:
        """The operator's photo in this chat received at ``since`` or later."""
        row = await self.db.fetchone(
            f"SELECT {COLUMNS}, data, received_at FROM photo_drafts WHERE identity = ?"
            " AND platform = ? AND chat_id = ? AND received_at >= ?",
            (identity, platform, chat_id, stamp(since)))
        return None if row is None else Draft(_photo(row), parse_stamp(row["received_at"]))

    async def drop_draft(self, identity: str, platform: str, chat_id: str) -> None:
        await self.db.execute(
            "DELETE FROM photo_drafts WHERE identity = ? AND platform = ? AND chat_id = ?",
            (identity, platform, chat_id))

    async def forget_drafts(self, before: datetime) -> int:
        """Photos nobody attached in time."""
        return await self.db.execute("DELETE FROM photo_drafts WHERE received_at < ?",
                                     (stamp(before),))
