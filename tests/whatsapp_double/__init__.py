"""A WhatsApp Business Cloud API double on loopback: ``WhatsAppDouble``.

It answers ``POST /v<version>/<phone number id>/messages`` as the Graph API does (the
same JSON in, ``{"messaging_product", "contacts", "messages": [{"id": "wamid…"}]}`` out,
errors as ``{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}``), and
plays Meta's side of the webhooks: people's messages, button presses, list choices and
shared locations, and the statuses of the bot's messages, each POSTed to the bot's webhook
signed with ``X-Hub-Signature-256`` (HMAC-SHA256 of the body, keyed by the app secret).

What it enforces, as the platform does:

* the bearer token (190 otherwise);
* reply buttons: 1 to 3, titles 1–20 characters, distinct ids; list messages: at most 10
  rows, titles ≤ 24, descriptions ≤ 72, the list button ≤ 20; interactive body ≤ 1,024;
  text ≤ 4,096 (131009 « Parameter value is not valid » otherwise);
* templates: only those registered (132001), their parameter count (132000), no newline,
  tab or 4 spaces in a parameter (132018);
* **the 24-hour window**: free text to someone whose last message is older than 24 hours
  is accepted, then fails in a status webhook with 131047 — as the Cloud API does;
* throughput: beyond ``throughput`` messages a second (a leaky bucket holding a fifth of a
  second's) → 130429; the pair rate limit:
  a person's bucket of ``pair_burst`` messages refilled one per ``pair_seconds`` → 131056;
* people who cannot be reached (``reachable=False``) → 131026 (at once, or in a status
  webhook with ``undeliverable_later``); ``fail_next`` injects any error code.

Statuses (sent, delivered, and read for people who read) are batched, as Meta does, into
one webhook every ``status_every`` seconds; a template message is priced (billable) and
free text is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.transports.whatsapp_webhook import SIGNATURE_HEADER, signature

WINDOW_SECONDS = 24 * 3600
THROUGHPUT_BURST = 0.2  # seconds of throughput accepted at once
PHONE_ID = "106540352242922"
TOKEN = "EAAtest-token"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "verify-me"
PARAMETERS = {"alerte_info": 3, "alerte_suite": 3}  # the templates of docs/whatsapp.md


@dataclass
class Person:
    wa_id: str
    name: str
    last_message: float | None = None  # the double's time
    reachable: bool = True
    reads: bool = True
    pair_level: float = 0.0
    pair_updated: float = 0.0


@dataclass
class Record:
    """A message the bot sent, as the person's phone shows it."""

    id: str
    to: str
    type: str
    body: dict[str, Any]
    context: str | None
    at: float
    text: str = ""
    status: str = "accepted"
    error: int | None = None

    @property
    def buttons(self) -> list[dict[str, str]]:
        if self.type != "interactive" or self.body.get("type") != "button":
            return []
        return [b["reply"] for b in self.body["action"]["buttons"]]

    @property
    def rows(self) -> list[dict[str, str]]:
        if self.type != "interactive" or self.body.get("type") != "list":
            return []
        return [row for section in self.body["action"]["sections"] for row in section["rows"]]

    @property
    def template(self) -> str | None:
        return str(self.body["name"]) if self.type == "template" else None

    @property
    def parameters(self) -> list[str]:
        if self.type != "template":
            return []
        body = next(c for c in self.body["components"] if c["type"] == "body")
        return [str(p["text"]) for p in body["parameters"]]

    @property
    def payloads(self) -> list[str]:
        if self.type != "template":
            return []
        return [str(c["parameters"][0]["payload"]) for c in self.body["components"]
                if c["type"] == "button"]


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Stats:
    accepted: list[float] = field(default_factory=list)  # time of each accepted message
    rate_errors: Counter = field(default_factory=lambda: Counter())
    webhooks: int = 0


class Counter(dict[int, int]):
    def add(self, code: int) -> None:
        self[code] = self.get(code, 0) + 1


