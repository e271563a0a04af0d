"""Sends the reply outbox (bot/storage/replies.py): what events and the clock answered.

Effects are written as rows in the transaction that decided them and sent after commit:
at once by the core, and by a background loop for rows a crash, a rate limit or a network
error left pending. A row is marked 'sent' only once the platform accepted it, so after a
crash the replies in flight are sent again (at least once, never lost); one lock keeps
two senders from taking the same row, and keeps the rows of an event in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.context import Services
from bot.domain import (
    Attachment,
    ChatRef,
    Choice,
    DeleteTracked,
    EditTracked,
    Effect,
    Notify,
    Outgoing,
    Reply,
    Tone,
    ToOfficers,
)
from bot.storage.alerts import PostedMessage
from bot.storage.replies import ReplyRow
from bot.transports.base import (
    ChatMoved,
    DeliveryError,
    PermanentError,
    RateLimited,
    RecipientGone,
    Transport,
)

log = logging.getLogger(__name__)

BATCH = 50
MAX_ATTEMPTS = 5  # a reply still refused after this many tries is given up (and logged)
MAX_BACKOFF = 60.0  # seconds
IDLE_WAIT = 30.0  # seconds between looks when nothing is due (wake() interrupts it)
MessageIds = list[PostedMessage]


@dataclass(frozen=True, slots=True)
class Post:
    """One message to one chat; ``track`` remembers it as an officers' post to edit later."""

    chat: ChatRef
    message: Outgoing
    track: tuple[str, int] | None = None


Stored = Post | EditTracked | DeleteTracked


# -- the stored form ---------------------------------------------------------------------


def rows_of(effect: Effect, origin: ChatRef | None, officers: Sequence[ChatRef]) -> list[str]:
    """The rows of one effect: a post to several chats is one row per chat, so that a
    crash resends only the posts that had not gone."""
    if isinstance(effect, Reply):
        assert origin is not None, "a reply needs the chat it answers"
        return [encode(Post(origin, effect.message))]
    if isinstance(effect, Notify):
        return [encode(Post(effect.chat, effect.message))]
    if isinstance(effect, ToOfficers):
        return [encode(Post(chat, effect.message, effect.track)) for chat in officers]
    return [encode(effect)]


def encode(stored: Stored) -> str:
    if isinstance(stored, Post):
        return json.dumps({"post": [stored.chat.platform, stored.chat.chat_id],
                           "track": stored.track, "message": _message_json(stored.message)})
    if isinstance(stored, EditTracked):
        return json.dumps({"edit": [stored.purpose, stored.alert_id],
                           "message": _message_json(stored.message)})
    return json.dumps({"delete": [stored.purpose, stored.alert_id]})


def decode(text: str) -> Stored:
    data = json.loads(text)
    if "post" in data:
        track = data["track"]
        return Post(ChatRef(*data["post"]), _message(data["message"]),
                    None if track is None else (str(track[0]), int(track[1])))
    if "edit" in data:
        purpose, alert_id = data["edit"]
        return EditTracked(purpose, int(alert_id), _message(data["message"]))
    purpose, alert_id = data["delete"]
    return DeleteTracked(purpose, int(alert_id))


def _message_json(message: Outgoing) -> dict[str, Any]:
    attachment = message.attachment
    return {"text": message.text, "html": message.html,
            "choices": [[c.label, c.data] for c in message.choices],
            "tone": message.tone.value, "reply_to": message.reply_to,
            "attachment": None if attachment is None else {
                "filename": attachment.filename, "mime_type": attachment.mime_type,
                "data": base64.b64encode(attachment.data).decode("ascii")}}


def _message(data: dict[str, Any]) -> Outgoing:
    file = data["attachment"]
    attachment = None if file is None else Attachment(
        file["filename"], file["mime_type"], base64.b64decode(file["data"]))
    return Outgoing(data["text"], data["html"],
                    tuple(Choice(label, choice) for label, choice in data["choices"]),
                    Tone(data["tone"]), data["reply_to"], attachment)


# -- sending -------------------------------------------------------------------------------


