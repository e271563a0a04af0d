"""Sends the reply outbox (bot/storage/replies.py): what events and the clock answered.

Effects are written as rows in the transaction that decided them and sent after commit:
at once by the core, and by a background loop for rows a crash, a rate limit or a network
error left pending. A row is marked 'sent' only once the platform accepted it, so after a
crash the replies in flight are sent again (at least once, never lost); one lock keeps
two senders from taking the same row, and keeps the rows of an event in order.

A message whose file is still to draw (a map: ``Outgoing.deferred``) is drawn in a worker
thread, outside the core's lock and the sender's: until it is drawn, its row waits, and so
do the later rows to the same chat (or about the same tracked posts), so each recipient
gets their messages in order, while the rows to other chats go at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.context import Services
from bot.deferred import draw
from bot.domain import (
    Attachment,
    ChatRef,
    Choice,
    Deferred,
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
DRAWINGS_KEPT = 16  # drawn files kept for the other rows of the same recipe
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
                "data": base64.b64encode(attachment.data).decode("ascii")},
            "deferred": None if message.deferred is None else dataclasses.asdict(
                message.deferred),
            "if_file_fails": message.if_file_fails}


def _message(data: dict[str, Any]) -> Outgoing:
    file = data["attachment"]
    attachment = None if file is None else Attachment(
        file["filename"], file["mime_type"], base64.b64decode(file["data"]))
    deferred = data.get("deferred")
    return Outgoing(data["text"], data["html"],
                    tuple(Choice(label, choice) for label, choice in data["choices"]),
                    Tone(data["tone"]), data["reply_to"], attachment,
                    None if deferred is None else Deferred(**deferred),
                    data.get("if_file_fails"))


def _notice_instead(row: ReplyRow) -> Post | None:
    """The text-only post that replaces a refused file, if its message has one."""
    try:
        stored = decode(row.effect)
    except Exception:
        return None
    if not isinstance(stored, Post):
        return None
    message = stored.message
    if message.if_file_fails is None or (message.attachment is None and message.deferred is None):
        return None  # no notice, or already the notice (refused too: nothing more to say)
    return Post(stored.chat, Outgoing(message.if_file_fails, reply_to=message.reply_to),
                stored.track)


def _keys(stored: Stored) -> set[tuple[str, ...]]:
    """What a row must stay in order with: its chat, and the tracked posts it makes or
    changes (a map's post before its deletion)."""
    if isinstance(stored, Post):
        keys: set[tuple[str, ...]] = {("chat", stored.chat.platform, stored.chat.chat_id)}
        if stored.track is not None:
            keys.add(("track", stored.track[0], str(stored.track[1])))
        return keys
    return {("track", stored.purpose, str(stored.alert_id))}


# -- sending -------------------------------------------------------------------------------


class ReplySender:
    def __init__(self, services: Services, transports: Mapping[str, Transport]) -> None:
        self.services = services
        self.transports = transports
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One drawing at a time, off the event loop (Pillow's fonts are not thread-safe).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="draw")
        self._drawings: OrderedDict[Deferred, asyncio.Future[bytes]] = OrderedDict()

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
        """Send every due row, oldest first. A row whose file is being drawn waits, with
        the later rows of its chat, while the others go; returns once all are sent."""
        while True:
            async with self._lock:
                drawing = await self._send_ready()
            if not drawing:
                return
            await asyncio.wait(drawing)  # without the lock: rows of other events go meanwhile

    async def _send_ready(self) -> list[asyncio.Future[bytes]]:
        """Send the due rows that can go; the drawings that the others wait for."""
        while True:
            rows = await self.services.stores.replies.due(self.services.clock.now(), BATCH)
            held: set[tuple[str, ...]] = set()
            drawing: list[asyncio.Future[bytes]] = []
            sent = 0
            for row in rows:
                try:
                    stored = decode(row.effect)
                except Exception:  # _send records why
                    stored = None
                if stored is not None:
                    keys = _keys(stored)
                    future = self._drawing(stored)
                    if keys & held or (future is not None and not future.done()):
                        held |= keys
                        if future is not None and not future.done():
                            drawing.append(future)
                        continue
                await self._send(row)
                sent += 1
            if len(rows) < BATCH or not sent:
                return drawing

    def _drawing(self, stored: Stored) -> asyncio.Future[bytes] | None:
        """The drawing of the row's file, begun now if not yet; None without a file."""
        deferred = stored.message.deferred if isinstance(stored, Post) else None
        if deferred is None:
            return None
        future = self._drawings.get(deferred)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, draw, self.services, deferred)
            future.add_done_callback(lambda _: self.wake())
            self._drawings[deferred] = future
            done = [key for key, f in self._drawings.items() if f.done()]
            for key in done[:max(0, len(self._drawings) - DRAWINGS_KEPT)]:
                del self._drawings[key]
        return future

    async def _attach(self, message: Outgoing) -> Outgoing:
        """The message with its drawn file as attachment; a file that could not be drawn
        is not sent (a map must never hold anything back)."""
        deferred = message.deferred
        if deferred is None:
            return message
        future = self._drawings.get(deferred)
        if future is None:  # forgotten since: draw it again
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, draw, self.services, deferred)
            self._drawings[deferred] = future
        try:
            data = await future
        except Exception as error:
            log.exception("%s could not be drawn", deferred.filename)
            raise PermanentError(f"{deferred.filename} could not be drawn") from error
        return dataclasses.replace(message, deferred=None, attachment=Attachment(
            deferred.filename, deferred.mime_type, data))

    async def _send(self, row: ReplyRow) -> None:
        replies, now = self.services.stores.replies, self.services.clock.now()
        try:
            stored = decode(row.effect)
            message_ids = await self._perform(stored)
        except RateLimited as error:
            await self._again(row, error.retry_after, str(error))
        except PermanentError as error:  # trying again won't do
            await self._give_up(row, str(error))
        except (RecipientGone, ChatMoved) as error:  # nobody there to tell either
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
            await self._give_up(row, error)
            return
        log.warning("could not deliver reply=%d error=%s; again in %g s", row.id, error, delay)
        await replies.retry_later(row.id, self.services.clock.now() + timedelta(seconds=delay),
                                  error)
        self.wake()  # the loop recomputes when the next row is due

    async def _give_up(self, row: ReplyRow, error: str) -> None:
        """A row that will not go: failed, or — a file the person asked for — turned into
        its text notice (``Outgoing.if_file_fails``), sent in its place and order."""
        replies = self.services.stores.replies
        notice = _notice_instead(row)
        if notice is None:
            log.warning("could not deliver reply=%d error=%s; given up", row.id, error)
            await replies.mark_failed(row.id, error)
            return
        log.warning("could not deliver reply=%d with its file error=%s; its notice instead",
                    row.id, error)
        await replies.replace(row.id, encode(notice), self.services.clock.now(), error)
        self.wake()

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
            message_id = await transport.send(stored.chat.chat_id,
                                              await self._attach(stored.message))
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
