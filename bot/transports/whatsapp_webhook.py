"""The HTTP endpoint Meta calls for WhatsApp, on the aiohttp the bot already runs.

* ``GET path?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``: the verification
  handshake when the webhook is registered; the challenge is echoed only for our
  ``verify_token`` (403 otherwise).
* ``POST path``: a webhook. Its ``X-Hub-Signature-256`` must be ``sha256=`` the HMAC-SHA256
  of the raw body keyed by the app secret, compared in constant time; anything else is
  refused (403) before the body is parsed. Then ``deliver`` gets the JSON object and the
  answer is 200 once it was handled, so that Meta delivers again what a crash lost; a body
  that is no WhatsApp webhook gets 400 (Meta would only send it again).

Set-up behind the reverse proxy: docs/whatsapp.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.http_serving import listen

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
SHUTDOWN_TIMEOUT = 5.0
MAX_BODY = 3 * 1024 * 1024  # Meta batches up to 1,000 updates; a few hundred KB at most

Deliver = Callable[[bytes, dict[str, Any]], Awaitable[None]]


class Unreadable(ValueError):
    """Raised by ``deliver`` for a JSON object that is no webhook: answered 400."""


def signature(app_secret: str, body: bytes) -> str:
    """What Meta puts in ``X-Hub-Signature-256`` for ``body`` (the double signs with it too)."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WhatsAppWebhook:
    def __init__(self, path: str, app_secret: str, verify_token: str, deliver: Deliver) -> None:
        self.path = path
        self._secret = app_secret
        self._verify_token = verify_token.encode("utf-8")
        self._deliver = deliver
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get(self.path, self._on_get)
        app.router.add_post(self.path, self._on_post)
        runner = await listen(app, host, port, SHUTDOWN_TIMEOUT)
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _on_get(self, request: web.Request) -> web.Response:
        query = request.query
        given = query.get("hub.verify_token", "").encode("utf-8", "replace")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
                given, self._verify_token):
            log.warning("whatsapp: webhook verification refused (403): wrong verify token")
            raise web.HTTPForbidden()
        log.info("whatsapp: webhook verified by Meta")
        return web.Response(text=query.get("hub.challenge", ""))

    async def _on_post(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.authentic(request.headers.get(SIGNATURE_HEADER), body):
            log.warning("whatsapp: webhook refused (403): missing or wrong signature")
            raise web.HTTPForbidden()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            log.warning("whatsapp: webhook refused (400): not a JSON object")
            raise web.HTTPBadRequest()
        try:
            await self._deliver(body, data)
        except Unreadable as error:
            log.warning("whatsapp: webhook refused (400): %s", error)
            raise web.HTTPBadRequest() from None
        return web.Response()

    def authentic(self, header: str | None, body: bytes) -> bool:
        if not header:
            return False
        expected = signature(self._secret, body).encode("ascii")
        return hmac.compare_digest(header.encode("utf-8", "replace"), expected)
