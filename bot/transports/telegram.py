"""The Telegram transport, on python-telegram-bot 22 (PTB) running inside the bot's own loop.

PTB's ``Application`` is used only for what it does well: parsing updates, the HTTP
connection pool. It is started piecewise (``initialize``/``start``), never with
``run_polling``, which would take over the event loop and its signal handlers. Long polling
is the transport's own loop (``_poll_forever``): it confirms an update only once the core
handled it, where PTB's Updater confirms a batch as soon as it is queued. In webhook mode the
bot's own aiohttp server (``telegram_webhook``) receives the updates and answers Telegram
once each was handled. Every update goes through one handler that turns it into an
``Incoming`` (``telegram_updates``) and never lets an exception out.

Sending renders ``Outgoing`` (``telegram_render``) and translates PTB's errors into the typed
errors of ``bot.transports.base`` (``telegram_errors``). The transport never retries a whole
message itself: retries, pauses and blocked recipients are the dispatcher's business.
Set-up and behaviour for operators: docs/telegram.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot

from bot.config import ConfigError, TelegramConfig
from bot.domain import ChatRef, Choice, CommandMenu, Incoming, Outgoing, Tone
from bot.limits import (
    TELEGRAM_COMMAND_DESCRIPTION_CHARS,
    TELEGRAM_MAX_COMMANDS,
    TELEGRAM_TEXT_CHARS,
)
from bot.transports.base import (
    ChatMoved,
    DeliveryError,
    IncomingHandler,
    PermanentError,
    RateLimited,
    Transport,
    first_id,
    join_ids,
    split_ids,
)
from bot.transports.telegram_errors import (
    RecentSends,
    chat_in_logs,
    is_already_deleted,
    is_gone,
    is_not_modified,
    translate,
)
from bot.transports.telegram_files import send_file
from bot.transports.telegram_http import AiohttpRequest
from bot.transports.telegram_render import Part, keyboard, parts
from bot.transports.telegram_updates import ALLOWED_UPDATES, PLATFORM, to_incoming

if TYPE_CHECKING:  # imported in webhook mode only: polling needs no HTTP server (aiohttp.web)
    from bot.transports.telegram_webhook import WebhookServer

log = logging.getLogger(__name__)

TelegramApp = Application[ExtBot[None], ContextTypes.DEFAULT_TYPE, dict[Any, Any],
                          dict[Any, Any], dict[Any, Any], None]

# Concurrent requests: the dispatcher keeps up to 2 × in_flight (16 at 30 msg/s, 200 paid)
# sends open while people keep talking to the bot; connections are opened only when needed.
# Pinned rather than left to a library default; waiting for a free connection beats
# failing at once. bot.main sizes it from in_flight (2 × in_flight + 16, at least 128).
CONNECTION_POOL_SIZE = 128
POOL_TIMEOUT = 10.0  # seconds
# The later parts of a split message wait out a short flood limit instead of failing:
# failing would make the dispatcher resend the first part too.
CONTINUATION_ATTEMPTS = 3
CONTINUATION_MAX_WAIT = 30.0  # seconds
POLL_MAX_BACKOFF = 30.0  # seconds between getUpdates retries at most
REMEMBERED_KEYBOARDS = 256  # serialised keyboards kept (one per broadcast in progress)
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Telegram's default. It keeps each chat's updates in order whatever the number (one chat's
# updates travel one at a time), and the server answers once an update is handled.
WEBHOOK_MAX_CONNECTIONS = 40
LOOPBACK_NAMES = frozenset({"localhost"})


class TelegramTransport(Transport):
    platform = PLATFORM

    def __init__(self, config: TelegramConfig, connections: int = CONNECTION_POOL_SIZE) -> None:
        self.config = config
        self.connections = connections  # HTTP connections for everything but getUpdates
        self.username = ""  # learned from getMe at start
        # Follows an upgrade of the officers' group to a supergroup until the config is fixed.
        self.officers_chat_id = config.officers_chat_id
        # What the transport met, by kind (see telegram_errors._counter_name): for logs,
        # tests and the broadcast benchmarks.
        self.counters: Counter[str] = Counter()
        self._app: TelegramApp | None = None
        self._webhook: WebhookServer | None = None
        self._on_incoming: IncomingHandler | None = None
        self._recent = RecentSends()
        self._keyboards: dict[tuple[Choice, ...], str] = {}
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False  # stop() asked the polling loop to end
        self._handling = False  # the polling loop is handling an update

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, on_incoming: IncomingHandler) -> None:
        check_config(self.config)
        # httpx logs every request URL at INFO, and the URL carries the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._on_incoming = on_incoming
        app = self._build()
        await self._initialize(app)
        self._app = app
        try:
            await app.start()
            await self._receive(app)
        except BaseException:
            await self.stop()
            raise
        log.info("telegram: @%s receiving updates by %s", self.username, self.config.mode)

    def _build(self) -> TelegramApp:
        try:
            builder = (ApplicationBuilder().token(self.config.token)
                       .base_url(self.config.base_url).base_file_url(self.config.base_file_url)
                       # The bot's requests on aiohttp (telegram_http: ~10× httpx's
                       # throughput); getUpdates keeps PTB's own httpx request.
                       .request(AiohttpRequest(connection_pool_size=self.connections,
                                               pool_timeout=POOL_TIMEOUT))
                       .job_queue(None))  # the bot has its own scheduler
            app = builder.build()
        except InvalidToken as error:  # an empty or malformed token, refused before any request
            raise ConfigError(f"telegram.token: {error.message}") from None
        app.add_error_handler(self._on_error)
        return app

    async def _initialize(self, app: TelegramApp) -> None:
        """``initialize`` calls getMe: the first proof that the token and the URL work."""
        try:
            await self._get_me(app)
        except BaseException:
            # getMe failed after the HTTP sessions were opened: close them (PTB does not).
            await app.bot.shutdown()
            raise
        self.username = app.bot.username

    async def _get_me(self, app: TelegramApp) -> None:
        try:
            await app.initialize()
        except InvalidToken:
            raise ConfigError(
                "telegram.token: Telegram refused the bot token; check TELEGRAM_BOT_TOKEN "
                "(BotFather, /token)") from None
        except TelegramError as error:
            raise ConfigError(f"telegram.base_url: cannot reach the Bot API at "
                              f"{self.config.base_url} ({error.message})") from None

    async def _receive(self, app: TelegramApp) -> None:
        if self.config.mode == "webhook":
            await self._receive_by_webhook(app)
            return
        # Pending updates are kept: a person who wrote while the bot was down gets an answer.
        # deleteWebhook first (drop_pending_updates=False): a webhook left by an earlier
        # webhook deployment would otherwise make every getUpdates a 409.
        await app.bot.delete_webhook(drop_pending_updates=False)
        self._stopping = False
        self._poller = asyncio.create_task(self._poll_forever(app), name="telegram-poll")

    async def _poll_forever(self, app: TelegramApp) -> None:
        """Long polling, confirming an update (the next getUpdates offset) only once it
        was handled: PTB's Updater confirms a batch as soon as it is queued, so a crash
        would lose the updates still queued. A crash here replays the unconfirmed updates,
        which the core's inbox skips when they were handled already."""
        offset: int | None = None
        failures = 0
        while not self._stopping:
            try:
                updates = await app.bot.get_updates(offset=offset,
                                                    timeout=self.config.poll_timeout,
                                                    allowed_updates=ALLOWED_UPDATES)
            except Exception as error:  # the loop must outlive any failure but a stop
                _polling_failed(error)
                failures += 1
                await asyncio.sleep(min(2.0 ** (failures - 1), POLL_MAX_BACKOFF))
                continue
            failures = 0
            for update in updates:
                if self._stopping:
                    break
                self._handling = True
                try:
                    await self._handle_update(update)
                finally:
                    self._handling = False
                offset = update.update_id + 1

    async def _receive_by_webhook(self, app: TelegramApp) -> None:
        """Listen first, then call setWebhook: Telegram may push at once.

        Pending updates are kept, as in polling. The webhook is never deleted at stop: while
        the bot is down Telegram keeps the updates and pushes them when it is back.
        """
        from bot.transports.telegram_webhook import WebhookServer

        config = self.config
        server = WebhookServer(urlsplit(config.webhook_url).path, config.webhook_secret,
                               config.webhook_max_body_bytes, self._queue_update)
        try:
            await server.start(config.webhook_listen, config.webhook_port)
        except OSError as error:
            raise ConfigError(f"telegram.webhook_port: cannot listen on {config.webhook_listen}:"
                              f"{config.webhook_port} ({error.strerror or error})") from None
        self._webhook = server
        try:
            await app.bot.set_webhook(config.webhook_url, secret_token=config.webhook_secret,
                                      allowed_updates=ALLOWED_UPDATES,
                                      drop_pending_updates=False,
                                      max_connections=WEBHOOK_MAX_CONNECTIONS)
        except BadRequest as error:  # e.g. a host Telegram cannot resolve, a refused port
            raise ConfigError(f"telegram.webhook_url: Telegram refused it ({error.message})"
                              ) from None
        log.info("telegram: webhook server listening on %s:%d", config.webhook_listen,
                 server.port)

    async def _queue_update(self, data: dict[str, Any]) -> None:
        """A pushed update, handled before Telegram gets its 200: a crash before that
        makes Telegram push it again (the core's inbox skips it if it was handled)."""
        from bot.transports.telegram_webhook import UnreadableUpdate

        app = self._app
        if app is None:
            raise RuntimeError("telegram transport not started")
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise UnreadableUpdate("no numeric update_id")
        try:
            update = Update.de_json(data, app.bot)
        except Exception as error:  # whatever PTB makes of a malformed object
            raise UnreadableUpdate(f"update {update_id} unreadable ({type(error).__name__})"
                                   ) from None
        await self._handle_update(update)

    async def stop(self) -> None:
        app = self._app
        if app is None:
            return
        try:
            await self._stop_webhook()  # first: it lets the updates being handled finish
            await self._stop_polling()
            if app.running:
                await app.stop()
        finally:
            self._app = None
            await app.shutdown()

    async def _stop_polling(self) -> None:
        """An update being handled is finished (then confirmed at the next start)."""
        task, self._poller = self._poller, None
        if task is None:
            return
        self._stopping = True
        if not self._handling:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _stop_webhook(self) -> None:
        server, self._webhook = self._webhook, None
        if server is not None:
            await server.stop()

    @property
    def connected(self) -> bool:
        """Started, and receiving: its webhook server listening, or its polling loop
        running. The loop retries a failing getUpdates by itself: this says the loop runs,
        not that the last call succeeded."""
        app = self._app
        if app is None or not app.running:
            return False
        if self.config.mode == "webhook":
            return self._webhook is not None
        return self._poller is not None and not self._poller.done()

    # -- receiving ----------------------------------------------------------------------

    async def _handle_update(self, update: Update) -> None:
        """Every update; nothing raised may stop the polling loop."""
        try:
            if update.callback_query is not None:
                # Answered first and whatever happens next: otherwise the person's button
                # spins for seconds. The core's reply arrives as a message.
                await _answer(update.callback_query)
            incoming = to_incoming(update, self.username, self.officers_chat_id)
            if incoming is None:
                return
            self._notice_chat_event(incoming)
            if self._on_incoming is not None:
                await self._on_incoming(incoming)
        except Exception:
            log.exception("telegram: update %s could not be handled", update.update_id)

    def _notice_chat_event(self, incoming: Incoming) -> None:
        """Log what an operator needs to know: new groups' ids, the officers' group moving."""
        chat = incoming.chat.chat_id
        if incoming.moved_to is not None:
            self._follow_officers(chat, incoming.moved_to)
        if incoming.membership is not None and chat.startswith("-"):
            # At WARNING so that it shows in the default log: this is how an operator
            # learns the id of the group to put in telegram.officers_chat_id.
            log.warning("telegram: bot %s group %r (chat id %s)",
                        "added to" if incoming.membership == "joined" else "removed from",
                        incoming.chat_title, chat)

    def _follow_officers(self, old_chat_id: str, new_chat_id: str) -> None:
        """Approval requests follow an upgraded officers' group until the config says so."""
        if old_chat_id != str(self.officers_chat_id):
            return
        self.officers_chat_id = int(new_chat_id)
        log.error("telegram: the officers' group %s became supergroup %s; set "
                  "telegram.officers_chat_id to %s", old_chat_id, new_chat_id, new_chat_id)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: error while processing an update", exc_info=context.error)

    # -- sending ------------------------------------------------------------------------

    async def send(self, chat_id: str, message: Outgoing) -> str:
        if message.attachment is not None:
            return await self._send_with_file(chat_id, message)
        markup = self._keyboard_json(message.choices)  # PermanentError before any request
        chunks = parts(message)
        ids = [await self._send_part(chat_id, chunks[0], message, markup, first=True)]
        for chunk in chunks[1:]:
            ids.append(await self._send_continuation(chat_id, chunk, message))
        return join_ids([str(part) for part in ids])  # every part, stored by the outbox

    async def _send_part(self, chat_id: str, part: Part, message: Outgoing,
                         markup: str | None, first: bool) -> int:
        """One sendMessage, on the broadcast's hot path.

        Through ``Bot._post``, so PTB still applies its defaults, its request class and its
        error mapping; but not through ``Bot.send_message``, which builds a full ``Message``
        (user, chat, entities, keyboard objects) from the answer: only its id is needed, and
        that parsing was a fifth of the bot's CPU at 1,000 msg/s. ``markup`` is the keyboard
        already serialised (``_keyboard_json``).
        """
        data: dict[str, Any] = {
            "chat_id": _chat(chat_id), "text": part.text, "parse_mode": part.parse_mode,
            "reply_markup": markup,
            "disable_notification": True if message.tone is Tone.QUIET else None,
            "protect_content": True if message.tone is Tone.PROTECTED else None,
            "reply_parameters": _reply_parameters(message.reply_to) if first else None,
            "allow_paid_broadcast": True if self.config.paid_broadcast else None}
        try:
            sent = await self._bot()._post("sendMessage", data)
        except TelegramError as error:
            raise self._typed(error, chat_id) from error
        self._recent.record(chat_id)
        return int(sent["message_id"])

    def _keyboard_json(self, choices: tuple[Choice, ...]) -> str | None:
        """The inline keyboard as the JSON sendMessage takes (what PTB would encode), built
        once per set of choices: a broadcast gives every recipient the same buttons."""
        if not choices:
            return None
        encoded = self._keyboards.get(choices)
        if encoded is None:
            markup = keyboard(choices)  # raises PermanentError for an invalid keyboard
            encoded = None if markup is None else json.dumps(markup.to_dict())
            if encoded is not None:
                if len(self._keyboards) >= REMEMBERED_KEYBOARDS:
                    self._keyboards.clear()
                self._keyboards[choices] = encoded
        return encoded

    async def _send_continuation(self, chat_id: str, part: Part, message: Outgoing) -> int:
        for attempt in range(1, CONTINUATION_ATTEMPTS + 1):
            try:
                return await self._send_part(chat_id, part, message, None, first=False)
            except RateLimited as error:
                if attempt == CONTINUATION_ATTEMPTS or error.retry_after > CONTINUATION_MAX_WAIT:
                    raise
                await asyncio.sleep(error.retry_after)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _send_with_file(self, chat_id: str, message: Outgoing) -> str:
        try:
            sent, text_apart = await send_file(self._bot(), _chat(chat_id), message)
        except TelegramError as error:
            raise self._typed(error, chat_id) from error
        self._recent.record(chat_id)
        if not text_apart:
            return str(sent.message_id)
        text = await self.send(chat_id, replace(message, attachment=None))
        return join_ids([str(sent.message_id), text])  # a recall removes the text too

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        """Replace a message's text and keyboard (no choices: the keyboard goes away)."""
        markup = keyboard(message.choices)
        ids = _message_ids(message_id)
        chunks = _fit(parts(message), len(ids))
        for index, (part_id, part) in enumerate(zip(ids, chunks, strict=False)):
            await self._edit_part(chat_id, part_id, part, markup if index == 0 else None,
                                  continuation=index > 0)
        for surplus in ids[len(chunks):]:  # the new text needs fewer parts than the old one
            await self._delete_part(chat_id, surplus)

    async def _edit_part(self, chat_id: str, message_id: int, part: Part,
                         markup: InlineKeyboardMarkup | None, continuation: bool) -> None:
        try:
            await self._bot().edit_message_text(part.text, _chat(chat_id), message_id,
                                                parse_mode=part.parse_mode, reply_markup=markup)
        except TelegramError as error:
            if is_not_modified(error):
                return
            if continuation and is_gone(error):  # deleted by an earlier, shorter edit
                return
            raise self._typed(error, chat_id) from error
        self._recent.record(chat_id)  # edits count against the flood limits too

    async def _delete_part(self, chat_id: str, message_id: int) -> None:
        try:
            await self._bot().delete_message(_chat(chat_id), message_id)
        except TelegramError as error:  # a stale continuation is untidy, not an error
            log.warning("telegram: could not delete part %s in %s: %s", message_id,
                        chat_in_logs(chat_id), error)

    async def delete(self, chat_id: str, message_id: str) -> None:
        """Recall a message, every part of it if it was split."""
        for part_id in _message_ids(message_id):
            try:
                await self._bot().delete_message(_chat(chat_id), part_id)
            except TelegramError as error:
                if is_already_deleted(error):
                    continue  # the person deleted it already: the recall is achieved
                raise self._typed(error, chat_id) from error

    def _typed(self, error: TelegramError, chat_id: str) -> DeliveryError:
        typed = translate(error, chat_id, self._recent, self.counters)
        if isinstance(typed, ChatMoved):  # the upgrade happened while the bot was down
            self._follow_officers(chat_id, typed.new_chat_id)
        if isinstance(typed, RateLimited):
            log.info("telegram: 429 in %s, retry after %g s (%s)", chat_in_logs(chat_id),
                     typed.retry_after, "this chat" if typed.chat_only else "whole bot")
        return typed

    def _bot(self) -> ExtBot[None]:
        if self._app is None:
            raise RuntimeError("telegram transport not started")
        return self._app.bot

    def officers_channels(self) -> list[ChatRef]:
        if self.officers_chat_id is None:
            return []
        return [ChatRef(PLATFORM, str(self.officers_chat_id))]

    # -- command menus ------------------------------------------------------------------

    async def publish_commands(self, menus: list[CommandMenu]) -> None:
        """One setMyCommands per audience; a refused menu is logged, never fatal."""
        bot = self._bot()
        for menu in menus:
            scope = self._scope(menu.audience)
            if scope is None:
                continue
            try:
                await bot.set_my_commands(bot_commands(menu.commands), scope=scope)
            except TelegramError as error:
                audience = menu.audience if ":" not in menu.audience else "a person with a role"
                log.warning("telegram: command menu for %s refused: %s", audience, error)

    def _scope(self, audience: str) -> BotCommandScope | None:
        if audience == "everyone":
            return BotCommandScopeAllPrivateChats()
        if audience == "officers":
            if self.officers_chat_id is None:
                return None
            return BotCommandScopeChat(self.officers_chat_id)
        platform, _, user_id = audience.partition(":")
        if platform != PLATFORM or not (user_id.isascii() and user_id.isdigit()):
            return None  # another platform's people, or not a Telegram user id
        return BotCommandScopeChat(int(user_id))  # a private chat's id is the user's id