class ReplySender:
    def __init__(self, services: Services, transports: Mapping[str, Transport]) -> None:
        self.services = services
        self.transports = transports
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Send what a previous run left pending, then keep an eye on retries."""
        self._task = asyncio.create_task(self._loop(), name="replies")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                self._wake.clear()
                await self.drain()
                timeout = await self._seconds_until_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending replies failed; retrying in 1 s")
                timeout = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _seconds_until_due(self) -> float:
        due = await self.services.stores.replies.next_due()
        if due is None:
            return IDLE_WAIT
        delta = due - self.services.clock.now()
        return min(max(delta.total_seconds(), 0.05), IDLE_WAIT)

    async def drain(self) -> None:
        """Send every due row, oldest first."""
        async with self._lock:
            while True:
                rows = await self.services.stores.replies.due(self.services.clock.now(), BATCH)
                for row in rows:
                    await self._send(row)
                if len(rows) < BATCH:
                    return

    async def _send(self, row: ReplyRow) -> None:
        replies, now = self.services.stores.replies, self.services.clock.now()
        try:
            stored = decode(row.effect)
            message_ids = await self._perform(stored)
        except RateLimited as error:
            await self._again(row, error.retry_after, str(error))
        except (PermanentError, RecipientGone, ChatMoved) as error:  # trying again won't do
            log.warning("could not deliver reply=%d error=%s", row.id, error)
            await replies.mark_failed(row.id, str(error))
        except DeliveryError as error:  # TransientError
            await self._again(row, min(2.0 ** row.attempts, MAX_BACKOFF), str(error))
        except Exception as error:  # a bug must not stop the other replies
            log.exception("reply=%d failed", row.id)
            await self._again(row, min(2.0 ** row.attempts, MAX_BACKOFF), repr(error))
        else:
            async with self.services.db.transaction():
                if isinstance(stored, Post) and stored.track is not None:
                    await self._remember(stored.track, message_ids, now)
                await replies.mark_sent(row.id, [p.message_id for p in message_ids], now)

    async def _again(self, row: ReplyRow, delay: float, error: str) -> None:
        replies = self.services.stores.replies
        if row.attempts + 1 >= MAX_ATTEMPTS:
            log.warning("could not deliver reply=%d error=%s; given up", row.id, error)
            await replies.mark_failed(row.id, error)
            return
        log.warning("could not deliver reply=%d error=%s; again in %g s", row.id, error, delay)
        await replies.retry_later(row.id, self.services.clock.now() + timedelta(seconds=delay),
                                  error)
        self.wake()  # the loop recomputes when the next row is due

    async def _remember(self, track: tuple[str, int], message_ids: MessageIds,
                        now: datetime) -> None:
        purpose, alert_id = track
        for post in message_ids:
            await self.services.stores.alerts.remember_post(purpose, alert_id, post, now)

    async def _perform(self, stored: Stored) -> MessageIds:
        if isinstance(stored, Post):
            transport = self.transports.get(stored.chat.platform)
            if transport is None:
                raise PermanentError(f"no transport for {stored.chat.platform}")
            message_id = await transport.send(stored.chat.chat_id, stored.message)
            return [PostedMessage(stored.chat.platform, stored.chat.chat_id, message_id)]
        return await self._on_tracked(stored)

    async def _on_tracked(self, effect: EditTracked | DeleteTracked) -> MessageIds:
        """Edit or delete every tracked post; one that cannot be reached is logged and
        skipped (an officers' channel gone, a post deleted by hand)."""
        done: MessageIds = []
        for post in await self.services.stores.alerts.posts(effect.purpose, effect.alert_id):
            transport = self.transports.get(post.platform)
            if transport is None:
                continue
            try:
                if isinstance(effect, EditTracked):
                    await transport.edit(post.chat_id, post.message_id, effect.message)
                else:
                    await transport.delete(post.chat_id, post.message_id)
            except DeliveryError as error:
                log.warning("could not update post %s: %s", post.message_id, error)
                continue
            done.append(post)
        return done
