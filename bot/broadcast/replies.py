"""Sends the reply outbox (bot/storage/replies.py): what events and the clock answered.

Effects are written as rows in the transaction that decided them and sent after commit. A
row is marked 'sent' only once the platform accepted it, so after a crash the replies in
flight are sent again (at least once, never lost).

The sender takes each new row once — from the transaction that wrote it, as it commits
(``ReplyStore.listener``), or from the outbox at start and when woken (a previous run's,
rows due again) — keeps it in memory until it is done, and sends it in a task of its own
through the platform's pacer (bot/broadcast/pacing.py), the one the dispatcher's alert
copies go through as well: replies take the budget first (the officers'
channels and staff before the public), copies take what replies leave, and together they
stay within it. Rows keep their order per chat and per tracked post: a row goes once the
earlier rows sharing its chat (or tracked posts) are done, while other chats' rows go.

A reply that cannot go now is not lost. Refused with a 429, or facing a wait longer than
``PARK_ABOVE`` (the platform paused, its chat delayed), it waits in the outbox until due
again, holding back the later rows of its chat, without counting an attempt: attempts count
real failures only (network, server), and after ``MAX_ATTEMPTS`` the reply is given up.
Every reply given up is logged at WARNING with why, and counted (``Metrics.reply_dropped``).

A message whose file is still to build (a map, a CAP document, a data export:
``Outgoing.deferred``, bot/deferred.py) is built in a worker thread, outside the core's lock:
until it is built its row waits, and so do the later rows of its chat, while the rows to
other chats go; the row starts when its file is done.

An alert's photo is read from the database the same way (bot/deferred.py), once for all the
officers' channels.

``drain()`` returns once the rows its task wrote are sent, given up, waiting for a later
turn or for their file: an event's handler waits for its own replies, never behind another
chat's, nor for a file (its own may be queued behind others' maps). ``flush()`` waits for
the files too (tools and tests).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import contextvars
import dataclasses
import json
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.broadcast.pacing import Pacer, Priority, pacers_for
from bot.context import Services
from bot.deferred import (
    PhotoGone,
    build,
    digest_of,
    instead_of,
    is_picture,
    is_shared,
    load_photo,
)
from bot.domain import (
    Attachment,
    ChatRef,
    Choice,
    Deferred,
    DeleteTracked,
    EditTracked,
    Effect,
    Identity,
    Notify,
    Outgoing,
    Reply,
    Tone,
    ToOfficers,
)
from bot.enums import DeferredKind, ReplyDrop
from bot.i18n import COMMAND_MARK, commands_for
from bot.metrics import Metrics
from bot.organisations import Posting
from bot.roles import Role
from bot.storage.alerts import PostedMessage
from bot.storage.replies import ReplyRow, take_written
from bot.transports.base import (
    ChatMoved,
    DeliveryError,
    PermanentError,
    RateLimited,
    RecipientGone,
    TransientError,
    Transport,
)

log = logging.getLogger(__name__)

BATCH = 200  # rows read from the outbox at a time
MAX_ATTEMPTS = 5  # a reply still failing after this many tries is given up (and logged)
MAX_BACKOFF = 60.0  # seconds
IDLE_WAIT = 30.0  # seconds between looks when nothing is due (wake() interrupts it)
DRAWINGS_KEPT = 16  # drawn maps kept for the other rows of the same recipe
# A reply whose turn is further than this (seconds: the platform paused after a 429, its
# chat delayed by one) waits in the outbox instead of in memory; nearer turns (a chat's or
# a group's interval) are waited for in the task.
PARK_ABOVE = 5.0
MIN_RATE_LIMIT_WAIT = 1.0  # seconds: a 429 without a usable retry_after is not a busy loop
MessageIds = list[PostedMessage]
Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Post:
    """One message to one chat; ``track`` remembers it as an officers' post to edit later."""

    chat: ChatRef
    message: Outgoing
    track: tuple[str, int] | None = None