def bot_commands(commands: Sequence[tuple[str, str]]) -> list[BotCommand]:
    """Commands as Telegram accepts them: valid names, 1–256 char descriptions, at most 100."""
    accepted: dict[str, BotCommand] = {}
    for name, description in commands:
        name = name.lower()
        if not COMMAND_NAME.fullmatch(name):
            log.warning("telegram: command /%s cannot appear in Telegram's menu", name)
            continue
        text = " ".join(description.split())[:TELEGRAM_COMMAND_DESCRIPTION_CHARS] or name
        accepted.setdefault(name, BotCommand(name, text))
    return list(accepted.values())[:TELEGRAM_MAX_COMMANDS]


def check_config(config: TelegramConfig) -> None:
    """Refuse a configuration that cannot work before touching the network."""
    if config.mode == "polling":
        return
    if config.mode != "webhook":
        raise ConfigError(f"telegram.mode: expected polling or webhook, got {config.mode!r}")
    if not _webhook_url_ok(config.webhook_url):
        raise ConfigError("telegram.webhook_url: an https:// address Telegram can reach "
                          "(http:// only on a loopback host, for a local Bot API server)")
    if not WEBHOOK_SECRET.fullmatch(config.webhook_secret):
        raise ConfigError("telegram.webhook_secret: 1 to 256 characters among A-Z a-z 0-9 _ - "
                          "(set TELEGRAM_WEBHOOK_SECRET)")
    if not 1 <= config.webhook_port <= 65535:
        raise ConfigError(f"telegram.webhook_port: expected 1 to 65535, got "
                          f"{config.webhook_port}")
    if config.webhook_max_body_bytes < 1:
        raise ConfigError("telegram.webhook_max_body_bytes: expected at least 1")


