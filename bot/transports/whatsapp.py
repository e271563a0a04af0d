"""The WhatsApp transport, on the Business Cloud API through pywa's async client.

pywa (``pywa_async.WhatsApp``) does the Graph API's requests, authentication and typed
errors; the bot sends through its low-level ``api.send_message`` with the payloads of
``whatsapp_render``, so every limit is checked here, once. pywa sets its httpx client's
``base_url`` to graph.facebook.com itself: to reach ``whatsapp.base_url`` (the test double)
the client it gets has a transport that rewrites the host (``_Rebased``). Webhooks come to
the bot's own aiohttp server (``whatsapp_webhook``): pywa's needs Starlette or Flask.

WhatsApp's rules, and what the transport does about them:

* **The 24-hour window.** Free text (and buttons, lists) only within 24 hours of the
  person's last message; outside it, only a pre-approved template. The transport keeps
  each person's last message (``whatsapp_contacts``) and sends an alert's copy outside
  the window as the template, its parameters the copy's ``Summary`` (headline, place,
  text). A message without one (an answer, a prompt) cannot go: ``WindowClosed``. If
  Meta says 131047 anyway (our clock, its clock), the copy is sent again as the template:
  at once when the API refuses it, or — when the refusal comes later in a status webhook —
  by putting its outbox row back to pending.
* **No editing, no deleting** (``capabilities``): the dispatcher sends a follow-up quoting
  the original instead, and the report says so.
* **Throughput**: 80 msg/s per number by default, through the shared pacer
  (``rate_limits.whatsapp``); 130429, 131056, 131048… become ``RateLimited``
  (``whatsapp_errors``). 131026 makes the person unreachable until they write again.
* **Statuses** (sent, delivered, read, failed) and whether each message is billed are
  recorded against its wamid, the id the outbox row keeps; a webhook delivered twice is
  handled once.

Set-up and behaviour for operators: docs/whatsapp.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pywa.errors import WhatsAppError
from pywa_async.client import WhatsApp

from bot.clock import Clock, parse_stamp
from bot.config import ConfigError, WhatsAppConfig
from bot.domain import ChatKind, ChatRef, Identity, Incoming, Outgoing
from bot.lanes import Lanes, StaffTest, lane_of, nobody
from bot.lru import Lru
from bot.storage.whatsapp import WINDOW, Status, WhatsAppStore
from bot.transports.base import (
    Capabilities,
    IncomingHandler,
    PermanentError,
    StartLink,
    TransientError,
    Transport,
    Unreachable,
    first_id,
    join_ids,
)
from bot.transports.whatsapp_errors import (
    AUTH,
    RE_ENGAGEMENT,
    UNDELIVERABLE,
    WindowClosed,
    network,
    translate,
)
from bot.transports.whatsapp_render import Message, free_form, template
from bot.transports.whatsapp_updates import PLATFORM, NotAnUpdate, Parsed, parse
from bot.transports.whatsapp_webhook import Unreadable, WhatsAppWebhook

log = logging.getLogger(__name__)

# The window is taken to close this much early: our clock and Meta's may differ, and a
# message in flight at the last second would come back 131047.
WINDOW_MARGIN = timedelta(minutes=5)
CONNECTIONS = 64  # the dispatcher keeps 2 × in_flight (16 at 80 msg/s) open, and replies
REQUEST_TIMEOUT = 15.0  # seconds
REMEMBERED_CONTACTS = 100_000  # windows and marks kept in memory (a miss reads the database)
REMEMBERED_WEBHOOKS = 4096  # bodies' digests: a redelivery is skipped without a query
PURGE_EVERY = 3600.0  # seconds between purges of what WhatsApp's rules no longer need


@dataclass(frozen=True, slots=True)
class Labels:
    """The few words the transport itself shows (from the catalogue, bot/main.py)."""

    list_button: str = "Choisir"


@dataclass(slots=True)
class _Contact:
    last_inbound: datetime | None
    unreachable: bool


class _Rebased(httpx.AsyncHTTPTransport):
    """Sends pywa's requests (to graph.facebook.com) to ``base_url`` instead: the test
    double, or a proxy. The path (``/v23.0/<phone id>/messages``) is kept, after the base
    URL's own path if it has one."""

    def __init__(self, base_url: str, connections: int) -> None:
        super().__init__(limits=httpx.Limits(max_connections=connections,
                                             max_keepalive_connections=connections))
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"whatsapp.base_url: an http(s) address, got {base_url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self._scheme, host=self._host,
                                            port=self._port,
                                            path=self._prefix + request.url.path)
        return await super().handle_async_request(request)


