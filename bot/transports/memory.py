"""An in-memory transport for tests: records what each chat received, can fail on demand."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.domain import ChatRef, Outgoing
from bot.lanes import StaffTest, nobody
from bot.transports.base import (
    DeliveryError,
    IncomingHandler,
    PermanentError,
    StartLink,
    Transport,
    file_part,
    first_id,
    is_file_part,
    join_ids,
    split_ids,
    unmarked,
)


@dataclass
class Posted:
    chat_id: str
    message_id: str
    message: Outgoing
    edits: list[Outgoing] = field(default_factory=list)
    deleted: bool = False
    file_deleted: bool = False  # its attachment removed (a protected alert's photo)

    @property
    def current(self) -> Outgoing:
        return self.edits[-1] if self.edits else self.message


class MemoryTransport(Transport):
    def __init__(self, platform: str = "memory", officers_chat: str | None = "officers",
                 clock: Clock | None = None) -> None:
        self.platform = platform
        self.officers_chat = officers_chat
        self.more_officers: list[str] = []  # the organisations' officers' chats
        self.on_incoming: IncomingHandler | None = None
        self.posted: dict[str, list[Posted]] = defaultdict(list)
        # chat id → errors raised by the next sends there, in order
        self.failures: dict[str, list[DeliveryError]] = defaultdict(list)
        self.send_count = 0
        self.clock = clock or Clock()  # the bot's, so pacing tests measure its time
        self.send_times: list[tuple[float, str]] = []  # (monotonic, chat id): pacing tests
        self._ids = itertools.count(1)

    async def start(self, on_incoming: IncomingHandler, staff: StaffTest = nobody) -> None:
        self.on_incoming = on_incoming

    async def stop(self) -> None:
        self.on_incoming = None

    @property
    def connected(self) -> bool:
        return self.on_incoming is not None

    async def send(self, chat_id: str, message: Outgoing) -> str:
        self.send_count += 1
        self.send_times.append((self.clock.monotonic(), chat_id))
        if self.failures.get(chat_id):
            raise self.failures[chat_id].pop(0)
        message_id = str(next(self._ids))
        self.posted[chat_id].append(Posted(chat_id, message_id, message))
        if message.attachment is not None:  # as the platforms do: the file is a part
            return join_ids([file_part(message_id), message_id])
        return message_id

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        target = first_id(message_id)
        for post in self.posted[chat_id]:
            if post.message_id == target:
                post.edits.append(message)
                return
        raise DeliveryError(f"no message {message_id} in {chat_id}")

    async def delete(self, chat_id: str, message_id: str) -> None:
        """Every part named: a file part removes the attachment, a text part the post."""
        if self.failures.get(chat_id):
            raise self.failures[chat_id].pop(0)
        for part in split_ids(message_id):
            post = self._post(chat_id, unmarked(part))
            if is_file_part(part):
                post.file_deleted = True
            elif post.deleted:
                raise PermanentError(f"message {message_id} not found in {chat_id}")
            else:
                post.deleted = True

    def _post(self, chat_id: str, message_id: str) -> Posted:
        for post in self.posted[chat_id]:
            if post.message_id == message_id:
                return post
        raise PermanentError(f"message {message_id} not found in {chat_id}")

    def start_link(self, code: str) -> StartLink | None:
        """A link in the shape of the platform's, so tests read what people would."""
        if self.platform == "matrix":
            return StartLink(self.platform, "https://matrix.to/#/@bot:test", f"!start {code}")
        return StartLink(self.platform, f"https://t.me/memory_bot?start={code}", None)

    def officers_channels(self) -> list[ChatRef]:
        main = [] if self.officers_chat is None else [self.officers_chat]
        return [ChatRef(self.platform, chat) for chat in (*main, *self.more_officers)
                if chat]

    def texts(self, chat_id: str) -> list[str]:
        """What the chat shows now: edits applied, deleted messages gone."""
        return [post.current.text for post in self.posted[chat_id] if not post.deleted]
