"""The Telegram transport, on python-telegram-bot 22 (PTB) running inside the bot's own loop.

PTB's ``Application`` is used only for what it does well: parsing updates, the HTTP
connection pool. It is started piecewise (``initialize``/``start``), never with
``run_polling``, which would take over the event loop and its signal handlers.

Receiving: every update becomes an ``Incoming`` (``telegram_updates``) and goes to the
lanes (``bot.lanes``): handled concurrently across chats, in order within a chat, staff's
first. Long polling is the transport's own loop (``_poll_forever``), on aiohttp like every
other request, up to 100 updates per call. Telegram forgets every update below the offset
of the next getUpdates, so that offset only passes updates that are handled or written to
the spool (``transport_state``, one row per poll): the loop can read past a backlog (and
see an officer's update behind 2,000 people's) without a crash losing anything. At start
the spool's updates are handled first; those handled already are skipped by the core's
inbox. PTB's Updater, by contrast, confirms a batch as soon as it is queued. In webhook
mode the bot's own aiohttp server (``telegram_webhook``) receives the updates and answers
Telegram once each was handled.

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot

from bot.buttons import ConversationButton, decode
from bot.config import ConfigError, TelegramConfig
from bot.domain import (
    Attachment,
    ChatKind,
    ChatRef,
    Choice,
    CommandMenu,
    FileProblem,
    Incoming,
    Outgoing,
    Tone,
)
from bot.lanes import Lane, Lanes, StaffTest, lane_of, nobody
from bot.limits import (
    TELEGRAM_COMMAND_DESCRIPTION_CHARS,
    TELEGRAM_MAX_COMMANDS,
    TELEGRAM_TEXT_CHARS,
)
from bot.lru import Lru
from bot.storage.transport_state import TransportState
from bot.transports.base import (
    ChatMoved,
    DeliveryError,
    IncomingHandler,
    PermanentError,
    RateLimited,
    StartLink,
    Transport,
    file_part,
    first_id,
    join_ids,
    split_ids,
    text_parts,
    unmarked,
)
from bot.transports.telegram_errors import (
    RecentSends,
    chat_in_logs,
    is_already_deleted,
    is_gone,
    is_not_modified,
    translate,
)
from bot.transports.telegram_files import (
    FileRef,
    caption_of,
    edited_caption,
    fetch,
    is_photo,
    largest_file_id,
    photo_in,
    send_document,
    upload,
)
from bot.transports.telegram_http import AiohttpRequest
from bot.transports.telegram_render import Part, keyboard, parts
from bot.transports.telegram_updates import ALLOWED_UPDATES, PLATFORM, as_public, to_incoming
from bot.transports.uploads import Uploads

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
POLL_LIMIT = 100  # updates per getUpdates: Telegram's maximum
# How much longer than the long poll's wait a getUpdates may take before it counts as lost.
POLL_READ_MARGIN = 10.0  # seconds
SPOOL = "spool:"  # transport_state keys of updates confirmed to Telegram before handling
# Without a backlog, updates in hand are waited for this long before the next getUpdates
# rather than spooled: a spool write and its deletion per poll cost more than they save.
SPOOL_AFTER = 0.1  # seconds
REMEMBERED_KEYBOARDS = 256  # serialised keyboards kept (one per broadcast in progress)
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Telegram's default. It keeps each chat's updates in order whatever the number (one chat's
# updates travel one at a time), and the server answers once an update is handled.
WEBHOOK_MAX_CONNECTIONS = 40
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(slots=True)
class _Taken:
    """An update received; ``done`` is its handling (None: nothing to handle)."""

    update_id: int
    data: dict[str, Any]
    done: asyncio.Future[None] | None


class TelegramTransport(Transport):
    platform = PLATFORM

    def __init__(self, config: TelegramConfig, connections: int = CONNECTION_POOL_SIZE,
                 state: TransportState | None = None, lanes: Lanes | None = None,
                 more_officers: Sequence[int] = ()) -> None:
        self.config = config
        # The organisations' officers' groups (bot/organisations.py), beside officers_chat_id.
        self.more_officers = [chat for chat in more_officers if chat != config.officers_chat_id]
        self.connections = connections  # HTTP connections for everything but getUpdates
        # The spool; without it (tests, tools) the loop waits for every update it took to
        # be handled before the next getUpdates confirms them.
        self.state = state
        self.lanes = lanes or Lanes(name="telegram")
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
        self._keyboards: Lru[tuple[Choice, ...], str] = Lru(REMEMBERED_KEYBOARDS)
        self.uploads = Uploads()  # an alert's photo: uploaded once, then its file_id
        self._staff: StaffTest = nobody
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False  # stop() asked the polling loop to end
        self._offset: int | None = None  # the next getUpdates' offset
        self._seen = 0  # the highest update id taken, so that none is taken twice
        self._unspooled: list[_Taken] = []  # taken since the last spooling
        self._backlog = False  # the last getUpdates was full: more waits at Telegram
        self._janitors: set[asyncio.Task[None]] = set()  # spool rows waiting to be deleted

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, on_incoming: IncomingHandler, staff: StaffTest = nobody) -> None:
        check_config(self.config)
        # httpx logs every request URL at INFO, and the URL carries the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._on_incoming = on_incoming
        self._staff = staff
        self.lanes.reopen()
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
                       # throughput), getUpdates too, on a connection of its own.
                       .request(AiohttpRequest(connection_pool_size=self.connections,
                                               pool_timeout=POOL_TIMEOUT))
                       .get_updates_request(AiohttpRequest(connection_pool_size=1,
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
        """Long polling into the lanes. Before each getUpdates (whose offset confirms every
        update taken so far), the updates not handled yet are spooled; without a spool,
        the loop waits for them instead. A crash thus replays what was not handled (from
        Telegram or the spool), and the core's inbox skips what was."""
        self._offset, self._seen, self._unspooled = None, 0, []
        await self._resume_spool(app)
        failures = 0
        while not self._stopping:
            await self.lanes.room(POLL_LIMIT)  # a backlog waits at Telegram, not in memory
            try:
                await self._secure_taken()
                batch = await self._get_updates(app, max(min(POLL_LIMIT, self.lanes.free()), 1))
            except Exception as error:  # the loop must outlive any failure but a stop
                _polling_failed(error)
                failures += 1
                await asyncio.sleep(min(2.0 ** (failures - 1), POLL_MAX_BACKOFF))
                continue
            failures = 0
            self._backlog = len(batch) >= POLL_LIMIT
            for data in batch:
                taken = self._take(app, data)
                if taken.done is not None:
                    self._unspooled.append(taken)
                self._offset = max(self._offset or 0, taken.update_id + 1)

    async def _get_updates(self, app: TelegramApp, limit: int) -> list[dict[str, Any]]:
        """The raw updates (parsed one by one in ``_take``: one malformed update must not
        stop the others, as PTB's ``get_updates`` would)."""
        data = {"offset": self._offset, "limit": limit, "timeout": self.config.poll_timeout,
                "allowed_updates": list(ALLOWED_UPDATES)}
        result = await app.bot._post("getUpdates", data,
                                     read_timeout=self.config.poll_timeout + POLL_READ_MARGIN)
        if not isinstance(result, list):
            raise TelegramError(f"getUpdates answered {type(result).__name__}, not a list")
        return [item for item in result if isinstance(item, dict)]

    async def _secure_taken(self) -> None:
        """Make the next getUpdates safe: every update it will confirm is handled, or in
        the spool (one row for all of them, deleted once they are all handled).

        With a backlog at Telegram the updates in hand are spooled at once, so that the
        loop reads on (an officer's update may be behind); otherwise they are given
        ``SPOOL_AFTER`` to be handled first (without a spool, all the time they need)."""
        waiting = [taken for taken in self._unspooled
                   if taken.done is not None and not taken.done.done()]
        if waiting and not (self._backlog and self.state is not None):
            handling = [taken.done for taken in waiting if taken.done is not None]
            await asyncio.wait(handling, timeout=None if self.state is None else SPOOL_AFTER)
            waiting = [taken for taken in waiting
                       if taken.done is not None and not taken.done.done()]
        if waiting and self.state is not None:
            key = f"{SPOOL}{waiting[0].update_id:020d}"
            await self.state.set(key, json.dumps([taken.data for taken in waiting]))
            self._unspool_when_handled(key, waiting)
        self._unspooled = []

    async def _resume_spool(self, app: TelegramApp) -> None:
        """The updates a previous run confirmed to Telegram but had not handled, first."""
        if self.state is None:
            return
        for key, value in await self.state.starting_with(SPOOL):
            try:
                batch = json.loads(value)
            except ValueError:
                log.error("telegram: spooled updates %s unreadable; dropped", key)
                batch = []
            taken = [self._take(app, data) for data in batch if isinstance(data, dict)]
            self._unspool_when_handled(key, taken)
        if self._seen:
            log.info("telegram: %d spooled updates resumed", self.lanes.pending)

    def _unspool_when_handled(self, key: str, taken: list[_Taken]) -> None:
        task = asyncio.create_task(self._unspool(key, [t.done for t in taken if t.done]),
                                   name="telegram-unspool")
        self._janitors.add(task)
        task.add_done_callback(self._janitors.discard)

    async def _unspool(self, key: str, handling: list[asyncio.Future[None]]) -> None:
        if handling:
            await asyncio.wait(handling)
        if any(done.cancelled() for done in handling):
            return  # dropped by a stop: the next start handles them
        assert self.state is not None
        try:
            await self.state.delete(key)
        except Exception:  # left in the spool: replayed and skipped at the next start
            log.exception("telegram: could not delete spooled updates %s", key)

    def _take(self, app: TelegramApp, data: dict[str, Any]) -> _Taken:
        """Read one raw update and put it in its chat's lane."""
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("telegram: an update without a numeric update_id was ignored")
            return _Taken(self._seen, data, None)
        if update_id <= self._seen:  # spooled by the previous run, and sent again
            return _Taken(update_id, data, None)
        self._seen = update_id
        try:
            update = Update.de_json(data, app.bot)
        except Exception as error:  # whatever PTB makes of a malformed object
            log.warning("telegram: update %d unreadable (%s); ignored", update_id,
                        type(error).__name__)
            return _Taken(update_id, data, None)
        done = self._put(update)
        return _Taken(update_id, data, done)

    def _put(self, update: Update) -> asyncio.Future[None] | None:
        """Into the lanes: the update's chat is its key, and staff go first."""
        incoming = self._incoming(update)
        # Only ids are kept while the update waits, not PTB's objects: a backlog of
        # thousands is held in memory.
        update_id = update.update_id
        query = None if update.callback_query is None else update.callback_query.id
        lane = Lane.PUBLIC if incoming is None else lane_of(self._staff, incoming.sender,
                                                            incoming.chat)
        if incoming is not None and lane is Lane.PUBLIC:
            incoming = as_public(incoming)
        if incoming is not None:
            photo = self._photo_to_fetch(update, incoming, lane)
            taken = incoming
            return self.lanes.put(incoming.chat, lane,
                                  lambda: self._handle(update_id, taken, query, photo))
        if query is not None:  # a press the core ignores still stops spinning
            return self.lanes.put(("answer", update_id), Lane.PUBLIC,
                                  lambda: self._answer(query))
        return None

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
        await self.lanes.room()  # Telegram's connections wait while the lanes are full
        done = self._put(update)
        if done is not None:
            await done  # cancelled by a stop: no 200, Telegram pushes it again

    async def stop(self) -> None:
        app = self._app
        if app is None:
            return
        try:
            await self._stop_polling()
            # The updates being handled finish; those waiting are dropped (Telegram or the
            # spool has them for the next start), which also ends the webhook's requests.
            await self.lanes.close()
            if self._janitors:
                await asyncio.wait(set(self._janitors))
            await self._stop_webhook()
            if app.running:
                await app.stop()
        finally:
            self._app = None
            await app.shutdown()

    async def _stop_polling(self) -> None:
        """No further getUpdates: one in flight is cancelled (what it would have brought
        stays unconfirmed at Telegram)."""
        task, self._poller = self._poller, None
        if task is None:
            return
        self._stopping = True
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

    def _incoming(self, update: Update) -> Incoming | None:
        """The core's view of an update, taken in the order Telegram sent them (an
        officers' group that moved is followed before the next update is read)."""
        try:
            incoming = to_incoming(update, self.username, self._officers_ids())
            if incoming is not None:
                self._notice_chat_event(incoming)
            return incoming
        except Exception:
            log.exception("telegram: update %s could not be read", update.update_id)
            return None

    @staticmethod
    def _photo_to_fetch(update: Update, incoming: Incoming, lane: Lane) -> FileRef | None:
        """A photo is fetched for staff only (an operator's, for an alert: a member of the
        public's photo is never downloaded), in their private chat or with a command."""
        message = update.message
        if message is None or lane is not Lane.STAFF:
            return None
        if incoming.chat_kind is not ChatKind.PRIVATE and not incoming.text:
            return None
        return photo_in(message)

    async def _handle(self, update_id: int, incoming: Incoming, query: str | None,
                      photo: FileRef | None = None) -> None:
        """One update, in its lane; nothing raised may stop the lanes."""
        # The button stops spinning at once, whatever happens next; the core's reply
        # arrives as a message.
        answering = None if query is None else asyncio.create_task(self._answer(query))
        try:
            if photo is not None:
                incoming = await self._with_photo(incoming, photo)
            if self._on_incoming is not None:
                await self._on_incoming(incoming)
        except Exception:
            log.exception("telegram: update %s could not be handled", update_id)
        finally:
            if answering is not None:
                await answering

    async def _with_photo(self, incoming: Incoming, photo: FileRef) -> Incoming:
        fetched = await fetch(self._bot(), photo)
        if isinstance(fetched, FileProblem):
            log.warning("telegram: a photo could not be fetched (%s)", fetched.value)
            return replace(incoming, file_problem=fetched, unsupported=None)
        return replace(incoming, attachment=fetched, unsupported=None)

    async def _answer(self, query_id: str) -> None:
        try:
            await self._bot().answer_callback_query(query_id)
        except TelegramError as error:  # too old (bot was down) or already answered
            log.warning("telegram: could not answer a button press: %s", error)
        except RuntimeError:  # stopped meanwhile
            pass

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
        attachment = message.attachment
        if attachment is not None:
            if is_photo(attachment):
                return await self._send_photo(chat_id, message, attachment)
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
        once per set of choices: a broadcast gives every recipient the same buttons.

        A conversation's buttons carry the step's fresh nonce: such a keyboard is never
        shown twice, so it is built and not remembered (it would only push out those that
        are reused)."""
        if not choices:
            return None
        encoded = self._keyboards.get(choices)
        if encoded is None:
            markup = keyboard(choices)  # raises PermanentError for an invalid keyboard
            encoded = None if markup is None else json.dumps(markup.to_dict())
            if encoded is not None and not _single_use(choices):
                self._keyboards.put(choices, encoded)
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

    async def _send_photo(self, chat_id: str, message: Outgoing,
                          attachment: Attachment) -> str:
        """The photo (its caption the text, when it fits), then the text apart if not; the
        first chat gets the upload, the others its file_id (``Uploads``)."""
        caption = caption_of(message)
        data: dict[str, Any] = {
            "chat_id": _chat(chat_id),
            "caption": None if caption is None else caption.text,
            "parse_mode": None if caption is None else caption.parse_mode,
            "reply_markup": None if caption is None else self._keyboard_json(message.choices),
            "disable_notification": True if message.tone is Tone.QUIET else None,
            "protect_content": True if message.tone is Tone.PROTECTED else None,
            "reply_parameters": _reply_parameters(message.reply_to),
            "allow_paid_broadcast": True if self.config.paid_broadcast else None}

        async def by_reference(file_id: str) -> int:
            return int((await self._post_photo(chat_id, {**data, "photo": file_id}))[
                "message_id"])

        async def by_upload() -> tuple[int, str]:
            sent = await self._post_photo(chat_id, {**data, "photo": upload(attachment)})
            return int(sent["message_id"]), largest_file_id(sent)

        photo_id = await self.uploads.send(attachment.digest, by_reference, by_upload)
        if caption is not None:
            return file_part(str(photo_id))
        try:
            text = await self.send(chat_id, replace(message, attachment=None, reply_to=None))
        except DeliveryError:
            # Sent again whole, later: the photo must not arrive twice.
            await self._delete_part(chat_id, photo_id)
            raise
        return join_ids([file_part(str(photo_id)), text])  # a recall removes the text too

    async def _post_photo(self, chat_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """sendPhoto through ``Bot._post``, as sendMessage (only the answer's ids are read)."""
        try:
            sent = await self._bot()._post("sendPhoto", data)
        except TelegramError as error:
            raise self._typed(error, chat_id) from error
        self._recent.record(chat_id)
        if not isinstance(sent, dict):
            raise PermanentError(f"sendPhoto answered {type(sent).__name__}")
        return sent

    async def _send_with_file(self, chat_id: str, message: Outgoing) -> str:
        try:
            sent, text_apart = await send_document(self._bot(), _chat(chat_id), message)
        except TelegramError as error:
            raise self._typed(error, chat_id) from error
        self._recent.record(chat_id)
        document = file_part(str(sent.message_id))
        if not text_apart:
            return document
        text = await self.send(chat_id, replace(message, attachment=None))
        return join_ids([document, text])  # a recall removes the text too

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        """Replace a message's text and keyboard (no choices: the keyboard goes away); a
        photo whose caption is the text gets the new caption, a photo apart stays."""
        markup = keyboard(message.choices)
        if not text_parts(message_id):
            await self._edit_caption(chat_id, _message_ids(message_id)[0], message, markup)
            return
        ids = _message_ids(join_ids(text_parts(message_id)))
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

    async def _edit_caption(self, chat_id: str, message_id: int, message: Outgoing,
                            markup: InlineKeyboardMarkup | None) -> None:
        caption = edited_caption(message)
        try:
            await self._bot().edit_message_caption(_chat(chat_id), message_id,
                                                   caption=caption.text,
                                                   parse_mode=caption.parse_mode,
                                                   reply_markup=markup)
        except TelegramError as error:
            if is_not_modified(error):
                return
            raise self._typed(error, chat_id) from error
        self._recent.record(chat_id)

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

    def start_link(self, code: str) -> StartLink | None:
        """The deep link ``https://t.me/<bot>?start=<code>``: Telegram opens the bot and,
        at « Démarrer », sends ``/start <code>`` (code: at most 64 of A-Za-z0-9_-)."""
        if not self.username:
            return None
        return StartLink(self.platform, f"https://t.me/{self.username}?start={code}", None)

    def _officers_ids(self) -> frozenset[int]:
        main = () if self.officers_chat_id is None else (self.officers_chat_id,)
        return frozenset((*main, *self.more_officers))

    def officers_channels(self) -> list[ChatRef]:
        main = [] if self.officers_chat_id is None else [self.officers_chat_id]
        return [ChatRef(PLATFORM, str(chat)) for chat in (*main, *self.more_officers)]

    # -- command menus ------------------------------------------------------------------

    async def publish_commands(self, menus: list[CommandMenu]) -> None:
        """One setMyCommands per audience; a refused menu is logged, never fatal."""
        bot = self._bot()
        for menu in menus:
            for scope in self._scopes(menu.audience):
                try:
                    await bot.set_my_commands(bot_commands(menu.commands), scope=scope)
                except TelegramError as error:
                    audience = (menu.audience if ":" not in menu.audience
                                else "a person with a role")
                    log.warning("telegram: command menu for %s refused: %s", audience, error)

    def _scopes(self, audience: str) -> list[BotCommandScope]:
        if audience == "everyone":
            return [BotCommandScopeAllPrivateChats()]
        if audience == "officers":  # every organisation's group (issue 16), not only the first
            return [BotCommandScopeChat(chat) for chat in sorted(self._officers_ids())]
        platform, _, user_id = audience.partition(":")
        if platform != PLATFORM or not (user_id.isascii() and user_id.isdigit()):
            return []  # another platform's people, or not a Telegram user id
        return [BotCommandScopeChat(int(user_id))]  # a private chat's id is the user's id


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



def _polling_failed(error: Exception) -> None:
    """One line per failure of the Bot API (the loop retries); a traceback for the rest."""
    if isinstance(error, TelegramError):
        log.warning("telegram: getUpdates failed (%s); retrying", error)
    else:
        log.error("telegram: getUpdates failed; retrying", exc_info=error)


def _single_use(choices: tuple[Choice, ...]) -> bool:
    """Whether the keyboard holds a conversation's buttons (valid with one nonce only)."""
    return any(isinstance(decode(choice.data), ConversationButton) for choice in choices)


def _chat(chat_id: str) -> int | str:
    """Numeric ids as numbers; ``@channelname`` as is."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def _message_ids(message_id: str) -> list[int]:
    """Every part of a copy (``join_ids``), its file's too: Telegram's message ids."""
    try:
        ids = [int(unmarked(part)) for part in split_ids(message_id)]
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
