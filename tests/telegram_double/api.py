"""The Bot API methods: parameters in, Telegram-shaped result out, or :class:`ApiError`.

Checks run in the order that keeps accounting honest: target chat (400/403), then content
(400), then flood limits (429) - so a refused or invalid request never consumes rate tokens.
"""

from __future__ import annotations

import datetime as dtm
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    AcceptedGiftTypes,
    ChatFullInfo,
    ChatMember,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberRestricted,
    User,
)

from . import errors as e
from .errors import ApiError, bad_request, forbidden, too_many_requests
from .files import (
    MAX_DOWNLOAD,
    MAX_PHOTO_UPLOAD,
    StoredFile,
    image_size,
    photo_problem,
)
from .markup import EntityParseError, parse_html
from .params import Params, opt_bool, opt_float, opt_int, opt_json, opt_str, required
from .payloads import JSON, as_reply_target, photo_message, ptb_json, text_message
from .ratelimit import RateLimiter
from .text import Entity, strip_text
from .webhook import WebhookPusher
from .world import ChatRecord, CommandKey, Record, World, now

Handler = Callable[[Params], Awaitable[Any]]

SEND_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument"})
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_MAX_CALLBACK_ANSWER = 200
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]*")
_MAX_WEBHOOK_SECRET = 256
_FOREVER = dtm.datetime.fromtimestamp(0, dtm.UTC)  # until_date 0: restricted for good
# The rights PTB requires to build a ChatMemberAdministrator / ChatMemberRestricted.
_ADMIN_RIGHTS = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                 "can_restrict_members", "can_promote_members", "can_change_info",
                 "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories")
_RESTRICTED_FLAGS = ("can_change_info", "can_invite_users", "can_pin_messages",
                     "can_send_messages", "can_send_polls", "can_send_other_messages",
                     "can_add_web_page_previews", "can_manage_topics", "can_send_audios",
                     "can_send_documents", "can_send_photos", "can_send_videos",
                     "can_send_video_notes", "can_send_voice_notes", "can_edit_tag",
                     "can_react_to_messages")