class WhatsAppDouble:
    def __init__(self, *, throughput: float = 80.0, pair_burst: int = 45,
                 pair_seconds: float = 6.0, status_every: float = 0.05,
                 statuses: bool = True, undeliverable_later: bool = False,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``monotonic``: the time the throughput is measured in (a test's frozen clock,
        shared with the bot's pacer, makes it exact whatever the machine's load)."""
        self.throughput = throughput
        self.monotonic = monotonic
        self.pair_burst = pair_burst
        self.pair_seconds = pair_seconds
        self.status_every = status_every
        self.send_statuses = statuses
        self.undeliverable_later = undeliverable_later
        self.people: dict[str, Person] = {}
        self.sent: dict[str, list[Record]] = defaultdict(list)
        self.by_id: dict[str, Record] = {}
        self.stats = Stats()
        self.webhook_url = ""  # the bot's, set once its transport listens
        self.clock_offset = 0.0  # seconds added to the double's time (the 24 h window)
        self.failures: dict[str, list[int]] = defaultdict(list)
        self.answers: list[int] = []  # HTTP status of each webhook the bot answered
        self._ids = itertools.count(1)
        self._level, self._level_at = 0.0, 0.0
        self._pending_statuses: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> WhatsAppDouble:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/{version}/{phone}/messages", self._on_messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        self._flusher = asyncio.create_task(self._flush_statuses_forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> float:
        return time.time() + self.clock_offset

    def person(self, wa_id: str, name: str = "", reachable: bool = True,
               reads: bool = True) -> Person:
        self.people[wa_id] = Person(wa_id, name or wa_id, reachable=reachable, reads=reads)
        return self.people[wa_id]

    def fail_next(self, wa_id: str, *codes: int) -> None:
        self.failures[wa_id].extend(codes)

    # -- the Cloud API --------------------------------------------------------------------

    async def _on_messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(ApiError(190, "Error validating access token", 401))
        if request.match_info["phone"] != PHONE_ID:
            return _error(ApiError(100, "Unsupported post request: unknown phone number id"))
        try:
            data = await request.json()
            record = self._accept(data)
        except ApiError as error:
            if error.code in (130429, 131056):
                self.stats.rate_errors.add(error.code)
            return _error(error)
        except (ValueError, KeyError, TypeError) as error:
            return _error(ApiError(100, f"Invalid parameter: {error}"))
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": record.to, "wa_id": record.to}],
                                  "messages": [{"id": record.id}]})

    def _accept(self, data: dict[str, Any]) -> Record:
        if data.get("messaging_product") != "whatsapp":
            raise ApiError(100, "The parameter messaging_product is required.")
        to, kind = str(data["to"]), str(data["type"])
        person = self.people.get(to)
        if person is None:
            raise ApiError(131026, "Message undeliverable")
        if self.failures[to]:
            raise ApiError(self.failures[to].pop(0), "Injected failure")
        now = self.now()
        self._throughput(self.monotonic())
        self._pair(person, now)
        if not person.reachable and not self.undeliverable_later:
            raise ApiError(131026, "Message undeliverable")
        body = data[kind]
        text = self._check(kind, body)
        context = (data.get("context") or {}).get("message_id")
        record = Record(f"wamid.{next(self._ids):012d}", to, kind, body, context, now, text)
        self.sent[to].append(record)
        self.by_id[record.id] = record
        self.stats.accepted.append(self.monotonic())
        self._status_later(person, record)
        return record

    def _throughput(self, now: float) -> None:
        """A leaky bucket: ``throughput`` messages a second, a fifth of a second's at once."""
        self._level = max(0.0, self._level - (now - self._level_at) * self.throughput)
        self._level_at = now
        if self._level + 1 > self.throughput * THROUGHPUT_BURST:
            raise ApiError(130429, "Rate limit hit: Cloud API message throughput has been "
                                   "reached.")
        self._level += 1

    def _pair(self, person: Person, now: float) -> None:
        elapsed = now - person.pair_updated
        person.pair_level = max(0.0, person.pair_level - elapsed / self.pair_seconds)
        person.pair_updated = now
        if person.pair_level + 1 > self.pair_burst:
            raise ApiError(131056, "(Business Account, Consumer Account) pair rate limit hit")
        person.pair_level += 1

    def _check(self, kind: str, body: dict[str, Any]) -> str:
        if kind == "text":
            text = str(body["body"])
            _limit(text, 4096, "text.body")
            return text
        if kind == "interactive":
            return self._check_interactive(body)
        if kind == "template":
            return self._check_template(body)
        raise ApiError(131051, f"Unsupported message type {kind}")

    def _check_interactive(self, body: dict[str, Any]) -> str:
        text = str(body["body"]["text"])
        _limit(text, 1024, "interactive.body.text")
        action = body["action"]
        if body["type"] == "button":
            buttons = action["buttons"]
            if not 1 <= len(buttons) <= 3:
                raise ApiError(131009, "Parameter value is not valid: buttons must be 1 to 3")
            ids = [b["reply"]["id"] for b in buttons]
            if len(set(ids)) != len(ids):
                raise ApiError(131009, "Parameter value is not valid: duplicate button id")
            for b in buttons:
                _limit(b["reply"]["title"], 20, "button title", minimum=1)
                _limit(b["reply"]["id"], 256, "button id", minimum=1)
            return text
        if body["type"] == "list":
            _limit(action["button"], 20, "list button", minimum=1)
            rows = [row for section in action["sections"] for row in section["rows"]]
            if not 1 <= len(rows) <= 10:
                raise ApiError(131009, "Parameter value is not valid: a list has 1 to 10 rows")
            for row in rows:
                _limit(row["title"], 24, "row title", minimum=1)
                _limit(row.get("description", ""), 72, "row description")
                _limit(row["id"], 200, "row id", minimum=1)
            return text
        raise ApiError(131009, f"Parameter value is not valid: interactive {body['type']}")

    def _check_template(self, body: dict[str, Any]) -> str:
        name = str(body["name"])
        if name not in PARAMETERS:
            raise ApiError(132001, f"Template name does not exist in the translation: {name}")
        components = body.get("components") or []
        parameters = [p["text"] for c in components if c["type"] == "body"
                      for p in c["parameters"]]
        if len(parameters) != PARAMETERS[name]:
            raise ApiError(132000, "Number of parameters does not match the expected number "
                                   "of params")
        for value in parameters:
            if not value or "\n" in value or "\t" in value or "    " in value:
                raise ApiError(132018, "There was an issue with the parameters in your "
                                       "template.")
        return "\n".join(parameters)

    # -- statuses ---------------------------------------------------------------------------

    def _status_later(self, person: Person, record: Record) -> None:
        outside = record.type != "template" and (
            person.last_message is None or record.at - person.last_message > WINDOW_SECONDS)
        if outside:
            self._queue_status(record, "failed", 131047)
            return
        if not person.reachable:
            self._queue_status(record, "failed", 131026)
            return
        self._queue_status(record, "sent")
        self._queue_status(record, "delivered")
        if person.reads:
            self._queue_status(record, "read")

    def _queue_status(self, record: Record, status: str, error: int | None = None) -> None:
        record.status, record.error = status, error
        if not self.send_statuses and status != "failed":
            return
        item: dict[str, Any] = {"id": record.id, "status": status,
                                "timestamp": str(int(record.at)), "recipient_id": record.to}
        if status in ("sent", "delivered"):
            template = record.type == "template"
            item["pricing"] = {"billable": template, "pricing_model": "PMP",
                               "category": "utility" if template else "service",
                               "type": "regular" if template else "free_customer_service"}
        if error is not None:
            item["errors"] = [{"code": error, "title": "failed", "message": "failed",
                               "error_data": {"details": "failed"}}]
        self._pending_statuses.append(item)

    async def _flush_statuses_forever(self) -> None:
        while True:
            await asyncio.sleep(self.status_every)
            with contextlib.suppress(Exception):
                await self.flush_statuses()

    async def flush_statuses(self) -> None:
        if not self._pending_statuses or not self.webhook_url:
            return
        batch, self._pending_statuses = self._pending_statuses[:1000], \
            self._pending_statuses[1000:]
        await self.post(self._change({"statuses": batch}))

    # -- people -----------------------------------------------------------------------------

    async def send_text(self, wa_id: str, text: str) -> dict[str, Any]:
        return await self._from(wa_id, "text", {"body": text})

    async def press(self, wa_id: str, label: str) -> dict[str, Any]:
        """Press the newest reply button or list row whose title is (or contains) ``label``."""
        for record in reversed(self.sent[wa_id]):
            for kind, options in (("button_reply", record.buttons), ("list_reply", record.rows)):
                found = [o for o in options if o["title"] == label] or \
                    [o for o in options if label in o["title"]]
                if found:
                    reply = {"id": found[0]["id"], "title": found[0]["title"]}
                    return await self._from(wa_id, "interactive", {"type": kind, kind: reply},
                                            context=record.id)
            if record.template and label in ("Reçu", "J'ai une information"):
                index = 0 if label == "Reçu" else 1
                return await self._from(wa_id, "button", {
                    "payload": record.payloads[index], "text": label}, context=record.id)
        raise AssertionError(f"no button or row {label!r} for {wa_id}")

    async def share_location(self, wa_id: str, latitude: float,
                             longitude: float) -> dict[str, Any]:
        return await self._from(wa_id, "location", {"latitude": latitude,
                                                    "longitude": longitude})

    async def _from(self, wa_id: str, kind: str, content: dict[str, Any],
                    context: str | None = None) -> dict[str, Any]:
        person = self.people[wa_id]
        person.last_message = self.now()
        message: dict[str, Any] = {"from": wa_id, "id": f"wamid.in{next(self._ids):012d}",
                                   "timestamp": str(int(self.now())), "type": kind,
                                   kind: content}
        if context is not None:
            message["context"] = {"from": PHONE_ID, "id": context}
        await self.post(self._change({
            "contacts": [{"profile": {"name": person.name}, "wa_id": wa_id}],
            "messages": [message]}))
        return message

    def _change(self, value: dict[str, Any]) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": "waba-1", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "33180000000",
                             "phone_number_id": PHONE_ID}, **value}}]}]}

    async def post(self, payload: dict[str, Any], *, body: bytes | None = None,
                   signed_with: str = APP_SECRET, sign: bool = True) -> int:
        """POST a webhook to the bot as Meta does; returns the HTTP status it answered."""
        assert self._session is not None and self.webhook_url, "the bot's webhook is unknown"
        raw = body if body is not None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if sign:
            headers[SIGNATURE_HEADER] = signature(signed_with, raw)
        async with self._session.post(self.webhook_url, data=raw, headers=headers) as response:
            self.stats.webhooks += 1
            self.answers.append(response.status)
            return response.status

    # -- what the bot did -------------------------------------------------------------------

    def messages(self, wa_id: str) -> list[Record]:
        return list(self.sent[wa_id])

    async def wait_for(self, wa_id: str, needle: str = "", after: int = 0,
                       timeout: float = 5.0) -> Record:
        """The first message to ``wa_id`` past the first ``after`` whose text has ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.sent[wa_id][after:]:
                if needle in record.text:
                    return record
            if time.monotonic() > deadline:
                seen = [r.text for r in self.sent[wa_id][after:]]
                raise AssertionError(f"no {needle!r} for {wa_id}; the bot sent {seen}")
            await asyncio.sleep(0.01)


def _limit(value: str, limit: int, what: str, minimum: int = 0) -> None:
    if not minimum <= len(value) <= limit:
        raise ApiError(131009, f"Parameter value is not valid: {what} must be {minimum} to "
                               f"{limit} characters")


def _error(error: ApiError) -> web.Response:
    return web.json_response({"error": {
        "message": f"({error.code}) {error.message}", "type": "OAuthException",
        "code": error.code, "error_data": {"messaging_product": "whatsapp",
                                           "details": error.message},
        "fbtrace_id": "AbCdEf123"}}, status=error.status)
