"""Telegram updates → ``Incoming``: what the core should see, and what it must never see.

Deliberately ignored (``to_incoming`` returns None):

* ``edited_message``: an edited command must not run again (an edited ``/alerte`` would file
  a second alert, an edited ``/valider`` would decide twice); a person who wants something
  else sends a new message. The transport does not even ask Telegram for these updates;
  live-location updates arrive as edits too and are ignored for the same reason.
* Group chatter: in groups only commands (text starting with ``/``) reach the core; the
  officers' group passes all text and the core ignores what is not a command.
* Commands addressed to another bot (``/start@OtherBot``), in any chat.
* Messages sent on behalf of a chat (``sender_chat``: anonymous group admins, channels posting
  in a linked group): no person can be identified, so no role could be checked.
* Locations and unreadable content in groups (a photo only with a command as its
  caption); channels; every other update type.

A photo (or an image sent as a file) whose caption is a command is read as that command;
the transport fetches the photo for staff (bot/transports/telegram_files.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from telegram import CallbackQuery, Chat, ChatMemberUpdated, Message, Update, User
from telegram.constants import ChatMemberStatus

from bot.domain import ChatKind, ChatRef, Identity, Incoming
from bot.transports.telegram_files import photo_in

PLATFORM = "telegram"
# Update kinds the transport asks Telegram for (getUpdates / setWebhook allowed_updates).
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
# Content the bot cannot read, reported to a private chat as Incoming(unsupported=kind).
UNSUPPORTED_KINDS = ("sticker", "photo", "voice", "video", "video_note", "audio", "document",
                     "animation", "contact", "poll", "dice", "game", "story", "paid_media",
                     "invoice")
PHOTO_KINDS = ("photo", "document")  # what an operator's photo arrives as
_JOINED = {ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}
_LEFT = {ChatMemberStatus.LEFT, ChatMemberStatus.BANNED}

# The officers' group, or the groups of every organisation (bot/organisations.py).
Officers = int | Collection[int] | None


def to_incoming(update: Update, bot_username: str,
                officers_chat_id: Officers) -> Incoming | None:
    """The core's view of ``update``, or None when the bot should not react to it."""
    incoming = _content(update, bot_username, officers_chat_id)
    # The update_id: Telegram sends an update again until a getUpdates confirms it.
    return None if incoming is None else replace(incoming, event_id=str(update.update_id))


def _content(update: Update, bot_username: str, officers_chat_id: Officers) -> Incoming | None:
    if update.callback_query is not None:
        return _from_callback(update.callback_query, officers_chat_id)
    if update.my_chat_member is not None:
        return _from_membership(update.my_chat_member, officers_chat_id)
    if update.message is not None:
        return _from_message(update.message, bot_username, officers_chat_id)
    return None


def chat_kind(chat: Chat, officers_chat_id: Officers) -> ChatKind | None:
    """``officers_chat_id``: the officers' group, or every organisation's."""
    officers = () if officers_chat_id is None else (
        (officers_chat_id,) if isinstance(officers_chat_id, int) else officers_chat_id)
    if chat.id in officers:
        return ChatKind.OFFICERS
    if chat.type == Chat.PRIVATE:
        return ChatKind.PRIVATE
    if chat.type in (Chat.GROUP, Chat.SUPERGROUP):
        return ChatKind.GROUP
    return None  # channels: the bot has nothing to do there


def _incoming(user: User, chat: Chat, kind: ChatKind) -> Incoming:
    """Who, where; callers add the content with ``dataclasses.replace``."""
    title = "" if kind is ChatKind.PRIVATE else (chat.title or "")
    return Incoming(sender=Identity(PLATFORM, str(user.id)), chat=ChatRef(PLATFORM, str(chat.id)),
                    chat_kind=kind, chat_title=title, sender_name=user.full_name)