class BotApi:
    """Implements the Bot API methods on a :class:`World`."""

    def __init__(
        self, world: World, limiter: RateLimiter, *, max_text: int, max_caption: int
    ) -> None:
        self.world = world
        self.limiter = limiter  # replaced by TelegramDouble.configure_limits()
        self.max_text = max_text
        self.max_caption = max_caption
        self.webhooks = WebhookPusher(world)  # pushes updates while a webhook is set
        self.handlers: dict[str, Handler] = {
            "getme": self.get_me,
            "getupdates": self.get_updates,
            "setwebhook": self.set_webhook,
            "deletewebhook": self.delete_webhook,
            "getwebhookinfo": self.get_webhook_info,
            "sendmessage": self.send_message,
            "sendphoto": self.send_photo,
            "senddocument": self.send_document,
            "editmessagetext": self.edit_message_text,
            "editmessagecaption": self.edit_message_caption,
            "editmessagereplymarkup": self.edit_message_reply_markup,
            "deletemessage": self.delete_message,
            "answercallbackquery": self.answer_callback_query,
            "setmycommands": self.set_my_commands,
            "getmycommands": self.get_my_commands,
            "deletemycommands": self.delete_my_commands,
            "getchat": self.get_chat,
            "getchatmember": self.get_chat_member,
            "sendchataction": self.send_chat_action,
            "getfile": self.get_file,
        }

    # -- bot & updates ---------------------------------------------------------------------
    async def get_me(self, params: Params) -> JSON:
        return self.world.bot.api

    async def get_updates(self, params: Params) -> list[JSON]:
        if self.world.webhook is not None:
            raise e.conflict(e.WEBHOOK_ACTIVE)
        queue = self.world.updates
        allowed = opt_json(params, "allowed_updates")
        if isinstance(allowed, list):
            queue.set_allowed(str(kind) for kind in allowed)
        queue.confirm(opt_int(params, "offset"))
        limit = min(max(opt_int(params, "limit") or 100, 1), 100)
        timeout = max(opt_float(params, "timeout") or 0.0, 0.0)  # PTB may send "1.5"
        return await queue.poll(limit, timeout)

    async def set_webhook(self, params: Params) -> bool:
        """Like a local Bot API server: http is accepted too, on any port."""
        url = opt_str(params, "url") or ""
        if not url:  # as on Telegram, an empty url removes the webhook
            return await self.delete_webhook(params)
        webhook = _webhook_record(url, params)
        if opt_bool(params, "drop_pending_updates"):
            self.world.updates.clear()
        if webhook["allowed_updates"] is not None:
            self.world.updates.set_allowed(str(kind) for kind in webhook["allowed_updates"])
        self.world.webhook = webhook
        await self.webhooks.restart()
        return True

    async def delete_webhook(self, params: Params) -> bool:
        self.world.webhook = None
        await self.webhooks.stop()  # an update being posted stays pending, for getUpdates
        if opt_bool(params, "drop_pending_updates"):
            self.world.updates.clear()
        return True

    async def get_webhook_info(self, params: Params) -> JSON:
        webhook = self.world.webhook or {}
        info: JSON = {
            "url": webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        for key in ("max_connections", "allowed_updates", "last_error_date",
                    "last_error_message"):
            if webhook.get(key) is not None:
                info[key] = webhook[key]
        return info

    # -- sending ---------------------------------------------------------------------------
    async def send_message(self, params: Params) -> JSON:
        chat = self._target_chat(params)
        text, entities = self._formatted(
            params, "text", "entities", self.max_text, e.MESSAGE_TOO_LONG, e.TEXT_EMPTY
        )
        reply_markup, inline = self._reply_markup(params)
        reply_to = self._reply_to(chat, params)
        paid = self._admit(chat, params, 1.0)
        stamp, date = now()
        message_id = chat.allocate_message_id()
        protect = opt_bool(params, "protect_content")
        message = text_message(
            message_id,
            self.world.bot_sender,
            chat.api,
            date,
            text,
            entities,
            reply_markup=inline,
            protect_content=protect,
            reply_to=reply_to,
        )
        record = self._record(chat, message, "text", params, stamp, reply_markup, paid)
        record["text"] = text
        record["raw_text"] = params.get("text")
        record["entities"] = entities
        self.world.store_bot_message(chat, record)
        return message

    async def send_photo(self, params: Params) -> JSON:
        chat = self._target_chat(params)
        sizes = self._photo_file(params)
        stored = sizes[-1]
        caption, entities = self._formatted(
            params, "caption", "caption_entities", self.max_caption, e.CAPTION_TOO_LONG, None
        )
        reply_markup, inline = self._reply_markup(params)
        reply_to = self._reply_to(chat, params)
        paid = self._admit(chat, params, 1.0)
        stamp, date = now()
        message = photo_message(
            chat.allocate_message_id(),
            self.world.bot_sender,
            chat.api,
            date,
            [_photo_size(size) for size in sizes],
            caption,
            entities,
            reply_markup=inline,
            protect_content=opt_bool(params, "protect_content"),
            reply_to=reply_to,
        )
        record = self._record(chat, message, "photo", params, stamp, reply_markup, paid)
        record["caption"] = caption
        record["raw_text"] = params.get("caption")
        record["entities"] = entities
        record["file_id"] = stored.file_id
        self.world.store_bot_message(chat, record)
        return message

    async def send_document(self, params: Params) -> JSON:
        """Like sendPhoto, for any file: the Message carries a ``document``."""
        chat = self._target_chat(params)
        value = params.get("document")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if not isinstance(value, web.FileField):
            raise bad_request("Bad Request: there is no document in the request")
        data = value.file.read()
        stored = self.world.files.add("document", data, "bin", value.content_type)
        caption, entities = self._formatted(
            params, "caption", "caption_entities", self.max_caption, e.CAPTION_TOO_LONG, None
        )
        reply_markup, inline = self._reply_markup(params)
        paid = self._admit(chat, params, 1.0)
        stamp, date = now()
        message = photo_message(chat.allocate_message_id(), self.world.bot_sender, chat.api,
                                date, [], caption, entities, reply_markup=inline,
                                protect_content=opt_bool(params, "protect_content"))
        del message["photo"]
        message["document"] = {"file_id": stored.file_id,
                               "file_unique_id": stored.file_unique_id,
                               "file_name": value.filename, "file_size": len(data)}
        record = self._record(chat, message, "document", params, stamp, reply_markup, paid)
        record.update(caption=caption, raw_text=params.get("caption"), entities=entities,
                      file_id=stored.file_id, file_name=value.filename, data=data)
        self.world.store_bot_message(chat, record)
        return message

    def _record(
        self,
        chat: ChatRecord,
        message: JSON,
        kind: str,
        params: Params,
        stamp: float,
        reply_markup: JSON | None,
        paid: bool,
    ) -> Record:
        reply_to = message.get("reply_to_message")
        return {
            "message_id": message["message_id"],
            "chat_id": chat.id,
            "from_bot": True,
            "kind": kind,
            "date": message["date"],
            "sent_at": stamp,
            "text": None,
            "caption": None,
            "parse_mode": params.get("parse_mode"),
            "reply_markup": reply_markup,
            "protect_content": opt_bool(params, "protect_content"),
            "disable_notification": opt_bool(params, "disable_notification"),
            "reply_to_message_id": None if reply_to is None else reply_to["message_id"],
            "allow_paid_broadcast": paid,
            "edits": [],
            "deleted": False,
            "api": message,
        }

    # -- editing ---------------------------------------------------------------------------
    async def edit_message_text(self, params: Params) -> JSON:
        chat = self._target_chat(params)
        record = self._bot_message(chat, params, e.EDIT_NOT_FOUND)
        if record["kind"] != "text":
            raise bad_request(e.NO_TEXT_TO_EDIT)
        text, entities = self._formatted(
            params, "text", "entities", self.max_text, e.MESSAGE_TOO_LONG, e.TEXT_EMPTY
        )
        return self._apply_edit(chat, record, params, {"text": text, "entities": entities})

    async def edit_message_caption(self, params: Params) -> JSON:
        chat = self._target_chat(params)
        record = self._bot_message(chat, params, e.EDIT_NOT_FOUND)
        if record["kind"] == "text":
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._formatted(
            params, "caption", "caption_entities", self.max_caption, e.CAPTION_TOO_LONG, None
        )
        return self._apply_edit(
            chat, record, params, {"caption": caption, "caption_entities": entities}
        )

    async def edit_message_reply_markup(self, params: Params) -> JSON:
        chat = self._target_chat(params)
        record = self._bot_message(chat, params, e.EDIT_NOT_FOUND)
        return self._apply_edit(chat, record, params, {})

    def _apply_edit(
        self, chat: ChatRecord, record: Record, params: Params, content: dict[str, Any]
    ) -> JSON:
        """Edit ``record``: new ``content`` fields and the inline keyboard (absent = removed)."""
        reply_markup, inline = self._reply_markup(params, inline_only=True)
        old = record["api"]
        unchanged = all(
            old.get(key) == value or (not value and key not in old)
            for key, value in content.items()
        )
        if unchanged and old.get("reply_markup") == inline:
            raise bad_request(e.NOT_MODIFIED)
        self._admit(chat, params, self.limiter.limits.edit_cost)
        date = now()[1]
        message = {key: value for key, value in old.items() if key != "reply_markup"}
        for key, value in content.items():
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        if inline is not None:
            message["reply_markup"] = inline
        message["edit_date"] = date
        self._remember_edit(record, message, content, params, reply_markup)
        self.world.stats.edits += 1
        self.world.changed(chat.id)
        return message

    @staticmethod
    def _remember_edit(
        record: Record,
        message: JSON,
        content: dict[str, Any],
        params: Params,
        reply_markup: JSON | None,
    ) -> None:
        record["api"] = message
        record["reply_markup"] = reply_markup
        if "text" in content:
            record["text"] = content["text"]
        if "caption" in content:
            record["caption"] = content["caption"]
        if content:
            record["entities"] = content.get("entities", content.get("caption_entities"))
            record["raw_text"] = params.get("text", params.get("caption"))
            record["parse_mode"] = params.get("parse_mode")
        record["edits"].append(
            {
                "date": message["edit_date"],
                "text": record["text"],
                "caption": record["caption"],
                "raw_text": record["raw_text"],
                "entities": record["entities"],
                "reply_markup": reply_markup,
            }
        )

    async def delete_message(self, params: Params) -> bool:
        chat = self._target_chat(params)
        message_id = required(opt_int(params, "message_id"), bad_request(e.MESSAGE_ID_MISSING))
        record = chat.history.get(message_id)
        if record is None or record["deleted"]:
            raise bad_request(e.DELETE_NOT_FOUND)
        # Bots delete anything in private chats, only their own messages in groups (unless admin).
        if not record["from_bot"] and chat.type != "private" and not chat.bot_admin:
            raise bad_request(e.CANT_DELETE)
        record["deleted"] = True
        self.world.stats.deletes += 1
        self.world.changed(chat.id)
        return True

    # -- callbacks, commands, misc ---------------------------------------------------------
    async def answer_callback_query(self, params: Params) -> bool:
        query_id = opt_str(params, "callback_query_id") or ""
        query = self.world.callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request(e.QUERY_INVALID)
        text = opt_str(params, "text")
        if text is not None and len(text) > _MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        query["answered"] = True
        self.world.callback_answers.append(
            {
                "callback_query_id": query_id,
                "user_id": query["user_id"],
                "chat_id": query["chat_id"],
                "message_id": query["message_id"],
                "data": query["data"],
                "text": text,
                "show_alert": opt_bool(params, "show_alert"),
                "url": opt_str(params, "url"),
                "cache_time": opt_int(params, "cache_time"),
                "answered_at": now()[0],
            }
        )
        return True

    async def set_my_commands(self, params: Params) -> bool:
        commands = opt_json(params, "commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        if len(commands) > 100:
            raise bad_request("too many commands")
        checked = [_bot_command(command) for command in commands]
        key = self._command_key(params)
        if checked:
            self.world.commands[key] = checked
        else:
            self.world.commands.pop(key, None)
        return True

    async def get_my_commands(self, params: Params) -> list[dict[str, str]]:
        return self.world.commands.get(self._command_key(params), [])

    async def delete_my_commands(self, params: Params) -> bool:
        self.world.commands.pop(self._command_key(params), None)
        return True

    def _command_key(self, params: Params) -> CommandKey:
        scope = opt_json(params, "scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _COMMAND_SCOPES:
            raise bad_request("can't parse BotCommandScope")
        chat_ref = scope.get("chat_id")
        chat_id: int | str | None = None
        if chat_ref is not None:
            chat = self.world.resolve_chat(chat_ref)
            if chat is None:
                raise bad_request(e.CHAT_NOT_FOUND)
            chat_id = chat.id
        user_id = scope.get("user_id")
        language = opt_str(params, "language_code") or ""
        return (str(scope["type"]), chat_id, None if user_id is None else int(user_id), language)

    async def get_chat(self, params: Params) -> JSON:
        chat = self._known_chat(params)
        info = ChatFullInfo(
            id=chat.id,
            type=chat.type,
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types=AcceptedGiftTypes(False, False, False, False, False),
            title=chat.ptb.title,
            username=chat.ptb.username,
            first_name=chat.ptb.first_name,
            last_name=chat.ptb.last_name,
        )
        return ptb_json(info)

    async def get_chat_member(self, params: Params) -> JSON:
        """A person's (or the bot's own) standing in a chat. As on Telegram, a bot that is
        not in a group may not look inside it."""
        chat = self._known_chat(params)
        if chat.migrated_to is not None:
            raise bad_request(e.GROUP_MIGRATED, migrate_to_chat_id=chat.migrated_to)
        if chat.type != "private" and not chat.bot_member:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        user_id = required(opt_int(params, "user_id"), bad_request(e.USER_ID_INVALID))
        if user_id == self.world.bot.id:
            return ptb_json(_bot_member(chat, self.world.bot.ptb))
        user = self.world.users.get(user_id)
        if user is None:
            raise bad_request(e.USER_NOT_FOUND)
        inside = user_id in chat.members or (chat.type == "private" and user_id == chat.id)
        return ptb_json(ChatMemberMember(user.ptb) if inside else ChatMemberLeft(user.ptb))

    async def send_chat_action(self, params: Params) -> bool:
        self._target_chat(params)
        if opt_str(params, "action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def get_file(self, params: Params) -> JSON:
        stored = self.world.files.get(opt_str(params, "file_id") or "")
        if stored is None:
            raise bad_request(e.INVALID_FILE_ID)
        if len(stored.data) > MAX_DOWNLOAD:
            raise bad_request(e.FILE_TOO_BIG)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # -- shared checks ---------------------------------------------------------------------
    def _known_chat(self, params: Params) -> ChatRecord:
        ref = required(params.get("chat_id"), bad_request(e.CHAT_ID_EMPTY))
        chat = self.world.resolve_chat(ref)
        if chat is None:
            raise bad_request(e.CHAT_NOT_FOUND)
        return chat

    def _target_chat(self, params: Params) -> ChatRecord:
        """The chat a message goes to, or the 400/403 Telegram gives for it."""
        chat = self._known_chat(params)
        if chat.migrated_to is not None:
            raise bad_request(e.GROUP_MIGRATED, migrate_to_chat_id=chat.migrated_to)
        if chat.type == "private":
            if chat.deactivated:
                raise forbidden(e.USER_DEACTIVATED)
            if chat.blocked:
                raise forbidden(e.BLOCKED_BY_USER)
            if not chat.started:
                raise forbidden(e.CANT_INITIATE)
        elif not chat.bot_member:
            raise forbidden(f"bot was kicked from the {chat.type} chat")
        return chat

    def _formatted(
        self,
        params: Params,
        field: str,
        entities_field: str,
        limit: int,
        too_long: str,
        empty: str | None,
    ) -> tuple[str, list[Entity]]:
        """Text (or caption) after parse_mode and trimming, checked against Telegram's limits."""
        raw = params.get(field)
        text = "" if raw is None else raw if isinstance(raw, str) else str(raw)
        mode = params.get("parse_mode")
        entities: list[Entity]
        if mode:
            text, entities = self._parse(text, str(mode))
        else:
            explicit = opt_json(params, entities_field)
            entities = explicit if isinstance(explicit, list) else []
        text, entities = strip_text(text, entities)
        if not text and empty is not None:
            raise bad_request(empty)
        # Telegram counts Unicode code points here (TDLib's utf8_length), not UTF-16 units.
        if len(text) > limit:
            raise bad_request(too_long)
        return text, entities

    def _parse(self, text: str, mode: str) -> tuple[str, list[Entity]]:
        lowered = mode.lower()
        if lowered == "html":
            try:
                return parse_html(text, self.world.user_json)
            except EntityParseError as exc:
                raise bad_request(e.PARSE_ENTITIES + str(exc)) from None
        if lowered in ("markdown", "markdownv2"):
            return text, []  # accepted but not interpreted (see README)
        raise bad_request(e.UNSUPPORTED_PARSE_MODE)

    def _reply_markup(
        self, params: Params, *, inline_only: bool = False
    ) -> tuple[JSON | None, JSON | None]:
        """(markup as sent, inline keyboard echoed in the Message or None)."""
        markup = opt_json(params, "reply_markup")
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if inline_only:
                raise bad_request(e.INLINE_KEYBOARD_EXPECTED)
            return markup, None  # reply keyboards etc. are not part of the returned Message
        _check_inline_keyboard(markup["inline_keyboard"])
        return markup, {"inline_keyboard": markup["inline_keyboard"]}

    def _reply_to(self, chat: ChatRecord, params: Params) -> JSON | None:
        reply = opt_json(params, "reply_parameters")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            lenient = bool(reply.get("allow_sending_without_reply"))
        else:
            message_id = opt_int(params, "reply_to_message_id")
            lenient = opt_bool(params, "allow_sending_without_reply")
        if message_id is None:
            return None
        target = chat.history.get(int(message_id))
        if target is None or target["deleted"]:
            if lenient:
                return None
            raise bad_request(e.REPLY_NOT_FOUND)
        return as_reply_target(target["api"])

    def _admit(self, chat: ChatRecord, params: Params, cost: float) -> bool:
        """Apply flood limits; returns whether the paid-broadcast ceiling was used."""
        paid = opt_bool(params, "allow_paid_broadcast")
        refused = self.limiter.admit(chat.id, chat.type, cost, paid)
        if refused is not None:
            scope, retry_after = refused
            raise too_many_requests(retry_after, scope)
        paid = paid or self.limiter.limits.paid_broadcast
        if paid and cost >= 1.0:
            self.world.stats.paid_broadcasts += 1
        return paid

    def _bot_message(self, chat: ChatRecord, params: Params, not_found: str) -> Record:
        if params.get("inline_message_id"):
            raise bad_request(not_found)  # inline-mode messages are not modelled
        message_id = required(opt_int(params, "message_id"), bad_request(e.MESSAGE_ID_MISSING))
        record = chat.history.get(message_id)
        if record is None or record["deleted"]:
            raise bad_request(not_found)
        if not record["from_bot"]:
            raise bad_request(e.CANT_EDIT)
        return record

    def _photo_file(self, params: Params) -> list[StoredFile]:
        """The photo's sizes, smallest first: uploaded (checked as Telegram does, then
        kept in several sizes), or named by the file_id of one of its sizes."""
        value = params.get("photo")
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        files = self.world.files
        if isinstance(value, web.FileField):
            data = value.file.read()
            if len(data) > MAX_PHOTO_UPLOAD:
                raise ApiError(413, e.ENTITY_TOO_LARGE)
            problem = photo_problem(data)
            if problem is not None:
                raise bad_request(problem)
            suffix = "png" if data[:4] == b"\x89PNG" else "jpg"
            self.world.stats.photo_uploads += 1
            return files.add_photo(data, suffix, value.content_type)
        if isinstance(value, str) and value:
            if value.startswith(("http://", "https://")):
                # Telegram would download it; the double stays offline and keeps no content.
                return [files.add("photo", b"", "jpg", "image/jpeg")]
            known = files.photo_sizes(value)
            plain = files.get(value)
            if known is None and plain is not None:
                known = [plain]  # a file that is not a photo's size: sent as it is
            if known is not None:
                self.world.stats.photos_by_file_id += 1
                return known
            raise bad_request(e.WRONG_FILE_ID)
        raise bad_request(e.NO_PHOTO)


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if not any(action in button for action in _BUTTON_ACTIONS):
                raise bad_request(e.BUTTON_WITHOUT_ACTION)
            if "callback_data" in button:
                data = button["callback_data"]
                # The limit is 1-64 *bytes*: accented French text hits it before 64 characters.
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                    raise bad_request(e.BUTTON_DATA_INVALID)


def _webhook_record(url: str, params: Params) -> Record:
    """setWebhook's parameters, checked and typed (``TelegramDouble.webhook``)."""
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = opt_str(params, "secret_token")
    if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    if secret is not None and len(secret) > _MAX_WEBHOOK_SECRET:
        raise bad_request("secret token is too long")
    allowed = opt_json(params, "allowed_updates")
    return {
        **params,
        "url": url,
        "secret_token": secret or None,
        "allowed_updates": allowed if isinstance(allowed, list) else None,
        "max_connections": opt_int(params, "max_connections") or 40,
        "drop_pending_updates": opt_bool(params, "drop_pending_updates"),
    }


def _bot_member(chat: ChatRecord, bot: User) -> ChatMember:
    """The bot as a group sees it: administrator, restricted (no sending) or plain member."""
    if chat.bot_admin:
        posting = {"can_post_messages": True} if chat.type == "channel" else {}
        return ChatMemberAdministrator(bot, can_be_edited=False, is_anonymous=False,
                                       **dict.fromkeys(_ADMIN_RIGHTS, True), **posting)
    if not chat.bot_can_send:
        return ChatMemberRestricted(bot, is_member=True, until_date=_FOREVER,
                                    **dict.fromkeys(_RESTRICTED_FLAGS, False))
    return ChatMemberMember(bot)


def _bot_command(command: Any) -> dict[str, str]:
    if not isinstance(command, dict):
        raise bad_request("can't parse BotCommand")
    name = command.get("command")
    description = command.get("description")
    if not isinstance(name, str) or not _COMMAND.fullmatch(name):
        raise bad_request("BOT_COMMAND_INVALID")
    if not isinstance(description, str) or not 1 <= len(description) <= 256:
        raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return {"command": name, "description": description}


def _photo_size(stored: StoredFile) -> JSON:
    width, height = image_size(stored.data) or (320, 240)
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "width": width,
        "height": height,
    }
