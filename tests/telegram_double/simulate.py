"""What users do on their side: write, share locations and media, press buttons, block the bot.

Every action becomes a ``telegram.Update`` built from PTB's own classes, queued for getUpdates.
This is test set-up, not the hot path, so fidelity wins over speed here.
"""

from __future__ import annotations

import datetime as dtm
import itertools
import struct
import zlib
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    ChatMember,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberUpdated,
    Document,
    InaccessibleMessage,
    Location,
    Message,
    MessageEntity,
    PhotoSize,
    Sticker,
    Voice,
)

from .files import image_size
from .payloads import JSON, ptb_json
from .text import detect_entities
from .world import ChatRecord, UserRecord, World, now

_EPOCH = dtm.datetime.fromtimestamp(0, dtm.UTC)  # ChatMemberBanned.until_date 0 = forever


def _tiny_png() -> bytes:
    """A valid 1x1 PNG, so that a bot downloading a user's photo gets a real image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


TINY_PNG = _tiny_png()
_FAKE_OGG = b"OggS" + bytes(60)
_FAKE_WEBP = b"RIFF" + struct.pack("<I", 4) + b"WEBP"


def _when(date: int) -> dtm.datetime:
    return dtm.datetime.fromtimestamp(date, dtm.UTC)


class UserSimulator:
    def __init__(self, world: World) -> None:
        self.world = world
        self._query_ids = itertools.count(4_611_686_018_427_387_904)  # opaque, like Telegram's

    # -- messages --------------------------------------------------------------------------
    def text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        entities = [MessageEntity(**entity) for entity in detect_entities(text)]
        return self._send(
            user_id,
            chat_id,
            "text",
            reply_to_message_id,
            text=text,
            entities=entities or None,
        )

    def location(
        self, user_id: int, latitude: float, longitude: float, chat_id: int | None = None
    ) -> JSON:
        location = Location(longitude=longitude, latitude=latitude)
        return self._send(user_id, chat_id, "location", None, location=location)

    def sticker(self, user_id: int, chat_id: int | None = None, emoji: str = "👍") -> JSON:
        stored = self.world.files.add("sticker", _FAKE_WEBP, "webp", "image/webp")
        sticker = Sticker(
            stored.file_id,
            stored.file_unique_id,
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
            type=Sticker.REGULAR,
            emoji=emoji,
            file_size=len(stored.data),
        )
        return self._send(user_id, chat_id, "sticker", None, sticker=sticker)

    def photo(
        self,
        user_id: int,
        chat_id: int | None = None,
        caption: str | None = None,
        data: bytes = TINY_PNG,
        media_group_id: str | None = None,
    ) -> JSON:
        """A photo as a bot receives it: several sizes, smallest first (each downloadable),
        the caption with its entities (a ``/command`` in it is a bot_command)."""
        suffix, mime = ("png", "image/png") if data[:4] == b"\x89PNG" else ("jpg", "image/jpeg")
        sizes = tuple(
            PhotoSize(stored.file_id, stored.file_unique_id, *(image_size(stored.data) or (1, 1)),
                      file_size=len(stored.data))
            for stored in self.world.files.add_photo(data, suffix, mime))
        return self._send(user_id, chat_id, "photo", None, photo=sizes, caption=caption,
                          caption_entities=self._entities(caption),
                          media_group_id=media_group_id)

    def document(
        self,
        user_id: int,
        data: bytes,
        file_name: str,
        mime_type: str,
        chat_id: int | None = None,
        caption: str | None = None,
    ) -> JSON:
        """A file sent as a document (an uncompressed image, say)."""
        stored = self.world.files.add("document", data, file_name.rsplit(".", 1)[-1], mime_type)
        document = Document(stored.file_id, stored.file_unique_id, file_name=file_name,
                            mime_type=mime_type, file_size=len(data))
        return self._send(user_id, chat_id, "document", None, document=document,
                          caption=caption, caption_entities=self._entities(caption))

    @staticmethod
    def _entities(text: str | None) -> list[MessageEntity] | None:
        entities = [MessageEntity(**entity) for entity in detect_entities(text or "")]
        return entities or None

    def voice(self, user_id: int, chat_id: int | None = None, duration: int = 3) -> JSON:
        stored = self.world.files.add("voice", _FAKE_OGG, "oga", "audio/ogg")
        voice = Voice(
            stored.file_id,
            stored.file_unique_id,
            duration=duration,
            mime_type="audio/ogg",
            file_size=len(stored.data),
        )
        return self._send(user_id, chat_id, "voice", None, voice=voice)

    def edit(self, user_id: int, message_id: int, text: str, chat_id: int | None = None) -> JSON:
        user, chat = self._participants(user_id, chat_id)
        record = chat.history.get(message_id)
        if record is None or record["from_bot"] or record["api"]["from"]["id"] != user_id:
            raise ValueError(f"user {user_id} has no message {message_id} in chat {chat.id}")
        original = Message.de_json(record["api"], None)
        entities = [MessageEntity(**entity) for entity in detect_entities(text)]
        edited = Message(
            message_id,
            original.date,
            chat.ptb,
            from_user=user.ptb,
            text=text,
            entities=entities or None,
            edit_date=_when(now()[1]),
        )
        api = ptb_json(edited)
        record["api"] = api
        record["text"] = text
        self.world.updates.push("edited_message", edited)
        return api

    def _send(
        self,
        user_id: int,
        chat_id: int | None,
        kind: str,
        reply_to_message_id: int | None,
        **content: Any,
    ) -> JSON:
        user, chat = self._participants(user_id, chat_id)
        if chat.type == "private":
            chat.started = True  # writing to a bot opens the conversation
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = Message.de_json(chat.history[reply_to_message_id]["api"], None)
        message = Message(
            chat.allocate_message_id(),
            _when(now()[1]),
            chat.ptb,
            from_user=user.ptb,
            reply_to_message=reply_to,
            **content,
        )
        api = ptb_json(message)
        self.world.store_user_message(chat, api, kind)
        self.world.updates.push("message", message)
        return api

    def _participants(self, user_id: int, chat_id: int | None) -> tuple[UserRecord, ChatRecord]:
        user = self.world.user(user_id)
        chat = self.world.chat(user_id if chat_id is None else chat_id)
        chat.members.add(user_id)
        return user, chat

    # -- buttons ---------------------------------------------------------------------------
    def press(
        self, user_id: int, chat_id: int, message_id: int, data: str, *, forged: bool = False
    ) -> str:
        """Queue a callback_query; unless ``forged``, ``data`` must be on one of the buttons."""
        user, chat = self._participants(user_id, chat_id)
        record = chat.history.get(message_id)
        if record is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        if not forged and data not in _callback_data(record["api"]):
            raise ValueError(f"message {message_id} has no button with data {data!r}")
        message: Message | InaccessibleMessage = (
            InaccessibleMessage(chat.ptb, message_id)
            if record["deleted"]
            else Message.de_json(record["api"], None)
        )
        query_id = str(next(self._query_ids))
        query = CallbackQuery(query_id, user.ptb, chat.chat_instance, message=message, data=data)
        self.world.callback_queries[query_id] = {
            "id": query_id,
            "user_id": user_id,
            "chat_id": chat.id,
            "message_id": message_id,
            "data": data,
            "forged": forged,
            "answered": False,
        }
        self.world.updates.push("callback_query", query)
        return query_id

    # -- membership ------------------------------------------------------------------------
    def set_blocked(self, user_id: int, blocked: bool) -> None:
        user, chat = self._participants(user_id, None)
        chat.blocked = blocked
        bot = self.world.bot.ptb
        member = ChatMemberMember(bot)
        banned = ChatMemberBanned(bot, until_date=_EPOCH)
        old, new = (member, banned) if blocked else (banned, member)
        self._member_update(chat, user, old, new)

    def set_bot_membership(self, chat_id: int, by_user_id: int, member: bool) -> None:
        user, chat = self._participants(by_user_id, chat_id)
        chat.bot_member = member
        bot = self.world.bot.ptb
        joined = ChatMemberMember(bot)
        gone = ChatMemberLeft(bot)
        old, new = (gone, joined) if member else (joined, gone)
        self._member_update(chat, user, old, new)

    def _member_update(
        self, chat: ChatRecord, user: UserRecord, old: ChatMember, new: ChatMember
    ) -> None:
        update = ChatMemberUpdated(chat.ptb, user.ptb, _when(now()[1]), old, new)
        self.world.updates.push("my_chat_member", update)

    def migrate(self, group_id: int, supergroup_id: int, by_user_id: int | None = None) -> None:
        """Upgrade a group: the old id answers 400 + migrate_to_chat_id from now on."""
        group = self.world.chat(group_id)
        if group.type != Chat.GROUP:
            raise ValueError(f"chat {group_id} is a {group.type}, only groups migrate")
        supergroup = ChatRecord.create(
            Chat(supergroup_id, Chat.SUPERGROUP, title=group.ptb.title),
            members=set(group.members),
            bot_admin=group.bot_admin,
            bot_member=group.bot_member,
        )
        self.world.add_chat(supergroup)
        group.migrated_to = supergroup_id
        if by_user_id is None and not group.members:
            raise ValueError(f"group {group_id} has no members: pass by_user_id")
        by = self.world.user(by_user_id if by_user_id is not None else min(group.members))
        date = _when(now()[1])
        # Telegram announces the upgrade with a service message in each chat.
        farewell = Message(
            group.allocate_message_id(),
            date,
            group.ptb,
            from_user=by.ptb,
            migrate_to_chat_id=supergroup_id,
        )
        welcome = Message(
            supergroup.allocate_message_id(),
            date,
            supergroup.ptb,
            from_user=by.ptb,
            migrate_from_chat_id=group_id,
        )
        for chat, message in ((group, farewell), (supergroup, welcome)):
            self.world.store_user_message(chat, ptb_json(message), "service")
            self.world.updates.push("message", message)


def _callback_data(message: JSON) -> set[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {button["callback_data"] for row in rows for button in row if "callback_data" in button}
