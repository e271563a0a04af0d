"""The HTTP endpoint Telegram pushes updates to in webhook mode, on aiohttp.

python-telegram-bot's own webhook server needs tornado; this one runs on the aiohttp the
bot already depends on, inside the bot's event loop. It does only HTTP: check the secret
header, bound the body, decode a JSON object, and hand it to ``deliver`` (the transport
turns it into an ``Update`` and has the core handle it). Answers:

* 200: the update was handled (Telegram then forgets it);
* 403: ``X-Telegram-Bot-Api-Secret-Token`` missing or wrong (not Telegram, or an old secret);
* 413: body over ``max_body`` bytes;
* 400: not a JSON object, or not an update;
* 404 / 405: another path / another method than POST (aiohttp's router).

Telegram retries an update until it gets a 2xx, so only requests that can never succeed
are refused. Set-up behind a reverse proxy: docs/telegram.md, "Webhook mode".
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.http_serving import listen

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Seconds an in-flight request may take to finish when the server stops.
SHUTDOWN_TIMEOUT = 5.0

Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class UnreadableUpdate(ValueError):
    """Raised by ``deliver`` for a JSON object that is not an update: answered 400."""


class WebhookServer:
    """POST ``path`` on ``host:port``; each authentic update goes to ``deliver``."""

    def __init__(self, path: str, secret: str, max_body: int, deliver: Deliver) -> None:
        self.path = path or "/"
        self._secret = secret.encode("utf-8")
        self._max_body = max_body
        self._deliver = deliver
        self._runner: web.AppRunner | None = None
        self.port = 0  # the port bound, known once started

    async def start(self, host: str, port: int) -> None:
        """Listen; an address that cannot be bound is an OSError (the caller words it)."""
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post(self.path, self._on_post)
        runner = await listen(app, host, port, SHUTDOWN_TIMEOUT)
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening; a request being answered gets SHUTDOWN_TIMEOUT to finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _on_post(self, request: web.Request) -> web.Response:
        # The secret first: a stranger's request is refused before its body is read.
        if not self._authentic(request):
            log.warning("telegram: webhook request refused (403): missing or wrong secret")
            raise web.HTTPForbidden()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("telegram: webhook request refused (413): body over %d bytes",
                        self._max_body)
            raise
        update = _json_object(body)
        if update is None:
            log.warning("telegram: webhook request refused (400): not a JSON object")
            raise web.HTTPBadRequest()
        try:
            await self._deliver(update)
        except UnreadableUpdate as error:
            log.warning("telegram: webhook request refused (400): %s", error)
            raise web.HTTPBadRequest() from None
        return web.Response()

    def _authentic(self, request: web.Request) -> bool:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return False
        # Constant time, so that the secret cannot be guessed byte by byte from timings.
        # "replace": a header with stray bytes cannot raise, it simply does not match.
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._secret)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8 / JSON, or nested beyond reason
        return None
    return data if isinstance(data, dict) else None
