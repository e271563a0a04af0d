"""The Matrix transport, on matrix-nio: a sync loop in, room messages out.

* Sync: each sync's events go to the lanes (``bot.lanes``: concurrently across rooms, in
  order within a room, staff's first) and the next sync starts at once, while they are
  handled. The ``next_batch`` token lives in the database (``transport_state``) and is
  written once a sync's events and every earlier sync's were handled, so a restart misses
  nothing said while the bot was down. A crash before it is written replays those syncs:
  harmless, since the core skips every event id it has handled (its inbox). Without a
  token (first start, new database) the first sync skips the timelines and nothing older
  than the start is ever taken as a command.
* Rooms: DMs (invites marked ``is_direct``) are accepted and recorded in the bot's
  ``m.direct``; other invites only from an admin; the rest are declined. Joins and
  leaves run in their own task, because Synapse rate-limits them like messages.
* Out: ``m.text`` (``m.notice`` when quiet) with HTML; choices as numbered lists, and
  ✅/❌ reactions on approval requests in the officers' room; a file as an ``m.image`` or
  ``m.file`` event before its text, uploaded to the media repository once however many
  rooms it goes to. Errors come back as the typed errors of ``bot.transports.base``.
* Images people send are fetched (authenticated media) for staff only: an operator's
  photo for an alert (bot/alert_photos.py).

No end-to-end encryption: encrypted events are reported as unreadable and the bot
answers in clear text (see docs/matrix.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import nio

from bot.buttons import ApprovalButton, decode
from bot.config import MatrixConfig
from bot.domain import (
    Attachment,
    ChatKind,
    ChatRef,
    Choice,
    FileProblem,
    Identity,
    Incoming,
    Outgoing,
)
from bot.lanes import Lanes, StaffTest, lane_of, nobody
from bot.limits import PHOTO_BYTES
from bot.storage.transport_state import TransportState
from bot.transports.base import (
    DeliveryError,
    IncomingHandler,
    StartLink,
    TransientError,
    Transport,
    file_part,
    first_id,
    join_ids,
    split_ids,
    unmarked,
)
from bot.transports.matrix_errors import (
    NETWORK_ERRORS,
    delivery_error,
    is_rate_limited,
    network_error,
    retry_after_seconds,
    without_ids,
)
from bot.transports.matrix_events import (
    Heard,
    Media,
    first_fresh_index,
    heard_from,
    invite_details,
    reaction_approval,
)
from bot.transports.matrix_render import edit_content, message_contents
from bot.transports.matrix_rooms import RequestChoices, RoomDirectory
from bot.transports.numbered import NumberedChoices
from bot.transports.uploads import Uploads

log = logging.getLogger(__name__)

PLATFORM = "matrix"
NEXT_BATCH = "next_batch"
SYNC_TIMEOUT_MS = 30_000  # long poll: the homeserver answers as soon as something happens
TIMELINE_LIMIT = 50  # events per room per sync; more while the bot was down is a gap
# Only what the bot reads: no presence, typing or receipts, and the one account-data type.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "account_data": {"types": ["m.direct"]},
    "room": {"timeline": {"limit": TIMELINE_LIMIT}, "ephemeral": {"types": []},
             "account_data": {"types": []}},
}
# The very first sync (no token): the rooms' state and pending invites, no timeline.
FIRST_FILTER: dict[str, Any] = {**SYNC_FILTER, "room": {**SYNC_FILTER["room"],
                                                       "timeline": {"limit": 0}}}
FIRST_BACKOFF_S, MAX_BACKOFF_S = 1.0, 60.0
# A sync answers within its long-poll wait; this much longer without one, the homeserver
# counts as out of reach (a sync of many events takes a while to handle, and a failed one
# waits its backoff before the next).
SYNC_SILENCE_S = 60.0
STOP_GRACE_S = 30.0  # how long stop() lets the syncs being handled finish (their tokens kept)
MEMBERSHIP_NETWORK_ATTEMPTS = 5
DEVICE_NAME = "alerte-bot"


class SyncFailed(Exception):
    """The homeserver answered a sync with an error; the loop backs off and retries."""


@dataclass(frozen=True, slots=True)
class MembershipJob:
    action: str  # "join" or "leave"
    room_id: str
    inviter: str = ""
    direct: bool = False


class MatrixTransport(Transport):
    platform = PLATFORM

    def __init__(self, config: MatrixConfig, state: TransportState,
                 is_admin: Callable[[Identity], bool], *,
                 sync_timeout_ms: int = SYNC_TIMEOUT_MS, lanes: Lanes | None = None,
                 more_officers: Sequence[str] = ()) -> None:
        self.config = config
        self.lanes = lanes or Lanes(name="matrix")
        self._staff: StaffTest = nobody
        self.state = state
        self.is_admin = is_admin
        self.user_id = config.user_id
        self.sync_timeout_ms = sync_timeout_ms
        self.rooms = RoomDirectory(config.officers_room)
        self.rooms.more_officers = list(more_officers)  # the organisations' rooms
        self.requests = RequestChoices(state)
        self.choices = NumberedChoices()
        self.uploads = Uploads()  # an alert's photo: uploaded once, then its mxc:// URI
        self.client: Any = None  # nio.AsyncClient once started
        self.ready = asyncio.Event()  # set when the first sync of this run is handled
        self._on_incoming: IncomingHandler | None = None
        self._since: str | None = None
        self._started_ms = 0
        self._not_before_ms = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._jobs: asyncio.Queue[MembershipJob] = asyncio.Queue()
        self._queued: set[str] = set()
        self._direct_lock = asyncio.Lock()
        # Saves each sync's token once its events and the earlier syncs' are handled.
        self._confirming: asyncio.Task[None] | None = None
        self._stopping = False
        self._synced_at = 0.0  # time.monotonic() of the last successful sync

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, on_incoming: IncomingHandler, staff: StaffTest = nobody) -> None:
        self._on_incoming = on_incoming
        self._staff = staff
        self.lanes.reopen()
        self._confirming = None
        self._started_ms = now_ms()
        self._stopping = False
        self._since = None
        self.ready.clear()
        self._jobs = asyncio.Queue()  # invitations seen by a previous run come back at sync
        self._queued.clear()
        self.client = self._new_client()
        await self.requests.load()
        self._sync_task = asyncio.create_task(self._sync_forever(), name="matrix-sync")
        self._worker_task = asyncio.create_task(self._membership_worker(),
                                                name="matrix-membership")

    def _new_client(self) -> Any:
        settings = nio.AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2,
                                         store_sync_tokens=False, encryption_enabled=False)
        client = nio.AsyncClient(self.config.homeserver, self.user_id,
                                 device_id=self.config.device_id or None, config=settings)
        if self.config.access_token:
            client.restore_login(self.user_id, self.config.device_id, self.config.access_token)
        return client

    async def stop(self) -> None:
        self._stopping = True
        sync_task, self._sync_task = self._sync_task, None
        if sync_task is not None:
            await _cancel(sync_task)  # no further sync; one in flight is simply not read
            # Let the syncs being handled finish, so that their tokens are saved.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._handled(), STOP_GRACE_S)
        await self.lanes.close()  # what is left is replayed at the next start
        confirming, self._confirming = self._confirming, None
        if confirming is not None:
            await _cancel(confirming)
        worker, self._worker_task = self._worker_task, None
        if worker is not None:
            await _cancel(worker)
        if self.client is not None:
            await self.client.close()
            self.client = None

    @property
    def connected(self) -> bool:
        """Started, and the last sync succeeded recently (see SYNC_SILENCE_S)."""
        if self.client is None or self._stopping or not self.ready.is_set():
            return False
        silence = time.monotonic() - self._synced_at
        return silence < self.sync_timeout_ms / 1000 + SYNC_SILENCE_S

    # -- sync -------------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        """Sync, hand the events to the lanes, sync again; any failure is logged and
        retried. A backlog waits at the homeserver while the lanes are full."""
        backoff = FIRST_BACKOFF_S
        while not self._stopping:
            try:
                await self.lanes.room(TIMELINE_LIMIT)
                response = await self._sync_once()
                self._synced_at = time.monotonic()
                self._take_sync(response)
                backoff = FIRST_BACKOFF_S
            except asyncio.CancelledError:
                raise
            except SyncFailed as error:  # the homeserver said no: its words are enough
                log.error("matrix: %s; retrying in %.0f s", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception:
                log.exception("matrix: sync failed; retrying in %.0f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _sync_once(self) -> Any:
        if self._since is not None:
            response = await self.client.sync(timeout=self.sync_timeout_ms, since=self._since,
                                              sync_filter=SYNC_FILTER)
        else:
            response = await self._first_sync()
        if not isinstance(response, nio.SyncResponse):
            raise SyncFailed(f"sync refused: {response}")
        return response

    async def _first_sync(self) -> Any:
        """Full state (members, names, pending invites) and, with a saved token, the
        timeline since it; without one, no timeline at all."""
        await self._login_if_needed()
        await self._resolve_officers_room()
        await self._load_direct_rooms()
        token = await self.state.get(NEXT_BATCH)
        self._not_before_ms = self._started_ms if token is None else 0
        return await self.client.sync(timeout=0, since=token, full_state=True,
                                      sync_filter=FIRST_FILTER if token is None else SYNC_FILTER)

    def _take_sync(self, response: Any) -> None:
        """Rooms and invitations at once; the events into the lanes, the token saved once
        they are handled (``_confirm``)."""
        first = self._since is None
        self._absorb_account_data(response.account_data_events)
        rooms = response.rooms
        self.rooms.joined.update(rooms.join)
        self.rooms.joined.difference_update(rooms.leave)
        for room_id, info in rooms.invite.items():
            try:
                self._consider_invite(room_id, info.invite_state)
            except Exception:  # one odd invitation must not stop the others
                log.exception("matrix: could not consider an invitation")
        handling = [done for room_id, info in [*rooms.join.items(), *rooms.leave.items()]
                    for done in self._take_timeline(room_id, info.timeline.events)]
        if first:
            self._join_officers_room_if_needed()
        self._since = response.next_batch  # the next sync goes on from here at once
        previous = self._confirming
        self._confirming = asyncio.create_task(
            self._confirm(previous, response.next_batch, handling), name="matrix-confirm")

    async def _confirm(self, previous: asyncio.Task[None] | None, token: str,
                       handling: list[asyncio.Future[None]]) -> None:
        """Save ``token`` once this sync's events and the earlier syncs' are handled.
        Only now: a crash before replays these syncs, never skips them; the events replayed
        are skipped by the core's inbox (their ids were recorded with their effects)."""
        if previous is not None:
            await previous  # cancelled (a stop dropped its events): so is this one
        if handling:
            await asyncio.wait(handling)
        if any(done.cancelled() for done in handling):
            # Dropped by a stop: neither this token nor a later one may be saved.
            raise asyncio.CancelledError
        try:
            await self.state.set(NEXT_BATCH, token)
        except Exception:  # the next sync's token will do; meanwhile a restart replays more
            log.exception("matrix: could not save the sync token")
        self.ready.set()

    async def _handled(self) -> None:
        """Until every sync taken so far is handled and its token saved."""
        await self.lanes.join()
        if self._confirming is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._confirming)

    def _absorb_account_data(self, events: list[Any]) -> None:
        for event in events:
            if getattr(event, "type", None) == "m.direct":
                self.rooms.set_direct(getattr(event, "content", None))

    def _take_timeline(self, room_id: str, events: list[Any]) -> list[asyncio.Future[None]]:
        """Each event into its room's lane; read there (a number answers the choices the
        room was shown last, so it is read after the earlier events were answered)."""
        sources = [event.source for event in events
                   if isinstance(getattr(event, "source", None), dict)
                   and not isinstance(event, nio.BadEvent | nio.UnknownBadEvent)]
        handling = []
        for source in sources[first_fresh_index(sources, self.user_id):]:
            timestamp = source.get("origin_server_ts")
            if isinstance(timestamp, int) and timestamp < self._not_before_ms:
                continue  # said before this first start: history, never a command
            sender = source.get("sender")
            lane = lane_of(self._staff, Identity(PLATFORM, str(sender)),
                           ChatRef(PLATFORM, room_id))
            handling.append(self.lanes.put(room_id, lane,
                                           functools.partial(self._on_event, room_id, source)))
        return handling

    async def _on_event(self, room_id: str, source: dict[str, Any]) -> None:
        try:
            heard = heard_from(source, self.user_id)
            if heard is not None:
                await self._on_heard(room_id, heard, source.get("event_id"))
        except Exception:
            # Skip it: failing the sync would replay every event before it, forever.
            log.exception("matrix: could not read event %s in %s",
                          source.get("event_id"), self._in_logs(room_id))

    # -- what people did --------------------------------------------------------------

    async def _on_heard(self, room_id: str, heard: Heard, event_id: object = None) -> None:
        kind = self._kind(room_id)
        if heard.left is not None:
            incoming = self._left(room_id, kind, heard)
        elif heard.reaction is not None:
            incoming = self._reacted(room_id, kind, heard)
        else:
            incoming = self._said(room_id, kind, heard)
            if heard.media is not None:
                incoming = await self._with_media(incoming, heard.media)
        if incoming is not None:
            # The event id: a sync replayed after a crash brings the same ids again.
            event = event_id if isinstance(event_id, str) else None
            await self._deliver(replace(incoming, event_id=event))

    def _incoming(self, room_id: str, kind: ChatKind, sender: str, **fields: Any) -> Incoming:
        return Incoming(sender=Identity(PLATFORM, sender), chat=ChatRef(PLATFORM, room_id),
                        chat_kind=kind, chat_title=self._title(room_id),
                        sender_name=self._member_name(room_id, sender), **fields)

    def _left(self, room_id: str, kind: ChatKind, heard: Heard) -> Incoming | None:
        if heard.left == self.user_id:
            log.warning("matrix: the bot was removed from %s", self._in_logs(room_id))
        elif kind is ChatKind.PRIVATE:
            self._enqueue(MembershipJob("leave", room_id))  # a DM alone is a dead room
        else:
            return None  # people come and go in groups: none of the bot's business
        return self._incoming(room_id, kind, heard.sender, membership="left")

    def _reacted(self, room_id: str, kind: ChatKind, heard: Heard) -> Incoming | None:
        assert heard.reaction is not None
        target, key = heard.reaction
        approve = reaction_approval(key)
        if kind is not ChatKind.OFFICERS or approve is None:
            return None
        data = next((c.data for c in self.requests.get(target)
                     if isinstance(pressed := decode(c.data), ApprovalButton)
                     and pressed.approve is approve), None)
        if data is None:
            return None  # a reaction on anything but an approval request
        return self._incoming(room_id, kind, heard.sender, choice=data)

    def _said(self, room_id: str, kind: ChatKind, heard: Heard) -> Incoming:
        choice = self._choice(room_id, kind, heard)
        return self._incoming(room_id, kind, heard.sender, text="" if choice else heard.text,
                              choice=choice, location=heard.location,
                              unsupported=heard.unsupported)

    async def _with_media(self, incoming: Incoming, media: Media) -> Incoming | None:
        """An image is fetched for staff only (an operator's, for an alert), in a DM or
        under a command; a member of the public's image is never downloaded, and its
        caption is no command."""
        if not self._staff(incoming.sender, incoming.chat):
            return replace(incoming, text="") if incoming.chat_kind is ChatKind.PRIVATE \
                else None
        if incoming.chat_kind is not ChatKind.PRIVATE and not incoming.text:
            return incoming
        fetched = await self._fetch(media)
        if isinstance(fetched, FileProblem):
            log.warning("matrix: an image could not be fetched (%s)", fetched.value)
            return replace(incoming, file_problem=fetched, unsupported=None)
        return replace(incoming, attachment=fetched, unsupported=None)

    async def _fetch(self, media: Media) -> Attachment | FileProblem:
        """The image from the media repository (authenticated media), or why not."""
        if media.size is not None and media.size > PHOTO_BYTES:
            return FileProblem.TOO_LARGE
        try:
            response = await self._logged_in().download(mxc=media.url)
        except Exception:  # the network, a stopped transport: the person is told
            return FileProblem.UNREADABLE
        body = getattr(response, "body", None)
        if not isinstance(response, nio.DownloadResponse) or not isinstance(body, bytes):
            return FileProblem.UNREADABLE
        if len(body) > PHOTO_BYTES:
            return FileProblem.TOO_LARGE
        return Attachment(media.filename, media.mime_type, body)

    def _choice(self, room_id: str, kind: ChatKind, heard: Heard) -> str | None:
        """A bare number answers the last choices shown in the room. In the officers'
        room several requests can wait at once, so there a number only counts as a
        reply to one request."""
        if not heard.text:
            return None
        if kind is ChatKind.OFFICERS:
            if heard.reply_to is None:
                return None
            return numbered_pick(self.requests.get(heard.reply_to), heard.text)
        return self.choices.pick(room_id, heard.text)

    async def _deliver(self, incoming: Incoming) -> None:
        assert self._on_incoming is not None
        try:
            await self._on_incoming(incoming)
        except Exception:  # the core never raises; if it did, the next event still counts
            log.exception("matrix: handling an event in %s failed",
                          self._in_logs(incoming.chat.chat_id))

    def _kind(self, room_id: str) -> ChatKind:
        room = self._nio_room(room_id)
        count = getattr(room, "member_count", None)
        return self.rooms.kind(room_id, count if isinstance(count, int) else None)

    def _in_logs(self, room_id: str) -> str:
        """A room as log lines may name it: groups and the officers' room by id, a
        person's direct chat never (it is as personal as their user id)."""
        if self.rooms.is_direct(room_id):  # even grown into a group: someone's DM first
            return "a private room"
        return f"{self._kind(room_id).value} room {room_id}"

    def _title(self, room_id: str) -> str:
        name = getattr(self._nio_room(room_id), "display_name", None)
        return name if isinstance(name, str) and name else room_id

    def _member_name(self, room_id: str, user_id: str) -> str:
        """The sender's display name in the room's member state (kept by nio from the
        syncs), "" when they set none."""
        users = getattr(self._nio_room(room_id), "users", None)
        member = users.get(user_id) if isinstance(users, dict) else None
        name = getattr(member, "display_name", None)
        return name if isinstance(name, str) else ""

    def _nio_room(self, room_id: str) -> Any:
        return None if self.client is None else self.client.rooms.get(room_id)

    # -- invitations, joins and leaves ------------------------------------------------

    def _consider_invite(self, room_id: str, invite_state: list[Any]) -> None:
        details = invite_details(invite_state, self.user_id)
        if details is None or room_id in self._queued:
            return
        inviter, direct = details
        officers = self.rooms.is_officers(room_id)
        if officers or direct or self.is_admin(Identity(PLATFORM, inviter)):
            if direct and not officers:
                self.rooms.expect_direct(room_id)
            self._enqueue(MembershipJob("join", room_id, inviter, direct and not officers))
        else:
            # Not a DM: a group's room id, which operators may need; never who invited.
            log.info("matrix: declining the invitation to %s (not a DM, not from an admin)",
                     room_id)
            self._enqueue(MembershipJob("leave", room_id))

    def _join_officers_room_if_needed(self) -> None:
        for room_id in self.rooms.officers_rooms():
            if room_id not in self.rooms.joined:
                self._enqueue(MembershipJob("join", room_id))

    def _enqueue(self, job: MembershipJob) -> None:
        if job.room_id not in self._queued:
            self._queued.add(job.room_id)
            self._jobs.put_nowait(job)

    async def _membership_worker(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await self._carry_out(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("matrix: could not %s %s", job.action, self._in_logs(job.room_id))
            finally:
                self._queued.discard(job.room_id)

    async def _carry_out(self, job: MembershipJob) -> None:
        if job.action == "leave":
            await self._patiently(f"leave {self._in_logs(job.room_id)}",
                                  lambda: self.client.room_leave(job.room_id))
            return
        if await self._patiently(f"join {self._in_logs(job.room_id)}",
                                 lambda: self.client.join(job.room_id)) is None:
            return
        self.rooms.joined.add(job.room_id)
        if job.direct:
            await self._mark_direct(job.inviter, job.room_id)
        if job.inviter:  # a group re-invited after a kick becomes active again
            incoming = self._incoming(job.room_id, self._kind(job.room_id), job.inviter,
                                      membership="joined")
            lane = lane_of(self._staff, incoming.sender, incoming.chat)
            # In the room's lane, after what was said there; not awaited as such: a stop
            # that drops it must not end this worker.
            await asyncio.wait([self.lanes.put(job.room_id, lane,
                                               functools.partial(self._deliver, incoming))])

    async def _patiently(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run a join/leave until it succeeds: waits out rate limits (Synapse counts
        joins against rc_message), retries network errors a few times."""
        failures = 0
        while True:
            try:
                response = await call()
            except NETWORK_ERRORS as error:
                failures += 1
                if failures >= MEMBERSHIP_NETWORK_ATTEMPTS:
                    log.warning("matrix: gave up trying to %s: %s", what, error)
                    return None
                await asyncio.sleep(FIRST_BACKOFF_S * 2 ** failures)
                continue
            if not isinstance(response, nio.ErrorResponse):
                return response
            if not is_rate_limited(response):
                log.warning("matrix: could not %s: %s", what, without_ids(str(response)))
                return None
            await asyncio.sleep(retry_after_seconds(response))

    async def _load_direct_rooms(self) -> None:
        response = await self.client.list_direct_rooms()
        if isinstance(response, nio.DirectRoomsResponse):
            self.rooms.set_direct(response.rooms)
        elif getattr(response, "status_code", None) != "M_NOT_FOUND":  # none yet is fine
            raise SyncFailed(f"cannot read m.direct: {response}")

    async def _mark_direct(self, partner: str, room_id: str) -> None:
        """Add the DM to the bot's ``m.direct``, as a person's client would."""
        async with self._direct_lock:
            content = self.rooms.mark_direct(partner, room_id)
            if content is not None:
                await self._put_account_data("m.direct", content)

    async def _put_account_data(self, kind: str, content: dict[str, Any]) -> None:
        # matrix-nio 0.26 has no call for global account data; the request is plain.
        path = (f"/_matrix/client/v3/user/{quote(self.user_id, safe='')}"
                f"/account_data/{quote(kind, safe='')}")
        headers = {"Authorization": f"Bearer {self.client.access_token}",
                   "Content-Type": "application/json"}
        try:
            response = await self.client.send("PUT", path, json.dumps(content), headers)
            status = response.status
            response.release()
        except NETWORK_ERRORS as error:
            log.warning("matrix: could not store %s: %s", kind, error)
            return
        if status >= 300:
            log.warning("matrix: could not store %s: HTTP %s", kind, status)

    async def _login_if_needed(self) -> None:
        if self.client.access_token:
            return
        response = await self.client.login(password=self.config.password,
                                           device_name=DEVICE_NAME)
        if not isinstance(response, nio.LoginResponse):
            raise SyncFailed(f"login failed: {response}")
        log.warning("matrix: logged in with a password as device %s; put an access token "
                    "and this device id in the configuration instead", response.device_id)

    async def _resolve_officers_room(self) -> None:
        alias = self.rooms.officers_room
        if not alias.startswith("#"):
            return
        response = await self.client.room_resolve_alias(alias)
        if not isinstance(response, nio.RoomResolveAliasResponse):
            raise SyncFailed(f"cannot resolve the officers' room {alias}: {response}")
        self.rooms.officers_room = str(response.room_id)

    # -- out --------------------------------------------------------------------------

    async def send(self, chat_id: str, message: Outgoing) -> str:
        """Returns every event's id (``join_ids``): the file (marked), then the text's
        parts. An image and the text it comes with are two events: Element shows the
        image, then the text under it."""
        files: list[str] = []
        if message.attachment is not None:
            files.append(file_part(await self._send_file(chat_id, message.attachment)))
        event_ids: list[str] = []
        # Numbered on from the last list the person has not answered yet; a request in
        # the officers' room is answered by replying to it: its own numbers, from 1.
        officers = self.rooms.is_officers(chat_id)
        first = 1 if officers else self.choices.first_number(chat_id)
        contents = message_contents(replace(message, reply_to=first_id(message.reply_to)),
                                    first=first)
        for content in contents:
            try:
                event_ids.append(await self._room_send(chat_id, content))
            except DeliveryError:
                if not event_ids:
                    # Sent again whole, later: the image must not be shown twice.
                    await self._redact_quietly(chat_id, files)
                    raise
                # Retrying would repeat the parts already shown; the rest is lost.
                log.warning("matrix: message to %s cut after %d of %d parts",
                            self._in_logs(chat_id), len(event_ids), len(contents))
                break
        if not officers:
            self.choices.shown(chat_id, message.choices)
        for event_id in {event_ids[0], event_ids[-1]}:  # edits aim at the first, ✅ at the last
            await self._remember_request(chat_id, event_id, message.choices)
        return join_ids(files + event_ids)

    async def _send_file(self, chat_id: str, attachment: Attachment) -> str:
        """An m.image or m.file event naming the file in the homeserver's media store,
        uploaded there once (``Uploads``: an alert's photo is one upload for all)."""
        async def by_reference(uri: str) -> str:
            return uri

        async def by_upload() -> tuple[str, str]:
            uri = await self._upload(attachment)
            return uri, uri

        uri = await self.uploads.send(attachment.digest, by_reference, by_upload)
        content: dict[str, Any] = {
            "msgtype": "m.image" if attachment.is_image else "m.file",
            "body": attachment.filename, "url": uri,
            "info": {"mimetype": attachment.mime_type, "size": len(attachment.data)},
            "m.mentions": {}}
        return await self._room_send(chat_id, content)

    async def _upload(self, attachment: Attachment) -> str:
        try:
            upload, _ = await self._logged_in().upload(
                lambda *_: io.BytesIO(attachment.data), content_type=attachment.mime_type,
                filename=attachment.filename, filesize=len(attachment.data))
        except NETWORK_ERRORS as error:
            raise network_error(error) from error
        if isinstance(upload, nio.ErrorResponse):
            raise delivery_error(upload)
        return str(upload.content_uri)

    async def _redact_quietly(self, chat_id: str, parts: list[str]) -> None:
        for part in parts:
            with contextlib.suppress(Exception):  # best effort: the send failed anyway
                await self._logged_in().room_redact(chat_id, unmarked(part))

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        """Replaces the first event (the one with the choices); the text of later parts
        stays (Matrix splits only texts far longer than an alert)."""
        first = first_id(message_id) or message_id
        await self._room_send(chat_id, edit_content(first, message))
        self.choices.replaced(chat_id, message.choices)
        await self._remember_request(chat_id, first, message.choices)

    async def delete(self, chat_id: str, message_id: str) -> None:
        """A redaction of every event of the copy: each stays in the room, its content
        is gone."""
        for event_id in split_ids(message_id):
            try:
                response = await self._logged_in().room_redact(chat_id, unmarked(event_id))
            except NETWORK_ERRORS as error:
                raise network_error(error) from error
            if isinstance(response, nio.ErrorResponse):
                raise delivery_error(response)

    def start_link(self, code: str) -> StartLink | None:
        """A matrix.to link opens a conversation with the bot; no link carries a first
        message, so people send ``!start <code>`` there (Element intercepts ``/``)."""
        return StartLink(self.platform, f"https://matrix.to/#/{self.user_id}",
                         f"!start {code}")

    def officers_channels(self) -> list[ChatRef]:
        return [ChatRef(PLATFORM, room_id) for room_id in self.rooms.officers_rooms()]

    async def _room_send(self, room_id: str, content: dict[str, Any]) -> str:
        try:
            response = await self._logged_in().room_send(room_id, "m.room.message", content,
                                                         ignore_unverified_devices=True)
        except NETWORK_ERRORS as error:
            raise network_error(error) from error
        except nio.LocalProtocolError as error:  # not logged in yet (password login pending)
            raise TransientError(str(error)) from error
        if isinstance(response, nio.RoomSendResponse):
            return str(response.event_id)
        raise delivery_error(response)

    def _logged_in(self) -> Any:
        if self.client is None:
            raise TransientError("matrix transport not started")
        return self.client

    async def _remember_request(self, chat_id: str, event_id: str,
                                choices: tuple[Choice, ...]) -> None:
        if self.rooms.is_officers(chat_id):
            await self.requests.remember(event_id, choices)


def numbered_pick(choices: tuple[Choice, ...], text: str) -> str | None:
    """The data of choice ``text`` (``"2"``, ``"2."``) among ``choices``, if it is one."""
    picker = NumberedChoices()
    picker.shown("", choices)
    return picker.pick("", text)


def now_ms() -> int:
    return int(time.time() * 1000)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