Stored = Post | EditTracked | DeleteTracked


# -- the stored form ---------------------------------------------------------------------


Postings = Callable[[str | None], Sequence[Posting]]


def rows_of(effect: Effect, origin: ChatRef | None, postings: Postings) -> list[str]:
    """The rows of one effect: a post to several chats is one row per chat, so that a
    crash resends only the posts that had not gone. ``postings`` says which officers'
    channels an organisation's posts go to, and where they are read-only."""
    if isinstance(effect, Reply):
        assert origin is not None, "a reply needs the chat it answers"
        return [encode(Post(origin, effect.message))]
    if isinstance(effect, Notify):
        return [encode(Post(effect.chat, effect.message))]
    if isinstance(effect, ToOfficers):
        return [encode(Post(posting.chat, effect.message if posting.decides
                            else read_only(effect.message), effect.track))
                for posting in postings(effect.organisation)]
    if isinstance(effect, EditTracked) and effect.organisation is not None:
        readonly = tuple(p.chat for p in postings(effect.organisation) if not p.decides)
        return [encode(dataclasses.replace(effect, readonly=readonly))]
    return [encode(effect)]


def read_only(message: Outgoing) -> Outgoing:
    """An overseer's copy of a request: the same text, no buttons."""
    return dataclasses.replace(message, choices=())


def encode(stored: Stored) -> str:
    if isinstance(stored, Post):
        return json.dumps({"post": [stored.chat.platform, stored.chat.chat_id],
                           "track": stored.track, "message": _message_json(stored.message)})
    if isinstance(stored, EditTracked):
        return json.dumps({"edit": [stored.purpose, stored.alert_id],
                           "message": _message_json(stored.message),
                           "readonly": [[c.platform, c.chat_id] for c in stored.readonly]})
    return json.dumps({"delete": [stored.purpose, stored.alert_id]})


def decode(text: str) -> Stored:
    data = json.loads(text)
    if "post" in data:
        track = data["track"]
        return Post(ChatRef(*data["post"]), _message(data["message"]),
                    None if track is None else (str(track[0]), int(track[1])))
    if "edit" in data:
        purpose, alert_id = data["edit"]
        readonly = tuple(ChatRef(*chat) for chat in data.get("readonly", ()))
        return EditTracked(purpose, int(alert_id), _message(data["message"]),
                           readonly=readonly)
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
                    None if deferred is None else Deferred(
                        DeferredKind(deferred["kind"]), deferred["filename"],
                        deferred["mime_type"], deferred["recipe"]),
                    data.get("if_file_fails"))


def _notice_instead(stored: Stored | None) -> Post | None:
    """The text-only post that replaces a refused file, if its message has one."""
    if not isinstance(stored, Post):
        return None
    message = stored.message
    if message.if_file_fails is None or (message.attachment is None and message.deferred is None):
        return None  # no notice, or already the notice (refused too: nothing more to say)
    return Post(stored.chat, Outgoing(message.if_file_fails, reply_to=message.reply_to),
                stored.track)


def for_platform(message: Outgoing, platform: str) -> Outgoing:
    """A message written for several platforms (``ANY_PLATFORM``: the officers'
    channels), its commands as people type them on ``platform``."""
    if COMMAND_MARK not in message.text and COMMAND_MARK not in (message.html or ""):
        return message
    return dataclasses.replace(message, text=commands_for(message.text, platform),
                               html=None if message.html is None else commands_for(
                                   message.html, platform))


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


@dataclass(frozen=True, slots=True)
class Sent:
    posts: MessageIds


@dataclass(frozen=True, slots=True)
class Later:
    """Due again in ``seconds``; ``attempt``: a real failure (counts towards giving up)."""

    seconds: float
    error: str
    attempt: bool


@dataclass(frozen=True, slots=True)
class Dropped:
    platform: str
    reason: ReplyDrop
    error: str


@dataclass(frozen=True, slots=True)
class Moved:
    """The chat has a new id: the row is sent there, at once."""

    post: Post


