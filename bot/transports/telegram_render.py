"""Outgoing → what Telegram's sendMessage/editMessageText take: text parts and a keyboard.

Telegram refuses a text longer than 4096 characters (counted after HTML parsing): checked
here, before any request, so a message the platform would refuse for good fails fast with
``PermanentError``. A button's data size is checked where it is made (bot/buttons.py).

Long messages (see docs/telegram.md): a message that does not fit is split on paragraph
boundaries (then lines, then spaces) and sent as *plain text*, because cutting HTML at an
arbitrary place could leave a tag open and Telegram would reject the part. The keyboard goes
on the first part, which is also the id ``send`` returns: editing "the message" edits the part
that holds its buttons, even after a restart when the other parts are forgotten.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode

from bot.domain import Choice, Outgoing
from bot.limits import TELEGRAM_TEXT_CHARS
from bot.transports.base import PermanentError

SHORT_LABEL = 20  # two buttons this short fit side by side on a phone
BUTTONS_PER_ROW = 2
_TAG = re.compile(r"<[^>]*>")
# Where a long text may be cut, best first: between paragraphs, lines, words.
_BOUNDARIES = ("\n\n", "\n", " ")


@dataclass(frozen=True, slots=True)
class Part:
    """One Telegram message: its text and how Telegram should parse it."""

    text: str
    parse_mode: str | None


def parts(message: Outgoing) -> list[Part]:
    """The message as one HTML part when it fits, else plain text in as many parts as needed."""
    if message.html is not None and visible_length(message.html) <= TELEGRAM_TEXT_CHARS:
        return [Part(message.html, ParseMode.HTML)]
    return [Part(chunk, None) for chunk in split_text(message.text)]


def visible_length(markup: str) -> int:
    """Characters Telegram counts for an HTML text: tags removed, entities decoded, trimmed.

    Our HTML comes from bot/render.py (escaped user text, known tags), so a regex is enough.
    """
    return len(html.unescape(_TAG.sub("", markup)).strip())


def split_text(text: str, limit: int = TELEGRAM_TEXT_CHARS) -> list[str]:
    """Cut ``text`` into trimmed chunks of at most ``limit`` characters, at natural breaks."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)  # an empty text stays one (empty) part: Telegram will say why
    return chunks


def _cut_point(text: str, limit: int) -> int:
    # A break in the first half would leave a stub of a message; prefer a later one.
    for boundary in _BOUNDARIES:
        index = text.rfind(boundary, limit // 2, limit)
        if index > 0:
            return index
    return limit


def keyboard(choices: tuple[Choice, ...]) -> InlineKeyboardMarkup | None:
    """Buttons in rows: short labels two per row, longer ones alone, in the given order."""
    if not choices:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for choice in choices:
        button = _button(choice)
        last = rows[-1] if rows else None
        if (last is not None and len(last) < BUTTONS_PER_ROW and _short(choice.label)
                and all(_short(str(b.text)) for b in last)):
            last.append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows)


def _short(label: str) -> bool:
    return len(label) <= SHORT_LABEL


def _button(choice: Choice) -> InlineKeyboardButton:
    if not choice.label.strip():
        raise PermanentError(f"choice with data {choice.data!r} has an empty label")
    return InlineKeyboardButton(choice.label, callback_data=choice.data)
