"""JSON payloads in the exact shape Telegram sends.

Two ways to build them:

* :func:`ptb_json` - from python-telegram-bot objects (``telegram.Update``, ``telegram.User``,
  ...). Used for everything off the hot path, so the shape is PTB's by construction.
* :func:`text_message` / :func:`photo_message` - plain dict building for the replies to
  ``sendMessage``/``sendPhoto``, which benchmarks call tens of thousands of times. Building a
  ``telegram.Message`` per request would cost more than the whole HTTP exchange; the tests check
  these dicts against ``telegram.Message(...).to_dict()`` instead.
"""

from __future__ import annotations

import json
from typing import Any

from telegram import TelegramObject

JSON = dict[str, Any]

# PTB's Message.to_dict() writes these service flags as False; Telegram omits them.
_FALSE_DEFAULT_FLAGS = (
    "channel_chat_created",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
)


def ptb_json(obj: TelegramObject) -> JSON:
    """``obj.to_dict()`` as Telegram would serialise it: plain JSON types, no PTB-only noise."""
    data: JSON = json.loads(json.dumps(obj.to_dict()))  # also turns PTB's StrEnums into str
    _drop_false_flags(data)
    return data


def _drop_false_flags(value: Any) -> None:
    if isinstance(value, dict):
        for flag in _FALSE_DEFAULT_FLAGS:
            if value.get(flag) is False:
                del value[flag]
        for item in value.values():
            _drop_false_flags(item)
    elif isinstance(value, list):
        for item in value:
            _drop_false_flags(item)


def _message_base(
    message_id: int,
    sender: JSON,
    chat: JSON,
    date: int,
    reply_markup: JSON | None,
    protect_content: bool,
    reply_to: JSON | None,
) -> JSON:
    message: JSON = {"message_id": message_id, "from": sender, "chat": chat, "date": date}
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    if protect_content:
        message["has_protected_content"] = True
    if reply_markup is not None:
        message["reply_markup"] = reply_markup
    return message


def text_message(
    message_id: int,
    sender: JSON,
    chat: JSON,
    date: int,
    text: str,
    entities: list[JSON],
    *,
    reply_markup: JSON | None = None,
    protect_content: bool = False,
    reply_to: JSON | None = None,
) -> JSON:
    """The Message Telegram returns for sendMessage (reply_markup: inline keyboards only)."""
    message = _message_base(message_id, sender, chat, date, reply_markup, protect_content, reply_to)
    message["text"] = text
    if entities:
        message["entities"] = entities
    return message


def photo_message(
    message_id: int,
    sender: JSON,
    chat: JSON,
    date: int,
    photo: list[JSON],
    caption: str,
    caption_entities: list[JSON],
    *,
    reply_markup: JSON | None = None,
    protect_content: bool = False,
    reply_to: JSON | None = None,
) -> JSON:
    """The Message Telegram returns for sendPhoto."""
    message = _message_base(message_id, sender, chat, date, reply_markup, protect_content, reply_to)
    message["photo"] = photo
    if caption:
        message["caption"] = caption
    if caption_entities:
        message["caption_entities"] = caption_entities
    return message


def as_reply_target(message: JSON) -> JSON:
    """A message as embedded in ``reply_to_message``: Telegram does not nest replies further."""
    if "reply_to_message" not in message:
        return message
    return {key: value for key, value in message.items() if key != "reply_to_message"}