Outcome = Sent | Later | Dropped | Moved


class _Park(Exception):
    """The platform's next turn for this chat is too far to wait for in memory."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"waiting {seconds:.1f} s for the platform's budget")
        self.seconds = seconds


class _NoFile(Exception):
    """The message's file could not be built."""


@dataclass(eq=False, slots=True)
class _Row:
    """A pending row, in memory from the time it is read until it is done."""

    id: int
    stored: Stored | None  # None: unreadable
    attempts: int
    due: datetime
    keys: frozenset[Key]
    error: str = ""  # why it is unreadable
    task: asyncio.Task[None] | None = None

    @property
    def platform(self) -> str:
        if isinstance(self.stored, Post):
            return self.stored.chat.platform
        return "-"  # tracked posts: counted per post


class ReplySender:
    def __init__(self, services: Services, transports: Mapping[str, Transport],
                 pacers: Mapping[str, Pacer] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.services = services
        self.transports = transports
        # The platforms' pacers, shared with the dispatcher (bot/effect_runner.py).
        self.pacers = pacers if pacers is not None else pacers_for(
            services.config.rate_limits, transports, services.clock)
        self.metrics = metrics or Metrics()
        self._rows: dict[int, _Row] = {}  # pending rows read, by id (in id order)
        self._chains: defaultdict[Key, list[int]] = defaultdict(list)  # key → ids in order
        self._read_up_to = 0  # the highest id read from the outbox
        self._reading = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        # Off the event loop, one file at a time per thread: maps on one, documents on
        # another (bot/deferred.py, is_picture).
        self._executors = {True: ThreadPoolExecutor(1, thread_name_prefix="draw"),
                           False: ThreadPoolExecutor(1, thread_name_prefix="build")}
        self._drawings: OrderedDict[Deferred, asyncio.Future[bytes]] = OrderedDict()
        # The rows written in this process come straight from their transaction's commit;
        # the outbox is read at start (a previous run's) and when woken (rows due again).
        services.stores.replies.listener = self._committed

    async def start(self) -> None:
        """Send what a previous run left pending, then keep an eye on rows due later."""
        self._task = asyncio.create_task(self._loop(), name="replies")

    async def stop(self) -> None:
        """Rows in flight stay pending in the outbox: the next start sends them. Files not
        begun are called off (a stopped bot would go on drawing maps)."""
        self._stopped = True
        tasks = [t for t in (self._task, *(r.task for r in self._rows.values())) if t]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        self._drawings.clear()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                self._wake.clear()
                await self._read()
                self._start_ready()
                timeout = self._seconds_until_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending replies failed; retrying in 1 s")
                timeout = 1.0
            # Not asyncio.wait_for: on Python 3.11 a wake() just before stop() made it
            # swallow the cancellation, and stop() waited for ever (tested).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _seconds_until_due(self) -> float:
        now = self.services.clock.now()
        later = [row.due for row in self._rows.values() if row.task is None and row.due > now]
        if not later:
            return IDLE_WAIT  # due rows start when what holds them is done
        return min(max((min(later) - now).total_seconds(), 0.05), IDLE_WAIT)

    # -- waiting for replies ---------------------------------------------------------------

    async def drain(self, rows: Iterable[int] | None = None) -> None:
        """Start every row that can go; return once ``rows`` (by default those this task
        wrote since its last drain) are sent, given up, or waiting for a later turn or for
        a file being built (the row starts when its file is done)."""
        mine = set(take_written() if rows is None else rows)
        for row_id in mine:
            if (row := self._rows.get(row_id)) is not None:
                self._drawing_of(row)  # begun now, while the rows before it go
        await self._settle(mine, files=False)

    async def flush(self) -> None:
        """Every row due now, files included (tools and tests)."""
        await self._read()
        now = self.services.clock.now()
        await self._settle({row.id for row in self._rows.values() if row.due <= now},
                           files=True)

    async def _settle(self, ids: set[int], files: bool) -> None:
        while True:
            self._start_ready()
            waits: set[asyncio.Future[Any]] = set()
            seen: set[int] = set()
            for row_id in ids:
                if (row := self._rows.get(row_id)) is not None:
                    waits |= self._holding(row, seen, files)
            if not waits:
                return
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)

    def _holding(self, row: _Row, seen: set[int], files: bool) -> set[asyncio.Future[Any]]:
        """What ``row`` is waiting for now: its send, its file (``files``), or the rows
        before it in its chains; nothing when it waits in the outbox for a later turn."""
        if row.id in seen:
            return set()
        seen.add(row.id)
        if row.task is not None:
            return {row.task}
        if row.due > self.services.clock.now():
            return set()
        drawing = self._drawing_of(row)
        if drawing is not None and not drawing.done():
            return {drawing} if files else set()
        found: set[asyncio.Future[Any]] = set()
        for key in row.keys:
            chain = self._chains[key]
            for earlier in chain[:chain.index(row.id)]:
                found |= self._holding(self._rows[earlier], seen, files)
        return found

    # -- the rows in memory ----------------------------------------------------------------

    async def _read(self) -> None:
        """Take the rows written since the last read. With none in memory, read from the
        start: a week's pruning may have freed the highest ids, to be given again."""
        async with self._reading:
            after = self._read_up_to if self._rows else 0
            while True:
                rows = await self.services.stores.replies.pending(after, BATCH)
                for row in rows:
                    if row.id not in self._rows:
                        self._add(row)
                if rows:
                    after = self._read_up_to = rows[-1].id
                if len(rows) < BATCH:
                    return

    def _committed(self, rows: Sequence[ReplyRow]) -> None:
        """Rows a transaction wrote, as it committed: nothing has read them yet. Their
        files are begun by ``drain``, once the event let go of its turn."""
        for row in rows:
            if row.id not in self._rows:
                self._add(row, draw=False)

    def forget(self) -> None:
        """Drop what memory holds: the outbox was emptied by something else than this
        sender (a test starting afresh). Rows still pending are read again."""
        for row in self._rows.values():
            if row.task is not None:
                row.task.cancel()
        self._rows.clear()
        self._chains.clear()
        self._read_up_to = 0

    def _add(self, found: ReplyRow, draw: bool = True) -> None:
        """Keep the row; with ``draw``, begin its file now, while the rows before it go."""
        try:
            stored = decode(found.effect)
        except Exception as failure:  # recorded as given up when its turn comes
            row = _Row(found.id, None, found.attempts, found.next_try_at, frozenset(),
                       repr(failure))
        else:
            row = _Row(found.id, stored, found.attempts, found.next_try_at,
                       frozenset(_keys(stored)))
        self._rows[row.id] = row
        self._chain(row)
        if draw:
            self._drawing_of(row)

    def _chain(self, row: _Row) -> None:
        for key in row.keys:
            bisect.insort(self._chains[key], row.id)

    def _unchain(self, row: _Row) -> None:
        for key in row.keys:
            chain = self._chains[key]
            chain.remove(row.id)
            if not chain:
                del self._chains[key]

    def _forget(self, row: _Row) -> None:
        self._rows.pop(row.id, None)
        self._unchain(row)

    def _start_ready(self) -> None:
        """A task for each row that is due, first in its chains, and drawn."""
        if self._stopped:
            return
        now = self.services.clock.now()
        for row in self._rows.values():
            if row.task is None and row.due <= now and self._first(row):
                drawing = self._drawing_of(row)
                if drawing is None or drawing.done():
                    row.task = asyncio.create_task(self._run(row), name="reply")

    def _first(self, row: _Row) -> bool:
        return all(self._chains[key][0] == row.id for key in row.keys)

    # -- one row ---------------------------------------------------------------------------

    async def _run(self, row: _Row) -> None:
        try:
            outcome = await self._attempt(row)
            await self._record(row, outcome)
        except asyncio.CancelledError:
            raise  # stopping: the row stays pending in the outbox
        except Exception:  # the outcome could not be recorded: try the row again soon
            log.exception("reply=%d could not be recorded; again in 1 s", row.id)
            row.due = self.services.clock.now() + timedelta(seconds=1)
            self.wake()
        finally:
            row.task = None
        self._start_ready()  # the rows it held back

    async def _attempt(self, row: _Row) -> Outcome:
        stored = row.stored
        if stored is None:
            return Dropped("-", ReplyDrop.UNREADABLE, row.error)
        if isinstance(stored, EditTracked) and self._superseded(row, stored):
            return Sent([])  # a later edit of the same posts says it all
        try:
            if isinstance(stored, Post):
                return await self._post(stored)
            return Sent(await self._on_tracked(stored))
        except _Park as park:
            return Later(park.seconds, str(park), attempt=False)
        except RateLimited as error:  # the pacer knows (_slow_down)
            return Later(max(error.retry_after, MIN_RATE_LIMIT_WAIT), str(error), attempt=False)
        except ChatMoved as error:
            assert isinstance(stored, Post)  # tracked posts give up on a moved chat
            return Moved(dataclasses.replace(
                stored, chat=ChatRef(stored.chat.platform, error.new_chat_id)))
        except _NoFile as error:
            return Dropped(row.platform, ReplyDrop.NO_FILE, str(error))
        except (RecipientGone, PermanentError) as error:  # trying again won't do
            return Dropped(row.platform, _reason(error), str(error))
        except DeliveryError as error:  # TransientError
            return Later(min(2.0 ** row.attempts, MAX_BACKOFF), str(error), attempt=True)
        except Exception as error:  # a bug must not stop the other replies
            log.exception("reply=%d failed", row.id)
            return Later(min(2.0 ** row.attempts, MAX_BACKOFF), repr(error), attempt=True)

    def _superseded(self, row: _Row, edit: EditTracked) -> bool:
        """An edit followed, in its chain, by another edit of the same posts (a progress
        message edited every few seconds while the officers' channel waits its turn)."""
        chain = self._chains[("track", edit.purpose, str(edit.alert_id))]
        following = chain[chain.index(row.id) + 1:]
        later = self._rows[following[0]].stored if following else None
        return isinstance(later, EditTracked) and (later.purpose, later.alert_id) == (
            edit.purpose, edit.alert_id)

    async def _record(self, row: _Row, outcome: Outcome) -> None:
        replies, now = self.services.stores.replies, self.services.clock.now()
        if isinstance(outcome, Later) and outcome.attempt and row.attempts + 1 >= MAX_ATTEMPTS:
            outcome = Dropped(row.platform, ReplyDrop.ATTEMPTS, outcome.error)
        if isinstance(outcome, Sent):
            async with self.services.db.transaction():
                if isinstance(row.stored, Post) and row.stored.track is not None:
                    await self._remember(row.stored.track, outcome.posts, now)
                await replies.mark_sent(row.id, [p.message_id for p in outcome.posts], now)
            self._forget(row)
        elif isinstance(outcome, Dropped) and (notice := self._instead(row, outcome)):
            log.warning("reply=%d refused with its file platform=%s error=%s; its notice "
                        "instead", row.id, outcome.platform, outcome.error)
            await replies.replace(row.id, encode(notice), now, outcome.error)
            row.stored, row.attempts, row.due = notice, 0, now  # same chat: same chain
        elif isinstance(outcome, Dropped):
            log.warning("reply=%d given up platform=%s reason=%s error=%s", row.id,
                        outcome.platform, outcome.reason.value, outcome.error)
            await replies.mark_failed(row.id, outcome.error)
            self.metrics.reply_dropped(outcome.platform, outcome.reason)
            self._forget(row)
        elif isinstance(outcome, Later):
            (log.warning if outcome.attempt else log.info)(
                "reply=%d not delivered yet error=%s; again in %g s", row.id, outcome.error,
                outcome.seconds)
            due = now + timedelta(seconds=outcome.seconds)
            await replies.retry_later(row.id, due, outcome.error, outcome.attempt)
            row.attempts, row.due = row.attempts + outcome.attempt, due
            self.wake()  # the loop looks again when it is due
        else:
            log.info("reply=%d follows its chat to its new id", row.id)
            await replies.retarget(row.id, encode(outcome.post))
            self._unchain(row)
            row.stored, row.keys = outcome.post, frozenset(_keys(outcome.post))
            self._chain(row)

    @staticmethod
    def _instead(row: _Row, dropped: Dropped) -> Post | None:
        """A file the person asked for (a data export) that will not go is followed by its
        text notice (``Outgoing.if_file_fails``), in the row's place: never silence. Not
        when the person is gone: there is nobody to tell."""
        return None if dropped.reason is ReplyDrop.GONE else _notice_instead(row.stored)

    async def _remember(self, track: tuple[str, int], posts: MessageIds,
                        now: datetime) -> None:
        purpose, alert_id = track
        for post in posts:
            await self.services.stores.alerts.remember_post(purpose, alert_id, post, now)

    # -- on the platforms --------------------------------------------------------------------

    async def _post(self, post: Post) -> Outcome:
        chat = post.chat
        # First: a personal file is let go, whatever happens next.
        message = await self._attach(for_platform(post.message, chat.platform))
        transport = self.transports.get(chat.platform)
        if transport is None:
            return Dropped(chat.platform, ReplyDrop.NO_TRANSPORT,
                           f"no transport for {chat.platform}")
        await self._turn(chat, self._priority(chat))
        try:
            message_id = await transport.send(chat.chat_id, message)
        except RateLimited as error:
            self._slow_down(chat, error)
            raise
        return Sent([PostedMessage(chat.platform, chat.chat_id, message_id)])

    async def _on_tracked(self, effect: EditTracked | DeleteTracked) -> MessageIds:
        """Edit or delete every tracked post; one that cannot be reached is logged,
        counted and skipped (an officers' channel gone, a post deleted by hand). A rate
        limit or a network error sends the whole row again later: an edit made twice
        shows the same, a post deleted twice is deleted."""
        posts = await self.services.stores.alerts.posts(effect.purpose, effect.alert_id)
        chats = [ChatRef(post.platform, post.chat_id) for post in posts]
        for chat in chats:  # all now, or all later: never half of them for minutes
            pacer = self.pacers.get(chat.platform)
            if pacer is not None and (wait := pacer.expected_wait(chat.chat_id)) > PARK_ABOVE:
                raise _Park(wait)
        done: MessageIds = []
        for post, chat in zip(posts, chats, strict=True):
            transport = self.transports.get(post.platform)
            if transport is None:
                continue  # its platform is not running: the post is not ours to change now
            await self._turn(chat, Priority.STAFF)
            try:
                if isinstance(effect, EditTracked):
                    message = read_only(effect.message) if chat in effect.readonly \
                        else effect.message
                    await transport.edit(post.chat_id, post.message_id,
                                         for_platform(message, post.platform))
                else:
                    await transport.delete(post.chat_id, post.message_id)
            except RateLimited as error:
                self._slow_down(chat, error)
                raise
            except TransientError:
                raise
            except DeliveryError as error:
                reason = _reason(error)
                log.warning("could not update post %s platform=%s reason=%s: %s",
                            post.message_id, post.platform, reason.value, error)
                self.metrics.reply_dropped(post.platform, reason)
                continue
            done.append(post)
        return done

    async def _turn(self, chat: ChatRef, priority: Priority) -> None:
        """Wait for the platform's budget; a turn too far away raises _Park."""
        pacer = self.pacers.get(chat.platform)
        if pacer is None:
            return
        if (wait := pacer.expected_wait(chat.chat_id)) > PARK_ABOVE:
            raise _Park(wait)
        await pacer.acquire(chat.chat_id, self._is_group(chat), priority)

    def _slow_down(self, chat: ChatRef, error: RateLimited) -> None:
        """A 429 to a reply weighs like one to an alert copy: that chat, or everyone."""
        self.metrics.reply_rate_limited(chat.platform)
        pacer = self.pacers.get(chat.platform)
        if pacer is None:
            return
        if error.chat_only:
            pacer.delay_chat(chat.chat_id, error.retry_after)
        else:
            pacer.pause(error.retry_after)

    def _officers(self) -> list[ChatRef]:
        return [chat for t in self.transports.values() for chat in t.officers_channels()]

    def _is_group(self, chat: ChatRef) -> bool:
        """The officers' channels are groups. Other rows do not say what their chat is;
        replies go mostly to private chats, paced as such."""
        return chat in self._officers()

    def _priority(self, chat: ChatRef) -> Priority:
        """The officers' channels, and the private chats of people with a role where a
        private chat bears its person's id (Telegram, console), go first."""
        if chat in self._officers():
            return Priority.STAFF
        roles = self.services.roles.roles_of(Identity(chat.platform, chat.chat_id))
        return Priority.STAFF if roles - {Role.SUBSCRIBER} else Priority.CONVERSATION

    # -- files -----------------------------------------------------------------------------

    def _drawing_of(self, row: _Row) -> asyncio.Future[bytes] | None:
        """The building of the row's file, begun now if not yet; None without a file."""
        stored = row.stored
        deferred = stored.message.deferred if isinstance(stored, Post) else None
        if deferred is None or self._stopped:
            return None
        future = self._drawings.get(deferred)
        if future is None:
            future = self._build(deferred)
            future.add_done_callback(lambda _: self._start_ready())
            self._drawings[deferred] = future
            done = [key for key, f in self._drawings.items() if f.done()]
            for key in done[:max(0, len(self._drawings) - DRAWINGS_KEPT)]:
                del self._drawings[key]
        return future

    def _build(self, deferred: Deferred) -> asyncio.Future[bytes]:
        if deferred.kind is DeferredKind.PHOTO:
            # Read, not built: in a context of its own (rows are read inside callers'
            # contexts, which may be a transaction's), so it takes the database's lock.
            return asyncio.get_running_loop().create_task(
                load_photo(self.services, deferred), context=contextvars.Context())
        executor = self._executors[is_picture(deferred.kind)]
        return asyncio.get_running_loop().run_in_executor(executor, build, self.services,
                                                          deferred)

    async def _attach(self, message: Outgoing) -> Outgoing:
        """The message with its built file as attachment. A map that could not be drawn
        is not sent (it must never hold anything back); a document that could not be
        built is replaced by the apology its command would have had."""
        deferred = message.deferred
        if deferred is None:
            return message
        future = self._drawings.get(deferred)
        if future is None:  # forgotten since: build it again
            future = self._drawings[deferred] = self._build(deferred)
        try:
            data = await future
        except PhotoGone as gone:  # the alert ended meanwhile: its photo is not to be shown
            log.info("%s", gone)
            raise _NoFile(str(gone)) from gone
        except Exception as error:
            log.exception("%s could not be built", deferred.filename)
            apology = instead_of(self.services, deferred)
            if apology is None:
                raise _NoFile(f"{deferred.filename} could not be built") from error
            return dataclasses.replace(message, text=apology, html=None, deferred=None)
        finally:
            if not is_shared(deferred.kind):  # personal: not kept in memory once sent
                self._drawings.pop(deferred, None)
        return dataclasses.replace(message, deferred=None, attachment=Attachment(
            deferred.filename, deferred.mime_type, data, digest_of(deferred)))


def _reason(error: DeliveryError) -> ReplyDrop:
    if isinstance(error, RecipientGone | ChatMoved):
        return ReplyDrop.GONE
    return ReplyDrop.REFUSED
