"""What the Matrix transport knows about rooms: which are DMs, which is the officers'
room, and which choices each approval request offered (for ✅/❌ reactions)."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

from bot.domain import ChatKind, Choice
from bot.storage.transport_state import TransportState

log = logging.getLogger(__name__)

CHOICES_KEY = "request_choices"
MAX_REMEMBERED = 200  # approval requests still answerable by reaction, across restarts


class RoomDirectory:
    """Room kinds. A DM is a room listed in the bot's ``m.direct`` account data (the bot
    adds each DM it accepts) that has at most two members; any other room is a group,
    except the configured officers' room."""

    def __init__(self, officers_room: str) -> None:
        self.officers_room = officers_room  # a room id once resolved (aliases start with #)
        self.more_officers: list[str] = []  # the organisations' officers' rooms (room ids)
        self._direct: dict[str, list[str]] = {}
        self._marked: set[str] = set()  # marked by this process: survives a stale sync copy
        self.joined: set[str] = set()

    def set_direct(self, content: Any) -> None:
        """The bot's ``m.direct`` as the homeserver has it (a sync or a GET)."""
        if not isinstance(content, dict):
            return
        self._direct = {str(user): [str(room) for room in rooms]
                        for user, rooms in content.items() if isinstance(rooms, list)}

    def direct_content(self) -> dict[str, list[str]]:
        return {user: list(rooms) for user, rooms in self._direct.items()}

    def expect_direct(self, room_id: str) -> None:
        """A DM invitation being accepted: its messages are private from the first one."""
        self._marked.add(room_id)

    def mark_direct(self, partner: str, room_id: str) -> dict[str, list[str]] | None:
        """Add a DM; returns the new ``m.direct`` content to store, or None if unchanged."""
        self._marked.add(room_id)
        rooms = self._direct.setdefault(partner, [])
        if room_id in rooms:
            return None
        rooms.append(room_id)
        return self.direct_content()

    def is_direct(self, room_id: str) -> bool:
        return room_id in self._marked or any(room_id in rooms for rooms in self._direct.values())

    def is_officers(self, room_id: str) -> bool:
        return room_id == self.officers_room or room_id in self.more_officers

    def officers_rooms(self) -> list[str]:
        main = [self.officers_room] if self.officers_room.startswith("!") else []
        return main + [room for room in self.more_officers if room not in main]

    def kind(self, room_id: str, member_count: int | None) -> ChatKind:
        if self.is_officers(room_id):
            return ChatKind.OFFICERS
        if self.is_direct(room_id) and (member_count is None or member_count <= 2):
            return ChatKind.PRIVATE
        return ChatKind.GROUP


class RequestChoices:
    """Choices offered by messages in the officers' room, by event id, kept in the
    database so a ✅ on a request posted before a restart still counts."""

    def __init__(self, state: TransportState) -> None:
        self.state = state
        self._by_event: OrderedDict[str, tuple[Choice, ...]] = OrderedDict()

    async def load(self) -> None:
        raw = await self.state.get(CHOICES_KEY)
        if raw is None:
            return
        try:
            entries = json.loads(raw)
            self._by_event = OrderedDict(
                (str(event_id), tuple(Choice(str(label), str(data)) for label, data in pairs))
                for event_id, pairs in entries)
        except (ValueError, TypeError):
            log.warning("matrix: unreadable %s in transport_state; starting afresh", CHOICES_KEY)

    def get(self, event_id: str) -> tuple[Choice, ...]:
        return self._by_event.get(event_id, ())

    async def remember(self, event_id: str, choices: tuple[Choice, ...]) -> None:
        if not choices:
            return  # a decided request keeps its old choices: a late ✅ is told it is over
        self._by_event[event_id] = choices
        self._by_event.move_to_end(event_id)
        while len(self._by_event) > MAX_REMEMBERED:
            self._by_event.popitem(last=False)
        entries = [[event_id, [[c.label, c.data] for c in choices]]
                   for event_id, choices in self._by_event.items()]
        await self.state.set(CHOICES_KEY, json.dumps(entries, ensure_ascii=False))