def _webhook_url_ok(url: str) -> bool:
    """https with a host; plain http only to a loopback host (local Bot API server, tests)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [ in an IPv6 address
        return False
    if not host:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(host)


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return False


def _fit(chunks: list[Part], available: int) -> list[Part]:
    """At most ``available`` parts: what does not fit in the last one is cut, visibly."""
    if len(chunks) <= available:
        return chunks
    tail = "\n\n".join(part.text for part in chunks[available - 1:])
    return [*chunks[:available - 1], Part(tail[:TELEGRAM_TEXT_CHARS - 1].rstrip() + "…", None)]


async def _answer(query: CallbackQuery) -> None:
    try:
        await query.answer()
    except TelegramError as error:  # too old (bot was down) or already answered
        log.warning("telegram: could not answer a button press: %s", error)


def _polling_failed(error: Exception) -> None:
    """One line per failure of the Bot API (the loop retries); a traceback for the rest."""
    if isinstance(error, TelegramError):
        log.warning("telegram: getUpdates failed (%s); retrying", error)
    else:
        log.error("telegram: getUpdates failed; retrying", exc_info=error)


def _chat(chat_id: str) -> int | str:
    """Numeric ids as numbers; ``@channelname`` as is."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def _message_ids(message_id: str) -> list[int]:
    """Every part of a copy (``join_ids``)."""
    try:
        ids = [int(part) for part in split_ids(message_id)]
    except ValueError:
        ids = []
    if not ids:
        raise PermanentError(f"not a Telegram message id: {message_id!r}")
    return ids


def _reply_parameters(message_id: str | None) -> ReplyParameters | None:
    reply_to = first_id(message_id)  # the first part of a copy
    if reply_to is None or not (reply_to.isascii() and reply_to.isdigit()):
        return None
    # A deleted original must not make the reply fail.
    return ReplyParameters(int(reply_to), allow_sending_without_reply=True)
