"""``Outgoing`` as WhatsApp Cloud API messages, within the platform's limits.

* text: 4,096 characters a message (longer texts go in parts);
* choices: up to 3 **reply buttons** (titles ≤ 20 characters), else a **list message**
  (≤ 10 rows, titles ≤ 24 characters, the full label as the row's description ≤ 72), with an
  interactive body of ≤ 1,024 characters (a longer text goes first as plain parts); more than
  10 choices go on in a further list (or buttons, for the last 1 to 3);
* outside the 24-hour window, only the approved **template**: its body parameters carry the
  copy's headline, place and text (``Summary``), on one line each (Meta refuses a newline,
  a tab or more than 4 spaces in a parameter), and its quick-reply buttons the choices'
  data (docs/whatsapp.md).

Messages are dicts as the API takes them under their type (``{"body": ...}`` for text);
``Message.kind`` is the type. No HTML: WhatsApp has its own light markup, so plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.domain import Choice, Outgoing, Summary
from bot.transports.base import PermanentError

TEXT_CHARS = 4096
INTERACTIVE_BODY_CHARS = 1024
MAX_BUTTONS = 3
BUTTON_TITLE_CHARS = 20
BUTTON_ID_CHARS = 256
MAX_ROWS = 10
ROW_TITLE_CHARS = 24
ROW_DESCRIPTION_CHARS = 72
ROW_ID_CHARS = 200
LIST_BUTTON_CHARS = 20
CONTINUED = "…"  # the body of a further list when the choices take several
TEMPLATE_BODY_CHARS = 1024  # the whole body, its fixed words and parameters together
# The template's own words around the parameters (docs/whatsapp.md), kept free.
TEMPLATE_FIXED_CHARS = 64
HEADLINE_CHARS = 120
PLACE_CHARS = 200
MAX_QUICK_REPLIES = 2  # the template's buttons: « Reçu », « J'ai une information »
_SPACES = re.compile(r"[ \t]{4,}")


@dataclass(frozen=True, slots=True)
class Message:
    kind: str  # text, interactive, template
    body: dict[str, Any]


def free_form(message: Outgoing, list_button: str) -> list[Message]:
    """A message for someone inside their 24-hour window: its parts, the last one with
    the choices. More choices than one list holds go on in further lists (10 rows each),
    the last few (up to 3) as buttons, each after a ``CONTINUED`` body."""
    text = message.text.strip() or "…"
    if not message.choices:
        return [_text(part) for part in split(text, TEXT_CHARS)]
    parts = split(text, INTERACTIVE_BODY_CHARS)
    messages = [_text(part) for part in _rejoined(parts[:-1])]
    for index, chunk in enumerate(_chunks(message.choices)):
        messages.append(_interactive(parts[-1] if index == 0 else CONTINUED, chunk,
                                     list_button))
    return messages


def _chunks(choices: tuple[Choice, ...]) -> list[tuple[Choice, ...]]:
    """Groups of at most 10 choices; a last group of 1 to 3 short ones becomes buttons."""
    return [choices[start:start + MAX_ROWS] for start in range(0, len(choices), MAX_ROWS)]


def _rejoined(parts: list[str]) -> list[str]:
    """Parts cut at the interactive body's size, put back together up to a text's."""
    return split("\n\n".join(parts), TEXT_CHARS) if parts else []


def _text(body: str) -> Message:
    return Message("text", {"body": body, "preview_url": False})


def _interactive(body: str, choices: tuple[Choice, ...], list_button: str) -> Message:
    if len(choices) <= MAX_BUTTONS and all(len(c.label) <= BUTTON_TITLE_CHARS for c in choices):
        return Message("interactive", {"type": "button", "body": {"text": body}, "action": {
            "buttons": [{"type": "reply", "reply": {"id": _id(c.data, BUTTON_ID_CHARS),
                                                     "title": c.label}} for c in choices]}})
    return Message("interactive", {"type": "list", "body": {"text": body}, "action": {
        "button": list_button[:LIST_BUTTON_CHARS],
        "sections": [{"rows": [_row(choice) for choice in choices]}]}})


def _row(choice: Choice) -> dict[str, str]:
    row = {"id": _id(choice.data, ROW_ID_CHARS), "title": cut(choice.label, ROW_TITLE_CHARS)}
    if len(choice.label) > ROW_TITLE_CHARS:  # the whole label stays readable
        row["description"] = cut(choice.label, ROW_DESCRIPTION_CHARS)
    return row


def _id(data: str, limit: int) -> str:
    if not data or len(data) > limit:
        raise PermanentError(f"whatsapp: a choice's data must be 1 to {limit} characters")
    return data


def template(summary: Summary, name: str, language: str,
             choices: tuple[Choice, ...] = ()) -> Message:
    """The approved template, its parameters the copy's summary and, when the message has
    choices (an alert's « Reçu » / « J'ai une information »), its quick replies' payloads."""
    headline = cut(one_line(summary.headline), HEADLINE_CHARS)
    place = cut(one_line(summary.place), PLACE_CHARS) or "—"
    room = TEMPLATE_BODY_CHARS - TEMPLATE_FIXED_CHARS - len(headline) - len(place)
    text = cut(one_line(summary.text), room) or "—"
    components: list[dict[str, Any]] = [{"type": "body", "parameters": [
        {"type": "text", "text": value} for value in (headline or "—", place, text)]}]
    for index, choice in enumerate(choices[:MAX_QUICK_REPLIES]):
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                           "parameters": [{"type": "payload", "payload": choice.data}]})
    return Message("template", {"name": name, "language": {"code": language},
                                "components": components})


def one_line(text: str) -> str:
    """A template parameter: no newline or tab, never 4 spaces in a row."""
    flat = " · ".join(line.strip() for line in text.splitlines() if line.strip())
    return _SPACES.sub("   ", flat.replace("\t", " "))


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def split(text: str, limit: int) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at a paragraph, else a line,
    else a space, else anywhere."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut_at = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut_at <= limit // 2:
            cut_at = limit
        parts.append(rest[:cut_at].rstrip())
        rest = rest[cut_at:].lstrip()
    return [*parts, rest] if rest or not parts else parts
