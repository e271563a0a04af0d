"""Outgoing messages as Matrix ``m.room.message`` contents.

Pure functions, no network: what the Matrix transport sends, and how a message too big
for one event is cut. Synapse refuses any event whose canonical JSON exceeds 65,536
bytes (``M_TOO_LARGE``); the envelope it adds (ids, hashes, signatures, prev/auth
events) takes a few hundred bytes, so contents are kept under ``CONTENT_BUDGET``.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from bot.domain import Choice, Outgoing, Tone
from bot.limits import MATRIX_EVENT_BYTES
from bot.transports.numbered import render_choices

JsonDict = dict[str, Any]

CONTENT_BUDGET = MATRIX_EVENT_BYTES - 5_536  # bytes of content JSON; the rest: the envelope
HTML_FORMAT = "org.matrix.custom.html"
TRUNCATED = "\n[…]"
PRE_BLOCK = re.compile(r"(<pre\b.*?</pre>)", re.DOTALL | re.IGNORECASE)


def json_size(content: JsonDict) -> int:
    """Bytes on the wire, as Synapse counts them (UTF-8, no ASCII escaping)."""
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())


def to_matrix_html(markup: str) -> str:
    """Telegram-style HTML (newlines are line breaks) → Matrix HTML (``<br>``).

    Matrix clients render ``formatted_body`` as real HTML, where a newline is only
    whitespace; ``<pre>`` blocks keep theirs.
    """
    parts = PRE_BLOCK.split(markup)
    return "".join(part if PRE_BLOCK.fullmatch(part) else part.replace("\n", "<br>")
                   for part in parts)


def text_to_html(text: str) -> str:
    return to_matrix_html(html.escape(text, quote=False))


def choices_html(choices: tuple[Choice, ...], first: int = 1) -> str:
    items = "".join(f"<li>{html.escape(choice.label, quote=False)}</li>" for choice in choices)
    start = f' start="{first}"' if first != 1 else ""
    return f"<ol{start}>{items}</ol>"


def plain_body(message: Outgoing, first: int = 1) -> str:
    """The text, then its choices numbered from ``first`` (``NumberedChoices.shown``)."""
    if not message.choices:
        return message.text
    return f"{message.text}\n\n{render_choices(message.choices, first)}"


def formatted_body(message: Outgoing, first: int = 1) -> str:
    markup = to_matrix_html(message.html) if message.html is not None else text_to_html(
        message.text)
    return markup + (choices_html(message.choices, first) if message.choices else "")


def no_mentions(body: str) -> JsonDict:
    """An empty ``m.mentions`` when the text quotes a user id or @room (e.g. "par
    matrix:@op:…"), so legacy keyword matching pings nobody. Only then: Synapse takes ~18 %
    longer over an event that carries it (65 vs 79 events/s, benchmarks/matrix.py), and an
    alert without "@" has nothing of the kind to ping."""
    return {"m.mentions": {}} if "@" in body else {}


def base_content(body: str, formatted: str, tone: Tone, reply_to: str | None) -> JsonDict:
    # m.notice is the Matrix way to say "no sound": default push rules mute notices.
    content: JsonDict = {
        "msgtype": "m.notice" if tone is Tone.QUIET else "m.text",
        "body": body,
        "format": HTML_FORMAT,
        "formatted_body": formatted,
    }
    content.update(no_mentions(body))
    if reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


def message_contents(message: Outgoing, budget: int = CONTENT_BUDGET,
                     first: int = 1) -> list[JsonDict]:
    """One content, or several plain-text pieces when the message exceeds one event.

    Splitting (rather than truncating) keeps every line a person was meant to read;
    the HTML styling is dropped for the pieces, their text is exact. Only the first
    piece carries the reply relation.
    """
    whole = base_content(plain_body(message, first), formatted_body(message, first),
                         message.tone, message.reply_to)
    if json_size(whole) <= budget:
        return [whole]
    pieces = split_text(plain_body(message, first), budget)
    return [base_content(piece, text_to_html(piece), message.tone,
                         message.reply_to if index == 0 else None)
            for index, piece in enumerate(pieces)]


def piece_cost(text: str) -> int:
    """Bytes a piece of text adds to a content: in ``body`` and, escaped, in HTML."""
    return (len(json.dumps(text, ensure_ascii=False).encode())
            + len(json.dumps(text_to_html(text), ensure_ascii=False).encode()))


def split_text(text: str, budget: int = CONTENT_BUDGET) -> list[str]:
    """Cut ``text`` at line ends into pieces whose content fits ``budget``."""
    room = budget - json_size(base_content("", "", Tone.NORMAL, "$" + "x" * 255))
    pieces: list[str] = []
    current = ""
    for line in _bounded_lines(text, room):
        candidate = f"{current}\n{line}" if current else line
        if current and piece_cost(candidate) > room:
            pieces.append(current)
            candidate = line
        current = candidate
    if current or not pieces:
        pieces.append(current)
    return pieces


def _bounded_lines(text: str, room: int) -> list[str]:
    """The lines of ``text``, any line too big on its own cut into smaller runs."""
    lines: list[str] = []
    for line in text.split("\n"):
        while piece_cost(line) > room:
            cut = _longest_prefix(line, room)
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _longest_prefix(line: str, room: int) -> int:
    low, high = 1, len(line)
    while low < high:  # binary search: the longest prefix that still fits
        middle = (low + high + 1) // 2
        if piece_cost(line[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def edit_content(event_id: str, message: Outgoing, budget: int = CONTENT_BUDGET) -> JsonDict:
    """An ``m.replace`` of ``event_id``; an edit replaces one event, so it is truncated
    (marked ``[…]``) rather than split when it would not fit."""
    new = _fitting_new_content(message, budget)
    return {
        "msgtype": new["msgtype"],
        "body": "* " + new["body"],
        "format": HTML_FORMAT,
        "formatted_body": "* " + new["formatted_body"],
        **no_mentions(new["body"]),
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }


def _fitting_new_content(message: Outgoing, budget: int) -> JsonDict:
    # The edit carries the text twice (fallback and m.new_content): half the budget each.
    half = budget // 2
    new = base_content(plain_body(message), formatted_body(message), message.tone, None)
    if json_size(new) <= half:
        return new
    text = plain_body(message)
    keep = _longest_prefix(text, half - json_size(base_content(TRUNCATED, "", Tone.NORMAL,
                                                               None)) - 64)
    short = text[:keep] + TRUNCATED
    return base_content(short, text_to_html(short), message.tone, None)
