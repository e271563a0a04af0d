"""Plain-text helpers: UTF-16 lengths, Telegram's whitespace trimming, auto-detected entities."""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]

# Telegram trims these around a message text (leading and trailing) before storing it.
_TRIM = " \t\r\n"

# Entities Telegram detects by itself in what *users* type. Only the kinds a bot reacts to.
_AUTO_ENTITIES = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<url>\bhttps?://[^\s<>\"]+)"
    r"|(?P<mention>(?<!\w)@[A-Za-z0-9_]{4,32})"
    r"|(?P<hashtag>(?<![\w#])#\w+)"
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Bot API entity offset and length."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Trim surrounding whitespace as Telegram does, shifting and clipping entities to match."""
    stripped = text.strip(_TRIM)
    if stripped == text:
        return text, entities
    if not stripped or not entities:
        return stripped, []
    lead = utf16_len(text[: len(text) - len(text.lstrip(_TRIM))])
    size = utf16_len(stripped)
    kept: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def detect_entities(text: str) -> list[Entity]:
    """bot_command / url / mention / hashtag entities, as Telegram adds to a user's message."""
    entities: list[Entity] = []
    for match in _AUTO_ENTITIES.finditer(text):
        kind = match.lastgroup
        assert kind is not None  # every alternative is a named group
        entities.append(
            {
                "type": kind,
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities
