"""Files on Telegram: photos (an alert's, the request's map) with their caption, data
exports and CAP documents as documents; and the photos operators send, fetched.

A caption holds at most 1,024 characters (after HTML parsing). A text that fits goes as
the photo's caption, with its buttons; a longer one goes after the photo as its own
message(s), with the buttons. A protected alert's photo never carries the text: at the
alert's end the photo is deleted and the text edited, on every phone.

An alert's photo is uploaded to the first chat only: later copies name the ``file_id``
Telegram gave back (bot/transports/uploads.py), so a broadcast uploads it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import InputFile, Message, PhotoSize
from telegram.constants import ParseMode
from telegram.ext import ExtBot

from bot.domain import Attachment, FileProblem, Outgoing, Tone
from bot.limits import PHOTO_BYTES, TELEGRAM_CAPTION_CHARS, TELEGRAM_PHOTO_BYTES
from bot.transports.telegram_render import Part, visible_length

PHOTO_TYPES = ("image/png", "image/jpeg", "image/webp")
ELLIPSIS = "…"


def is_photo(attachment: Attachment) -> bool:
    """Sent with sendPhoto (Telegram recompresses it; a PNG map stays legible at 1000 px);
    anything else is a document."""
    return attachment.mime_type in PHOTO_TYPES and len(attachment.data) <= TELEGRAM_PHOTO_BYTES


def caption_of(message: Outgoing) -> Part | None:
    """The whole text as the photo's caption, if it fits and may; None: it goes apart."""
    if message.tone is Tone.PROTECTED:
        return None  # its photo is deleted alone at the end, its text edited
    if message.html is not None and visible_length(message.html) <= TELEGRAM_CAPTION_CHARS:
        return Part(message.html, ParseMode.HTML)
    if len(message.text.strip()) <= TELEGRAM_CAPTION_CHARS:
        return Part(message.text, None)
    return None


def edited_caption(message: Outgoing) -> Part:
    """A photo's caption replaced (an all-clear on a copy whose text was its caption): the
    new text, cut visibly if it no longer fits."""
    fitting = caption_of(Outgoing(message.text, message.html))
    if fitting is not None:
        return fitting
    return Part(message.text[:TELEGRAM_CAPTION_CHARS - 1].rstrip() + ELLIPSIS, None)


def upload(attachment: Attachment) -> InputFile:
    return InputFile(attachment.data, filename=attachment.filename)


def largest_file_id(sent: dict[str, Any]) -> str:
    """The file_id of the photo as sent, to send it again: Telegram lists its sizes, the
    largest last."""
    sizes = sent.get("photo")
    if not isinstance(sizes, list) or not sizes or not isinstance(sizes[-1], dict):
        raise ValueError("sendPhoto answered without the photo's sizes")
    return str(sizes[-1]["file_id"])


async def send_document(bot: ExtBot[None], chat_id: int | str,
                        message: Outgoing) -> tuple[Message, bool]:
    """A data export or a CAP file; returns the message and whether the text still has to
    be sent separately (too long for a caption)."""
    attachment = message.attachment
    assert attachment is not None
    fits = len(message.text) <= TELEGRAM_CAPTION_CHARS
    caption = (message.html or message.text) if fits else None
    sent = await bot.send_document(
        chat_id, upload(attachment), caption=caption,
        parse_mode=ParseMode.HTML if fits and message.html else None,
        disable_notification=True if message.tone is Tone.QUIET else None,
        protect_content=True if message.tone is Tone.PROTECTED else None)
    return sent, not fits


# -- what operators send ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRef:
    """A photo in a person's message, to fetch before the core sees it (ids only: the
    update waits in its lane meanwhile)."""

    file_id: str
    filename: str
    mime_type: str
    too_large: bool = False


def photo_in(message: Message) -> FileRef | None:
    """The photo a message carries: its largest size the bot takes, or an image sent as a
    file (uncompressed); None for anything else."""
    if message.photo:
        return _best_size(message.photo)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        too_large = document.file_size is not None and document.file_size > PHOTO_BYTES
        return FileRef(document.file_id, document.file_name or "image",
                       document.mime_type or "application/octet-stream", too_large)
    return None


def _best_size(sizes: tuple[PhotoSize, ...]) -> FileRef:
    """Telegram gives each photo in several sizes (JPEG), smallest first."""
    fitting = [size for size in sizes if (size.file_size or 0) <= PHOTO_BYTES]
    if not fitting:
        return FileRef(sizes[-1].file_id, "image.jpg", "image/jpeg", too_large=True)
    return FileRef(fitting[-1].file_id, "image.jpg", "image/jpeg")


async def fetch(bot: ExtBot[None], ref: FileRef) -> Attachment | FileProblem:
    """getFile, then the download: the bytes, or why not (never raises)."""
    if ref.too_large:
        return FileProblem.TOO_LARGE
    try:
        file = await bot.get_file(ref.file_id)
        if file.file_size is not None and file.file_size > PHOTO_BYTES:
            return FileProblem.TOO_LARGE
        data = bytes(await file.download_as_bytearray())
    except Exception:  # the Bot API refused it, or the network: the person is told
        return FileProblem.UNREADABLE
    if len(data) > PHOTO_BYTES:
        return FileProblem.TOO_LARGE
    return Attachment(ref.filename, ref.mime_type, data)