class WhatsAppTransport(Transport):
    platform = PLATFORM
    capabilities = Capabilities(edit=False, delete=False)

    def __init__(self, config: WhatsAppConfig, store: WhatsAppStore, clock: Clock | None = None,
                 lanes: Lanes | None = None, labels: Labels | None = None,
                 connections: int = CONNECTIONS, message_days: int = 30,
                 unreachable_days: int = 30) -> None:
        self.config = config
        self.store = store
        self.clock = clock or Clock()
        self.lanes = lanes or Lanes(name="whatsapp")
        self.labels = labels or Labels()
        self.connections = connections
        self.message_days = message_days
        self.unreachable_days = unreachable_days
        self.counters: Counter[str] = Counter()  # errors, templates, signals: logs and tests
        self.webhook_port = 0  # bound at start (tests listen on port 0)
        self._client: httpx.AsyncClient | None = None
        self._api: WhatsApp | None = None
        self._webhook: WhatsAppWebhook | None = None
        self._on_incoming: IncomingHandler | None = None
        self._staff: StaffTest = nobody
        self._auth_failed = False
        self._contacts: Lru[str, _Contact] = Lru(REMEMBERED_CONTACTS)
        self._digests: Lru[str, bool] = Lru(REMEMBERED_WEBHOOKS)
        self._janitor: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, on_incoming: IncomingHandler, staff: StaffTest = nobody) -> None:
        config = self.config
        self._on_incoming, self._staff = on_incoming, staff
        self.lanes.reopen()
        # httpx logs every request URL at INFO; the access token travels in a header only,
        # but the URLs name the phone number id and the logs need none of it.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._client = httpx.AsyncClient(transport=_Rebased(config.base_url, self.connections),
                                         timeout=REQUEST_TIMEOUT)
        self._api = WhatsApp(phone_id=config.phone_number_id, token=config.access_token,
                             session=self._client, api_version=config.api_version)
        host, port = _address(config.webhook_listen)
        webhook = WhatsAppWebhook(config.webhook_path, config.app_secret, config.verify_token,
                                  self._on_webhook)
        try:
            await webhook.start(host, port)
        except OSError as error:
            await self.stop()
            raise ConfigError(f"whatsapp.webhook_listen: cannot listen on "
                              f"{config.webhook_listen} ({error.strerror})") from None
        self._webhook, self.webhook_port = webhook, webhook.port
        self._auth_failed = False
        if config.officers_chat:
            log.warning("whatsapp: officers_chat is set; officers should use Telegram or "
                        "Matrix (WhatsApp cannot edit a request nor write after 24 hours)")
        self._janitor = asyncio.create_task(self._purge_forever(), name="whatsapp-purge")
        log.info("whatsapp: webhook on %s%s", config.webhook_listen, config.webhook_path)

    async def stop(self) -> None:
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
            self._janitor = None
        webhook, self._webhook = self._webhook, None
        if webhook is not None:
            await webhook.stop()
        await self.lanes.close()
        client, self._client, self._api = self._client, None, None
        if client is not None:
            await client.aclose()
        self._on_incoming = None

    @property
    def connected(self) -> bool:
        return self._api is not None and self._webhook is not None and not self._auth_failed

    async def _purge_forever(self) -> None:
        while True:
            try:
                await self.store.purge(self.clock.now(), self.message_days,
                                       self.unreachable_days)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("whatsapp: purge failed")
            await asyncio.sleep(PURGE_EVERY)

    # -- sending ------------------------------------------------------------------------

    async def send(self, chat_id: str, message: Outgoing) -> str:
        contact = await self._contact(chat_id)
        if contact.unreachable:
            raise Unreachable("whatsapp: unreachable until they write again (131026)")
        if message.attachment is not None and not message.attachment.is_image:
            # A document (a CAP file, a data export): the caller's notice goes instead.
            raise PermanentError("whatsapp: the bot sends no documents on WhatsApp")
        if self._window_open(contact):
            try:
                return await self._send_free(chat_id, message)
            except WindowClosed:
                await self._close_window(chat_id)
                if message.summary is None:
                    raise
        elif message.summary is None:
            raise WindowClosed("whatsapp: outside the 24-hour window, and not an alert's copy")
        return await self._send_template(chat_id, message)

    async def _send_free(self, chat_id: str, message: Outgoing) -> str:
        """The message's parts; the first quotes ``reply_to`` (a follow-up's original)."""
        ids: list[str] = []
        for index, part in enumerate(free_form(message, self.labels.list_button)):
            reply_to = first_id(message.reply_to) if index == 0 else None
            ids.append(await self._post(chat_id, part, reply_to))
        return join_ids(ids)

    async def _send_template(self, chat_id: str, message: Outgoing) -> str:
        assert message.summary is not None
        name = self.config.template if message.choices else self.config.follow_up_template
        self.counters["template"] += 1
        return await self._post(chat_id, template(
            message.summary, name, self.config.template_language, message.choices),
            first_id(message.reply_to))

    async def _post(self, chat_id: str, message: Message, reply_to: str | None) -> str:
        api = self._require()
        try:
            answer: dict[str, Any] = await api.api.send_message(
                sender=self.config.phone_number_id, to=chat_id, recipient=None,
                recipient_type="individual", typ=message.kind, msg=message.body,
                reply_to_message_id=reply_to)
        except WhatsAppError as error:
            raise await self._typed(error, chat_id) from error
        except httpx.HTTPError as error:
            raise network(error) from error
        self._auth_failed = False
        try:
            message_id = str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise TransientError(f"whatsapp: unreadable answer {answer!r:.200}") from None
        await self.store.sent(message_id, message.kind == "template", self.clock.now())
        return message_id

    async def _typed(self, error: WhatsAppError, chat_id: str) -> Exception:
        typed = translate(error, self.counters)
        if isinstance(typed, Unreachable):
            await self._mark_unreachable(chat_id, UNDELIVERABLE)
        if error.code in AUTH:
            self._auth_failed = True  # /healthz says so until a request works again
            log.error("whatsapp: the access token was refused (%d); check "
                      "WHATSAPP_ACCESS_TOKEN", error.code)
        return typed

    def _require(self) -> WhatsApp:
        if self._api is None:
            raise TransientError("whatsapp transport not started")
        return self._api

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        """Never called by the dispatcher (``capabilities``): WhatsApp cannot edit."""
        raise PermanentError("whatsapp: a sent message cannot be edited")

    def start_link(self, code: str) -> StartLink | None:
        """A wa.me link opens a chat with the bot's number with the first message already
        typed: people only touch Send. Without the number configured, they type it."""
        send = f"/start {code}"
        number = self.config.display_phone_number
        if not number:
            return StartLink(self.platform, None, send)
        return StartLink(self.platform, f"https://wa.me/{number}?text={quote(send)}", None)

    def officers_channels(self) -> list[ChatRef]:
        return [ChatRef(PLATFORM, self.config.officers_chat)] if self.config.officers_chat \
            else []

    # -- the window and the marks ------------------------------------------------------

    async def _contact(self, wa_id: str) -> _Contact:
        contact = self._contacts.get(wa_id)
        if contact is None:
            row = await self.store.db.fetchone(
                "SELECT last_inbound_at, unreachable_at FROM whatsapp_contacts WHERE wa_id = ?",
                (wa_id,))
            contact = _Contact(None if row is None or row[0] is None else parse_stamp(row[0]),
                               row is not None and row[1] is not None)
            self._contacts.put(wa_id, contact)
        return contact

    def _window_open(self, contact: _Contact) -> bool:
        last = contact.last_inbound
        return last is not None and self.clock.now() < last + WINDOW - WINDOW_MARGIN

    async def _close_window(self, wa_id: str) -> None:
        self._contacts.put(wa_id, _Contact(None, False))
        await self.store.window_closed(wa_id)

    async def _mark_unreachable(self, wa_id: str, code: int) -> None:
        contact = await self._contact(wa_id)
        self._contacts.put(wa_id, _Contact(contact.last_inbound, True))
        await self.store.mark_unreachable(wa_id, code, self.clock.now())

    # -- receiving ----------------------------------------------------------------------

    async def _on_webhook(self, body: bytes, data: dict[str, Any]) -> None:
        """One webhook: handled once (a redelivery of the same body is ignored), answered
        200 only once every message in it was handled."""
        digest = hashlib.sha256(body).hexdigest()
        if self._digests.get(digest) or await self.store.db.fetchval(
                "SELECT 1 FROM whatsapp_webhooks WHERE digest = ?", (digest,)) is not None:
            self.counters["duplicate_webhook"] += 1
            return
        try:
            parsed = parse(data, self.config.phone_number_id)
        except NotAnUpdate as error:
            raise Unreadable(str(error)) from None
        rejoined = await self._remember_senders(parsed)
        await self._record_statuses(parsed)
        for signal in parsed.signals:
            self.counters["signal"] += 1
            log.warning("whatsapp: account signal %s", signal)
        await self._hand_over([*rejoined, *parsed.incoming])
        await self.store.first_delivery(digest, self.clock.now())
        self._digests.put(digest, True)

    async def _remember_senders(self, parsed: Parsed) -> list[Incoming]:
        """Each sender's window opens. One who was unreachable (131026, so blocked as a
        subscriber) is back: a « joined » event first, as Telegram's unblocking is."""
        now, rejoined = self.clock.now(), []
        for wa_id, at in parsed.senders.items():
            if (await self._contact(wa_id)).unreachable:
                rejoined.append(Incoming(Identity(PLATFORM, wa_id), ChatRef(PLATFORM, wa_id),
                                         ChatKind.PRIVATE, membership="joined",
                                         event_id=f"joined:{wa_id}:{at.timestamp():.0f}"))
            moment = min(at, now)  # never later than we heard it
            self._contacts.put(wa_id, _Contact(moment, False))
            await self.store.heard_from(wa_id, moment)
        return rejoined

    async def _record_statuses(self, parsed: Parsed) -> None:
        now = self.clock.now()
        for update in parsed.statuses:
            self.counters[f"status_{update.status.name.lower()}"] += 1
            await self.store.status(update.message_id, update.status, now, update.error_code,
                                    update.billable)
            if update.status is not Status.FAILED or not update.recipient:
                continue
            if update.error_code == UNDELIVERABLE:
                await self._mark_unreachable(update.recipient, UNDELIVERABLE)
            elif update.error_code == RE_ENGAGEMENT:
                # Free text that Meta accepted, then refused: the window was closed. The
                # copy's row goes back to pending; its next send is the template.
                await self._close_window(update.recipient)
                if await self.store.requeue(update.message_id, now):
                    self.counters["requeued"] += 1

    async def _hand_over(self, events: list[Incoming]) -> None:
        handler = self._on_incoming
        if handler is None:
            raise Unreadable("whatsapp transport stopped")
        waiting = []
        for event in events:
            async def job(event: Incoming = event) -> None:
                await handler(event)

            waiting.append(self.lanes.put(event.chat, lane_of(self._staff, event.sender,
                                                              event.chat), job))
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)


def _address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)
