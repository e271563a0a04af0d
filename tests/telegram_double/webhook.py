"""Webhook delivery: while a webhook is set, the double POSTs the bot's updates to it.

As Telegram does: one update per request, as JSON, with the
``X-Telegram-Bot-Api-Secret-Token`` header when a secret was given; the update is forgotten
only on a 2xx answer, otherwise it is sent again later (growing delays) and the updates
after it wait - so they arrive in order. (Telegram keeps order per chat and may use several
connections; the double uses one, which keeps the whole stream in order.)

Failures are kept for ``getWebhookInfo`` (``last_error_date``, ``last_error_message``) and
counted in ``Stats.webhook_posts`` by HTTP status (0: no answer). The double stays offline:
it posts only to loopback hosts; any other host counts as unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .world import Record, World, now

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FIRST_RETRY = 0.05  # seconds; Telegram waits longer, tests should not
MAX_RETRY = 2.0
POST_TIMEOUT = 10.0


class WebhookPusher:
    """Runs while a webhook is set; restarted by setWebhook, stopped by deleteWebhook."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._task: asyncio.Task[None] | None = None

    async def restart(self) -> None:
        """Start pushing to ``world.webhook`` (at once, even if an earlier URL was failing)."""
        await self.stop()
        if self.world.webhook is not None:
            self._task = asyncio.create_task(self._run(), name="double-webhook")

    async def stop(self) -> None:
        """Stop; an update whose POST is cut short stays pending (as if it had failed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            delay = FIRST_RETRY
            while (update := await self.world.updates.next_pending()) is not None:
                webhook = self.world.webhook
                if webhook is None:
                    return
                if await self._post(session, webhook, update):
                    self.world.updates.confirm_update(update["update_id"])
                    delay = FIRST_RETRY
                else:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY)

    async def _post(self, session: aiohttp.ClientSession, webhook: Record,
                    update: dict[str, Any]) -> bool:
        url = webhook["url"]
        if not _loopback(url):
            return self._failed(webhook, 0, "Connection refused (the double posts to loopback "
                                "hosts only)")
        headers = {"Content-Type": "application/json"}
        if webhook.get("secret_token"):
            headers[SECRET_HEADER] = webhook["secret_token"]
        body = json.dumps(update, ensure_ascii=False).encode("utf-8")
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            return self._failed(webhook, 0, "Read timeout expired")
        except aiohttp.ClientError:
            return self._failed(webhook, 0, "Connection refused")
        if 200 <= status < 300:
            self.world.stats.webhook_posts[status] += 1
            return True
        return self._failed(webhook, status, f"Wrong response from the webhook: {status} "
                            f"{_phrase(status)}")

    def _failed(self, webhook: Record, status: int, message: str) -> bool:
        self.world.stats.webhook_posts[status] += 1
        webhook["last_error_date"] = now()[1]
        webhook["last_error_message"] = message
        return False


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