def _from_callback(query: CallbackQuery, officers_chat_id: Officers) -> Incoming | None:
    message = query.message  # None for inline-mode messages, which this bot never sends
    if message is None or not isinstance(query.data, str):
        return None
    kind = chat_kind(message.chat, officers_chat_id)
    if kind is None:
        return None
    # The data is only a claim: the core checks nonces, roles and alert states itself.
    return replace(_incoming(query.from_user, message.chat, kind), choice=query.data)


def _from_membership(event: ChatMemberUpdated, officers_chat_id: Officers) -> Incoming | None:
    kind = chat_kind(event.chat, officers_chat_id)
    membership = _membership(event)
    if kind is None or membership is None:
        return None
    return replace(_incoming(event.from_user, event.chat, kind), membership=membership)


def _membership(event: ChatMemberUpdated) -> str | None:
    """"left" when the bot was blocked, kicked or removed; "joined" when it is back in."""
    member = event.new_chat_member
    if member.status in _LEFT:
        return "left"
    if member.status in _JOINED:
        return "joined"
    if member.status == ChatMemberStatus.RESTRICTED:
        return "joined" if getattr(member, "is_member", False) else "left"
    return None


def _from_message(message: Message, bot_username: str,
                  officers_chat_id: Officers) -> Incoming | None:
    kind = chat_kind(message.chat, officers_chat_id)
    user = message.from_user
    if kind is None or user is None:
        return None
    if message.migrate_to_chat_id is not None:  # group upgraded to a supergroup
        moved_to = str(message.migrate_to_chat_id)
        return replace(_incoming(user, message.chat, kind), moved_to=moved_to)
    if message.sender_chat is not None:
        return None
    if message.text is not None:
        if not _wanted_text(message.text, kind, bot_username):
            return None
        return replace(_incoming(user, message.chat, kind), text=message.text)
    if photo_in(message) is not None:
        return _from_photo(message, user, kind, bot_username)
    if kind is not ChatKind.PRIVATE:
        return None
    if message.location is not None:
        location = (message.location.latitude, message.location.longitude)
        return replace(_incoming(user, message.chat, kind), location=location)
    unsupported = unsupported_kind(message)
    if unsupported is None:
        return None  # service messages (pins, shared users...) need no answer
    return replace(_incoming(user, message.chat, kind), unsupported=unsupported)


def _from_photo(message: Message, user: User, kind: ChatKind,
                bot_username: str) -> Incoming | None:
    """A photo: its caption is read as a command when it is one (« /alerte … »: the photo
    goes with the alert), in any chat a command is; otherwise only in a private chat. It
    stays unreadable (``unsupported``) until the transport fetches it for staff."""
    caption = message.caption or ""
    command = caption if caption.startswith("/") and _wanted_text(
        caption, kind, bot_username) else ""
    if not command and kind is not ChatKind.PRIVATE:
        return None
    unsupported = PHOTO_KINDS[0] if message.photo else PHOTO_KINDS[1]
    return replace(_incoming(user, message.chat, kind), text=command, unsupported=unsupported)


def as_public(incoming: Incoming) -> Incoming | None:
    """A photo from a member of the public is not fetched, and its caption is not a
    command: unreadable content in a private chat, nothing in a group."""
    if incoming.unsupported not in PHOTO_KINDS or not incoming.text:
        return incoming
    return replace(incoming, text="") if incoming.chat_kind is ChatKind.PRIVATE else None


def _wanted_text(text: str, kind: ChatKind, bot_username: str) -> bool:
    addressee = command_addressee(text)
    if addressee is not None and addressee.lower() != bot_username.lower():
        return False
    if kind is ChatKind.GROUP:
        return text.startswith("/")
    return True


def command_addressee(text: str) -> str | None:
    """``"/aide@alerte_bot args"`` → ``"alerte_bot"``; None for text or an unaddressed command."""
    if not text.startswith("/"):
        return None
    head = text.split(maxsplit=1)[0] if text.strip() else ""
    _, at, name = head.partition("@")
    return name if at else None


def unsupported_kind(message: Message) -> str | None:
    for kind in UNSUPPORTED_KINDS:
        if getattr(message, kind, None):
            return kind
    return None
