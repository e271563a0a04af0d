"""An alert's photo: what the bot accepts, checked on the bytes, never on the file's name.

One photo per alert: JPEG, PNG or WebP recognised by their first bytes (a ``.jpg`` that is
something else is refused), at most ``PHOTO_BYTES``, readable, and of a shape Telegram's
sendPhoto takes (width + height ≤ 10,000, one side at most 20 times the other): a photo
that would fail at delivery is refused when the operator sends it, before any officer
approves it. A refusal never loses the alert's text: the alert goes on without the photo
and the operator is told why (``PhotoRefused``, messages in ``bot/locales/photo.*``).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from enum import Enum

from PIL import Image

from bot.domain import Attachment, FileProblem
from bot.errors import UserFacingError
from bot.i18n import Translator
from bot.limits import PHOTO_BYTES, TELEGRAM_PHOTO_RATIO, TELEGRAM_PHOTO_SIDES


class PhotoType(Enum):
    """The image formats accepted: (MIME type, file extension, Pillow's name for it)."""

    JPEG = ("image/jpeg", "jpg", "JPEG")
    PNG = ("image/png", "png", "PNG")
    WEBP = ("image/webp", "webp", "WEBP")

    @property
    def mime_type(self) -> str:
        return self.value[0]

    @property
    def extension(self) -> str:
        return self.value[1]

    @classmethod
    def of_mime(cls, mime_type: str) -> PhotoType:
        return next(kind for kind in cls if kind.mime_type == mime_type)


MIME_TYPES = tuple(kind.mime_type for kind in PhotoType)


class PhotoRefused(UserFacingError):
    """A photo the bot does not take, and why (``photo.*`` messages)."""


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo that passed every check; ``digest`` is the SHA-256 of ``data``, the key under
    which each platform receives it once (bot/transports/uploads.py)."""

    kind: PhotoType
    data: bytes
    digest: str
    width: int
    height: int

    @property
    def size(self) -> int:
        return len(self.data)

    def attachment(self, alert_id: int) -> Attachment:
        return Attachment(f"photo-alerte-{alert_id}.{self.kind.extension}",
                          self.kind.mime_type, self.data, self.digest)


def sniff(data: bytes) -> PhotoType | None:
    """The format the bytes say they are, from their signature."""
    if data.startswith(b"\xff\xd8\xff"):
        return PhotoType.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PhotoType.PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return PhotoType.WEBP
    return None


def check_photo(attachment: Attachment) -> Photo:
    """The photo in ``attachment``, or ``PhotoRefused`` saying what is wrong with it."""
    data = attachment.data
    if len(data) > PHOTO_BYTES:
        raise PhotoRefused("photo.too_large", max=PHOTO_BYTES // (1024 * 1024))
    kind = sniff(data)
    if kind is None:
        raise PhotoRefused("photo.bad_type")
    width, height = _dimensions(data, kind)
    if width + height > TELEGRAM_PHOTO_SIDES or \
            max(width, height) > TELEGRAM_PHOTO_RATIO * min(width, height):
        raise PhotoRefused("photo.bad_shape", width=width, height=height)
    return Photo(kind, data, hashlib.sha256(data).hexdigest(), width, height)


def _dimensions(data: bytes, kind: PhotoType) -> tuple[int, int]:
    """Width and height from the image's header, once Pillow agrees on the format and the
    file holds together (a truncated or forged file is refused, not sent)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != kind.value[2]:
                raise PhotoRefused("photo.bad_type")
            width, height = image.size
            image.verify()
    except PhotoRefused:
        raise
    except Exception:  # whatever Pillow raises for a damaged file, a bomb included
        raise PhotoRefused("photo.unreadable") from None
    if width < 1 or height < 1:
        raise PhotoRefused("photo.unreadable")
    return int(width), int(height)


def problem_refusal(problem: FileProblem) -> PhotoRefused:
    """What the transport could not fetch, as the refusal the operator reads."""
    if problem is FileProblem.TOO_LARGE:
        return PhotoRefused("photo.too_large", max=PHOTO_BYTES // (1024 * 1024))
    return PhotoRefused("photo.unreadable")


def size_text(t: Translator, size: int) -> str:
    """« 245 Ko », « 4,8 Mo » in the reader's language."""
    if size < 1024 * 1024:
        return t("photo.kilobytes", value=max(1, round(size / 1024)))
    value = f"{size / (1024 * 1024):.1f}".replace(".", t("place.decimal_mark"))
    return t("photo.megabytes", value=value)
