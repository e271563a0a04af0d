"""Pre-flight check of Telegram: the token, the officers' chat, the webhook.

PTB's ``Bot`` is used directly (no ``Application``: nothing is received). Its
``initialize`` is the getMe call, as at the bot's start; its ``InvalidToken`` message
quotes the token, so no PTB message is printed unscrubbed (see ``check_report.scrub``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC
from typing import TypeVar

from telegram import (
    Bot,
    ChatFullInfo,
    ChatMember,
    ChatMemberAdministrator,
    ChatMemberRestricted,
    WebhookInfo,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.check_report import TIMEOUT, CheckFailed, Section
from bot.config import Config, ConfigError, TelegramConfig
from bot.transports.telegram import check_config

T = TypeVar("T")

NOT_MEMBER = "the bot is not a member (add it to the group)"
RESTRICTED = "the bot is restricted and may not send messages (lift the restriction)"


async def check_telegram(config: Config, found: Section, officers_elsewhere: list[str]) -> None:
    settings = config.telegram
    try:
        check_config(settings)  # what the transport refuses at start, before any request
    except ConfigError as error:
        found.problem(str(error))
    # httpx logs every request URL at INFO, and the URL carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    bot = _bot(settings)
    try:
        await _call(bot.initialize(), settings)  # getMe
        _report_bot(bot, found)
        await _check_officers_chat(bot, settings, found, officers_elsewhere)
        await _check_webhook(bot, settings, found)
    finally:
        await bot.shutdown()


def _bot(settings: TelegramConfig) -> Bot:
    def request() -> HTTPXRequest:
        return HTTPXRequest(connection_pool_size=2, connect_timeout=TIMEOUT,
                            read_timeout=TIMEOUT, write_timeout=TIMEOUT, pool_timeout=TIMEOUT)

    try:
        return Bot(settings.token, base_url=settings.base_url,
                   base_file_url=settings.base_file_url, request=request(),
                   get_updates_request=request())
    except InvalidToken:
        raise CheckFailed("telegram.token: not a bot token (BotFather, /token)") from None


async def _call(call: Awaitable[T], settings: TelegramConfig) -> T:
    """One Bot API call; what makes further calls pointless becomes ``CheckFailed``."""
    try:
        return await asyncio.wait_for(call, TIMEOUT)
    except InvalidToken:
        raise CheckFailed("Telegram refused the bot token; check TELEGRAM_BOT_TOKEN "
                          "(BotFather, /token)") from None
    except (TimeoutError, TimedOut):  # ours, or PTB's own read timeout
        raise CheckFailed(f"no answer from the Bot API at {settings.base_url} within "
                          f"{TIMEOUT:g} s") from None
    except (BadRequest, Forbidden, ChatMigrated):
        raise  # about one chat: the caller says which
    except NetworkError as error:
        raise CheckFailed(f"cannot reach the Bot API at {settings.base_url} "
                          f"({error.message})") from None
    except TelegramError as error:  # RetryAfter, Conflict…
        raise CheckFailed(f"the Bot API at {settings.base_url} answered: "
                          f"{error.message}") from None


def _report_bot(bot: Bot, found: Section) -> None:
    me = bot.bot
    found.ok(f"bot @{me.username} (id {me.id}) — token accepted")
    if me.can_join_groups is False:
        found.warning("the bot cannot be added to groups (BotFather: /setjoingroups → Enable); "
                      "the officers' group and the groups receiving alerts need it")


async def _check_officers_chat(bot: Bot, settings: TelegramConfig, found: Section,
                               officers_elsewhere: list[str]) -> None:
    chat_id = settings.officers_chat_id
    if chat_id is None:
        found.no_officers_channel("telegram.officers_chat_id", officers_elsewhere,
                                  "docs/telegram.md §3")
        return
    chat = await _officers_chat(bot, chat_id, settings, found)
    if chat is None:
        return
    described = f"officers' chat {chat_id} « {chat.title or chat.full_name or '?'} » ({chat.type})"
    if chat.type == ChatType.PRIVATE:
        found.warning(f"{described} is a private chat, not a group: only that person "
                      "sees the approval requests")
        return
    try:
        member = await _call(bot.get_chat_member(chat_id, bot.id), settings)
    except ChatMigrated as moved:  # Telegram's getChat may still describe the old group
        _migrated(chat_id, moved, found)
        return
    except (BadRequest, Forbidden):
        found.problem(f"{described}: {NOT_MEMBER}")
        return
    refusal = _posting_refusal(member, chat)
    if refusal:
        found.problem(f"{described}: {refusal}")
    else:
        found.ok(f"{described} — the bot may post")



async def _officers_chat(bot: Bot, chat_id: int, settings: TelegramConfig,
                         found: Section) -> ChatFullInfo | None:
    try:
        return await _call(bot.get_chat(chat_id), settings)
    except ChatMigrated as moved:
        _migrated(chat_id, moved, found)
    except Forbidden:
        found.problem(f"officers' chat {chat_id}: {NOT_MEMBER}")
    except BadRequest as error:
        found.problem(f"officers' chat {chat_id}: unknown to the bot ({error.message}); check "
                      "telegram.officers_chat_id (-100… for a supergroup) and that the bot "
                      "was added to the group")
    return None


def _migrated(chat_id: int, moved: ChatMigrated, found: Section) -> None:
    found.problem(f"officers' chat {chat_id} became supergroup {moved.new_chat_id}: set "
                  f"telegram.officers_chat_id to {moved.new_chat_id}")


def _posting_refusal(member: ChatMember, chat: ChatFullInfo) -> str:
    """Why the bot may not post in ``chat``, or "" if it may."""
    if member.status == ChatMemberStatus.BANNED:
        return "the bot was banned from the group (unban it, then add it)"
    if member.status == ChatMemberStatus.LEFT:
        return NOT_MEMBER
    if isinstance(member, ChatMemberRestricted):
        if not member.is_member:
            return NOT_MEMBER
        return "" if member.can_send_messages else RESTRICTED
    if chat.type == ChatType.CHANNEL:
        return _channel_refusal(member)
    permissions = chat.permissions
    if member.status == ChatMemberStatus.MEMBER and permissions is not None \
            and permissions.can_send_messages is False:
        return "members may not send messages in this group (group permissions)"
    return ""


def _channel_refusal(member: ChatMember) -> str:
    # In a channel only administrators with the right to post may write.
    if isinstance(member, ChatMemberAdministrator) and not member.can_post_messages:
        return "the bot is an administrator without the right to post messages"
    if member.status == ChatMemberStatus.MEMBER:
        return "the bot is a subscriber of this channel, not an administrator who may post"
    return ""


async def _check_webhook(bot: Bot, settings: TelegramConfig, found: Section) -> None:
    info = await _call(bot.get_webhook_info(), settings)
    pending = f"{info.pending_update_count} update(s) waiting"
    if settings.mode != "webhook":
        if info.url:
            found.warning(f"a webhook is set ({info.url}) but telegram.mode is polling: the bot "
                          "removes it at start; is another installation using this token?")
        return
    if not info.url:
        found.ok(f"no webhook registered yet; the bot registers {settings.webhook_url} at "
                 f"start ({pending})")
    elif info.url != settings.webhook_url:
        found.problem(f"Telegram sends updates to {info.url}, but telegram.webhook_url is "
                      f"{settings.webhook_url}; is another installation using this token? "
                      f"({pending})")
    else:
        found.ok(f"webhook {info.url} registered ({pending})")
    if info.last_error_message:
        found.warning(f"Telegram's last delivery to the webhook failed{_since(info)}: "
                      f"{info.last_error_message}")


def _since(info: WebhookInfo) -> str:
    when = info.last_error_date
    return "" if when is None else f" at {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
