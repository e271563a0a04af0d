"""The command registry: names, who may run them, where, and their help lines."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from bot.context import Context
from bot.domain import Effects
from bot.roles import PERMISSIONS, Action, Role

COMMAND_PATTERN = re.compile(r"^[/!]([A-Za-z][A-Za-z0-9_]*)(?:@\S+)?(?:\s+(.*))?$", re.DOTALL)

Handler = Callable[[Context, str], Awaitable[Effects]]  # returns what to send


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    action: Action
    help_key: str  # catalogue key of the one-line help ("usage — what it does")
    aliases: tuple[str, ...] = ()
    in_groups: bool = False  # may be used in a group chat / officers' channel
    in_private: bool = True
    keeps_conversation: bool = False  # runs without abandoning an open conversation

    def allowed_roles(self) -> frozenset[Role]:
        return PERMISSIONS[self.action]


class CommandRegistry:
    def __init__(self, commands: Iterable[Command]) -> None:
        self._ordered = list(commands)
        self._by_name: dict[str, Command] = {}
        for command in self._ordered:
            for name in (command.name, *command.aliases):
                if name in self._by_name:
                    raise ValueError(f"command /{name} registered twice")
                self._by_name[name] = command

    def find(self, name: str) -> Command | None:
        return self._by_name.get(name.lower())

    def visible_to(self, roles: frozenset[Role]) -> list[Command]:
        return [c for c in self._ordered if roles & c.allowed_roles()]

    def __iter__(self) -> Iterator[Command]:
        return iter(self._ordered)


def split_command(text: str) -> tuple[str, str] | None:
    """``"/communes Vesoul"`` → ``("communes", "Vesoul")``; ``!`` works too (Matrix habit),
    and ``/aide@alerte_bot`` (how Telegram addresses a bot in a group)."""
    match = COMMAND_PATTERN.match(text.strip())
    if match is None:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


def small_number(text: str) -> int | None:
    """``"12"`` → 12; None for anything else, including "²" (``str.isdigit`` accepts it but
    ``int`` does not) and numbers too large for the database."""
    match = re.fullmatch(r"n?°?\s*(\d{1,9})", text.strip(), re.ASCII)
    return None if match is None else int(match.group(1))
