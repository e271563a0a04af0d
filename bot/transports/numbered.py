"""Choices as numbered lines, for platforms without buttons (console, Matrix).

The transport remembers the last choices shown in each chat; a reply that is just a
number becomes that choice. The core still validates the choice, as for a button.
"""

from __future__ import annotations

from bot.domain import Choice


def render_choices(choices: tuple[Choice, ...]) -> str:
    return "\n".join(f"  {index}. {choice.label}" for index, choice in enumerate(choices, 1))


class NumberedChoices:
    def __init__(self) -> None:
        self._last: dict[str, tuple[Choice, ...]] = {}

    def shown(self, chat_id: str, choices: tuple[Choice, ...]) -> None:
        if choices:
            self._last[chat_id] = choices

    def pick(self, chat_id: str, text: str) -> str | None:
        """The choice data for a reply like ``"2"``, or None if it is not one."""
        stripped = text.strip().rstrip(".")
        if not (stripped.isascii() and stripped.isdigit()) or len(stripped) > 3:
            return None
        choices = self._last.get(chat_id, ())
        index = int(stripped) - 1
        return choices[index].data if 0 <= index < len(choices) else None
