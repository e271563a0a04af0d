"""Everything the fake Telegram knows: users, chats, their messages, files, updates, counters.

Message records are plain dicts (what ``TelegramDouble.messages()`` hands to tests)::

    message_id, chat_id, from_bot, kind ("text"/"photo"/"location"/...), date, sent_at,
    text, raw_text, entities, parse_mode, caption, reply_markup, protect_content,
    disable_notification, reply_to_message_id, allow_paid_broadcast,
    edits (list of {"date", "text", "raw_text", "entities", "reply_markup"}), deleted,
    api (the Message JSON as Telegram currently knows it)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from telegram import Chat, User

from .files import FileStore
from .payloads import JSON, ptb_json
from .stats import Stats
from .updates import UpdateQueue

Record = dict[str, Any]
# (scope type, scope chat_id, scope user_id, language_code) -> commands, see setMyCommands.
CommandKey = tuple[str, int | str | None, int | None, str]


@dataclass(eq=False)
class UserRecord:
    """A Telegram user, kept both as a PTB object and as its JSON."""

    ptb: User
    api: JSON

    @property
    def id(self) -> int:
        return self.ptb.id

    @classmethod
    def create(
        cls,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> UserRecord:
        user = User(
            user_id,
            first_name,
            False,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        return cls.of(user)

    @classmethod
    def of(cls, user: User) -> UserRecord:
        return cls(user, ptb_json(user))


@dataclass(eq=False)
class ChatRecord:
    """A chat and the bot's standing in it."""

    ptb: Chat
    api: JSON
    members: set[int] = field(default_factory=set)
    bot_admin: bool = False
    history: dict[int, Record] = field(default_factory=dict)  # every message, by id
    sent: list[Record] = field(default_factory=list)  # the bot's messages, in order
    next_message_id: int = 1
    # Why a send to this chat would be refused:
    blocked: bool = False  # private: the user blocked the bot
    started: bool = True  # private: the user has ever written to the bot
    deactivated: bool = False  # private: the account was deleted
    bot_member: bool = True  # groups: the bot is (still) in the chat
    # groups: False = the bot is restricted (getChatMember only; sends are not refused)
    bot_can_send: bool = True
    migrated_to: int | None = None  # groups upgraded to a supergroup

    @property
    def id(self) -> int:
        return self.ptb.id

    @property
    def type(self) -> str:
        return str(self.ptb.type)

    @property
    def chat_instance(self) -> str:
        # Telegram's chat_instance is an opaque per-chat string; any stable value will do.
        return str(abs(self.id) * 7919 + 104729)

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    @classmethod
    def create(cls, chat: Chat, **state: Any) -> ChatRecord:
        return cls(chat, ptb_json(chat), **state)


class World:
    """Shared state of the double; the Bot API handlers and the user simulator both act on it."""

    def __init__(self, bot: UserRecord, first_update_id: int = 1) -> None:
        self.bot = bot
        # A message's "from" carries only the plain user fields; the capability flags
        # (can_join_groups, ...) appear in getMe alone.
        self.bot_sender = ptb_json(
            User(bot.id, bot.ptb.first_name, True, username=bot.ptb.username)
        )
        self.users: dict[int, UserRecord] = {}
        self.chats: dict[int, ChatRecord] = {}
        self.usernames: dict[str, int] = {}  # lower-case username -> chat id, for "@name"
        self.files = FileStore()
        self.stats = Stats()
        self.updates = UpdateQueue(self.stats, first_update_id)
        self.callback_queries: dict[str, Record] = {}
        self.callback_answers: list[Record] = []
        self.commands: dict[CommandKey, list[dict[str, str]]] = {}
        self.webhook: Record | None = None
        # Keyed by chat: a benchmark keeps thousands of people waiting for their reply at
        # once, and each of the bot's sends must wake only the ones in its chat.
        self._watchers: dict[int, list[asyncio.Future[None]]] = {}

    # -- registry --------------------------------------------------------------------------
    def add_user(self, user: UserRecord, *, started: bool = True) -> ChatRecord:
        """Register a user and its private chat with the bot (chat id == user id)."""
        self.users[user.id] = user
        chat = Chat(
            user.id,
            Chat.PRIVATE,
            first_name=user.ptb.first_name,
            last_name=user.ptb.last_name,
            username=user.ptb.username,
        )
        record = ChatRecord.create(chat, members={user.id}, started=started)
        self.add_chat(record)
        return record

    def add_chat(self, chat: ChatRecord) -> None:
        self.chats[chat.id] = chat
        # "@name" reaches public groups and channels only; users are addressed by id.
        if chat.ptb.username and chat.type != Chat.PRIVATE:
            self.usernames[chat.ptb.username.lower()] = chat.id

    def user(self, user_id: int) -> UserRecord:
        try:
            return self.users[user_id]
        except KeyError:
            raise KeyError(f"unknown user {user_id}: declare it with double.user()") from None

    def chat(self, chat_id: int) -> ChatRecord:
        try:
            return self.chats[chat_id]
        except KeyError:
            raise KeyError(f"unknown chat {chat_id}: declare it first") from None

    def resolve_chat(self, ref: Any) -> ChatRecord | None:
        """A chat_id parameter (int, "123" or "@username") -> the chat, if Telegram knows it."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self.chats.get(ref)
        text = str(ref).strip()
        if text.startswith("@"):
            chat_id = self.usernames.get(text[1:].lower())
            return None if chat_id is None else self.chats.get(chat_id)
        try:
            return self.chats.get(int(text))
        except ValueError:
            return None

    def user_json(self, user_id: int) -> JSON | None:
        user = self.users.get(user_id)
        return None if user is None else user.api

    # -- messages --------------------------------------------------------------------------
    def store_user_message(self, chat: ChatRecord, message: JSON, kind: str) -> Record:
        record: Record = {
            "message_id": message["message_id"],
            "chat_id": chat.id,
            "from_bot": False,
            "kind": kind,
            "date": message["date"],
            "text": message.get("text"),
            "deleted": False,
            "api": message,
        }
        chat.history[record["message_id"]] = record
        return record

    def store_bot_message(self, chat: ChatRecord, record: Record) -> None:
        chat.history[record["message_id"]] = record
        chat.sent.append(record)
        self.stats.accepted[chat.id] += 1
        self.stats.accepted_at.append((record["sent_at"], chat.id))
        self.changed(chat.id)

    # -- waiting for the bot ---------------------------------------------------------------
    def watch(self, chat_id: int) -> asyncio.Future[None]:
        """A future resolved the next time the bot sends or edits something in ``chat_id``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._watchers.setdefault(chat_id, [])
        waiting[:] = [f for f in waiting if not f.done()]  # waits that timed out
        waiting.append(future)
        return future

    def changed(self, chat_id: int) -> None:
        waiting = self._watchers.pop(chat_id, None)  # the hot path: usually nobody
        for future in waiting or ():
            if not future.done():  # a waiter that timed out is cancelled already
                future.set_result(None)


def now() -> tuple[float, int]:
    """(precise unix time, whole-second unix time for the ``date`` fields)."""
    stamp = time.time()
    return stamp, int(stamp)
