"""Files on Telegram: maps as photos, data exports and CAP documents as documents.

A caption holds at most 1,024 characters: a longer text goes first as its own message
and the file follows without caption. The id returned is the file's message.
"""

from __future__ import annotations

from telegram import InputFile, Message
from telegram.constants import ParseMode
from telegram.ext import ExtBot

from bot.domain import Attachment, Outgoing, Tone
from bot.limits import TELEGRAM_CAPTION_CHARS


async def send_file(bot: ExtBot[None], chat_id: int | str, message: Outgoing) -> tuple[Message,
                                                                                      bool]:
    """Send ``message``'s attachment; returns the message and whether the text still has
    to be sent separately (too long for a caption)."""
    attachment = message.attachment
    assert attachment is not None
    fits = len(message.text) <= TELEGRAM_CAPTION_CHARS
    caption = (message.html or message.text) if fits else None
    options = {"caption": caption, "parse_mode": ParseMode.HTML if fits and message.html else None,
               "disable_notification": True if message.tone is Tone.QUIET else None,
               "protect_content": True if message.tone is Tone.PROTECTED else None}
    upload = InputFile(attachment.data, filename=attachment.filename)
    if _is_photo(attachment):
        sent = await bot.send_photo(chat_id, upload, **options)  # type: ignore[arg-type]
    else:
        sent = await bot.send_document(chat_id, upload, **options)  # type: ignore[arg-type]
    return sent, not fits


def _is_photo(attachment: Attachment) -> bool:
    # Telegram recompresses photos; PNG maps stay legible at 1000 px.
    return attachment.mime_type in ("image/png", "image/jpeg") and len(attachment.data) < 10_000_000
