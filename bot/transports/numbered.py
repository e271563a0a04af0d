"""Choices as numbered lines, for platforms without buttons (console, Matrix).

The transport remembers the choices shown in each chat; a reply that is just a number
becomes that choice. The core still validates the choice, as for a button.

Numbers never collide: the lists the bot shows one after the other, without the person
answering in between, are numbered on from one list to the next (1-2, then 3-4), so
« 1 » means one choice whichever list it was read in. The person's next message starts
a new count.
"""

from __future__ import annotations

from bot.domain import Choice


def render_choices(choices: tuple[Choice, ...], first: int = 1) -> str:
    return "\n".join(f"  {index}. {choice.label}"
                     for index, choice in enumerate(choices, first))


class NumberedChoices:
    def __init__(self) -> None:
        self._shown: dict[str, tuple[Choice, ...]] = {}  # since the person last spoke
        self._answered: set[str] = set()  # chats where the person spoke since

    def first_number(self, chat_id: str) -> int:
        """The number the next list shown in the chat starts at."""
        return 1 if chat_id in self._answered else len(self._shown.get(chat_id, ())) + 1

    def shown(self, chat_id: str, choices: tuple[Choice, ...]) -> int:
        """Remember ``choices`` as shown in the chat (once they are); the number of the
        first one."""
        if not choices:
            return 1
        first = self.first_number(chat_id)
        earlier = self._shown.get(chat_id, ()) if first > 1 else ()
        self._answered.discard(chat_id)
        self._shown[chat_id] = earlier + choices
        return first

    def replaced(self, chat_id: str, choices: tuple[Choice, ...]) -> None:
        """An edited message's choices, numbered from 1 again: the ones it shows now."""
        if choices:
            self._answered.discard(chat_id)
            self._shown[chat_id] = choices

    def pick(self, chat_id: str, text: str) -> str | None:
        """The choice data for a reply like ``"2"``, or None if it is not one. Whatever
        it is, the person has spoken: the next list shown starts again at 1."""
        self._answered.add(chat_id)
        stripped = text.strip().rstrip(".")
        if not (stripped.isascii() and stripped.isdigit()) or len(stripped) > 3:
            return None
        choices = self._shown.get(chat_id, ())
        index = int(stripped) - 1
        return choices[index].data if 0 <= index < len(choices) else None
