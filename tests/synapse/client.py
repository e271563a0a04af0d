"""Minimal async Client-Server API helpers (plain aiohttp, independent of nio).

Tests use these to act as human users. Every call opens a short-lived
``aiohttp.ClientSession`` so the helpers work from any event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import aiohttp

from .admin import MatrixUser

JsonDict = dict[str, Any]
EventPredicate = Callable[[JsonDict], bool]

CLIENT_V3 = "/_matrix/client/v3"
_TIMEOUT = aiohttp.ClientTimeout(total=30)


class MatrixHttpError(RuntimeError):
    """Non-2xx answer from the homeserver, with the Matrix error fields."""

    def __init__(self, method: str, path: str, status: int, body: JsonDict) -> None:
        self.status = status
        self.errcode: str | None = body.get("errcode")
        self.error: str | None = body.get("error")
        self.retry_after_ms: int | None = body.get("retry_after_ms")
        self.body = body
        super().__init__(f"{method} {path} -> {status} {self.errcode}: {self.error}")


def _q(value: str) -> str:
    return quote(value, safe="")


async def request(
    user: MatrixUser,
    method: str,
    path: str,
    body: JsonDict | None = None,
    params: dict[str, str] | None = None,
) -> JsonDict:
    """Authenticated JSON request against ``user.base_url``."""
    headers = {"Authorization": f"Bearer {user.access_token}"}
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.request(
            method, user.base_url + path, json=body, params=params, headers=headers
        ) as response,
    ):
        payload: JsonDict = await response.json(content_type=None) or {}
        if response.status >= 300:
            raise MatrixHttpError(method, path, response.status, payload)
        return payload


# ------------------------------------------------------------------ rooms
async def create_room(
    user: MatrixUser,
    *,
    invite: Iterable[str] = (),
    is_direct: bool = False,
    name: str | None = None,
    encrypted: bool = False,
    preset: str | None = None,
) -> str:
    """Create a room; for a DM also record it in the creator's ``m.direct``."""
    invitees = list(invite)
    body: JsonDict = {
        "invite": invitees,
        "is_direct": is_direct,
        "preset": preset or ("trusted_private_chat" if is_direct else "private_chat"),
        "initial_state": _encryption_state() if encrypted else [],
    }
    if name is not None:
        body["name"] = name
    room_id: str = (await request(user, "POST", f"{CLIENT_V3}/createRoom", body))["room_id"]
    if is_direct:
        for other in invitees:
            await mark_direct(user, other, room_id)
    return room_id


def _encryption_state() -> list[JsonDict]:
    return [
        {
            "type": "m.room.encryption",
            "state_key": "",
            "content": {"algorithm": "m.megolm.v1.aes-sha2"},
        }
    ]


async def mark_direct(user: MatrixUser, other_user_id: str, room_id: str) -> None:
    """Add ``room_id`` under ``other_user_id`` in the user's ``m.direct`` account data."""
    path = f"{CLIENT_V3}/user/{_q(user.user_id)}/account_data/m.direct"
    try:
        direct = await request(user, "GET", path)
    except MatrixHttpError as err:
        if err.status != 404:
            raise
        direct = {}
    rooms = direct.setdefault(other_user_id, [])
    if room_id not in rooms:
        rooms.append(room_id)
    await request(user, "PUT", path, direct)


async def direct_rooms(user: MatrixUser) -> JsonDict:
    path = f"{CLIENT_V3}/user/{_q(user.user_id)}/account_data/m.direct"
    try:
        return await request(user, "GET", path)
    except MatrixHttpError as err:
        if err.status == 404:
            return {}
        raise


async def set_display_name(user: MatrixUser, name: str) -> None:
    """The user's profile name: what their room memberships carry from now on."""
    await request(user, "PUT", f"{CLIENT_V3}/profile/{_q(user.user_id)}/displayname",
                  {"displayname": name})


async def join(user: MatrixUser, room_id: str) -> None:
    await request(user, "POST", f"{CLIENT_V3}/join/{_q(room_id)}", {})


async def leave(user: MatrixUser, room_id: str) -> None:
    await request(user, "POST", f"{CLIENT_V3}/rooms/{_q(room_id)}/leave", {})


async def invite(user: MatrixUser, room_id: str, user_id: str) -> None:
    await request(user, "POST", f"{CLIENT_V3}/rooms/{_q(room_id)}/invite", {"user_id": user_id})


async def joined_members(user: MatrixUser, room_id: str) -> list[str]:
    answer = await request(user, "GET", f"{CLIENT_V3}/rooms/{_q(room_id)}/joined_members")
    return list(answer.get("joined", {}))


# ----------------------------------------------------------------- events
async def send_event(user: MatrixUser, room_id: str, event_type: str, content: JsonDict) -> str:
    path = f"{CLIENT_V3}/rooms/{_q(room_id)}/send/{_q(event_type)}/{uuid.uuid4().hex}"
    event_id: str = (await request(user, "PUT", path, content))["event_id"]
    return event_id


async def send_text(user: MatrixUser, room_id: str, body: str) -> str:
    return await send_event(user, room_id, "m.room.message", {"msgtype": "m.text", "body": body})


async def send_reaction(user: MatrixUser, room_id: str, event_id: str, key: str) -> str:
    relates = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
    return await send_event(user, room_id, "m.reaction", {"m.relates_to": relates})


async def edit(user: MatrixUser, room_id: str, event_id: str, new_body: str) -> str:
    """Send an ``m.replace`` edit of ``event_id``."""
    content = {
        "msgtype": "m.text",
        "body": f"* {new_body}",
        "m.new_content": {"msgtype": "m.text", "body": new_body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
    return await send_event(user, room_id, "m.room.message", content)


async def redact(user: MatrixUser, room_id: str, event_id: str, reason: str | None = None) -> str:
    path = f"{CLIENT_V3}/rooms/{_q(room_id)}/redact/{_q(event_id)}/{uuid.uuid4().hex}"
    body = {"reason": reason} if reason else {}
    redaction_id: str = (await request(user, "PUT", path, body))["event_id"]
    return redaction_id


# ------------------------------------------------------------------ media
MEDIA_V3 = "/_matrix/media/v3"
MEDIA_V1 = "/_matrix/client/v1/media"


async def upload(user: MatrixUser, data: bytes, content_type: str, filename: str) -> str:
    """Put a file in the homeserver's media repository; returns its ``mxc://`` URI."""
    headers = {"Authorization": f"Bearer {user.access_token}", "Content-Type": content_type}
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.post(f"{user.base_url}{MEDIA_V3}/upload", data=data, headers=headers,
                     params={"filename": filename}) as response,
    ):
        payload: JsonDict = await response.json(content_type=None) or {}
        if response.status >= 300:
            raise MatrixHttpError("POST", f"{MEDIA_V3}/upload", response.status, payload)
        return str(payload["content_uri"])


async def download(user: MatrixUser, mxc: str) -> bytes:
    """A file of the media repository, as an authenticated client fetches it."""
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    path = f"{MEDIA_V1}/download/{_q(server)}/{_q(media_id)}"
    headers = {"Authorization": f"Bearer {user.access_token}"}
    async with (
        aiohttp.ClientSession(timeout=_TIMEOUT) as session,
        session.get(user.base_url + path, headers=headers) as response,
    ):
        if response.status >= 300:
            raise MatrixHttpError("GET", path, response.status, {})
        return await response.read()


async def send_image(user: MatrixUser, room_id: str, data: bytes, content_type: str,
                     filename: str, caption: str | None = None) -> str:
    """Upload an image and post it as Element does (``m.image``); with ``caption``, as a
    captioned image of Matrix 1.10 (``body`` the caption, ``filename`` the name)."""
    uri = await upload(user, data, content_type, filename)
    content: JsonDict = {"msgtype": "m.image", "body": caption or filename, "url": uri,
                         "info": {"mimetype": content_type, "size": len(data)}}
    if caption is not None:
        content["filename"] = filename
    return await send_event(user, room_id, "m.room.message", content)


# ---------------------------------------------------------------- reading
async def messages(
    user: MatrixUser,
    room_id: str,
    *,
    limit: int = 100,
    types: Iterable[str] | None = None,
) -> list[JsonDict]:
    """Latest ``limit`` timeline events (optionally filtered by type), oldest first."""
    room_filter: JsonDict = {"lazy_load_members": True}
    if types is not None:
        room_filter["types"] = list(types)
    params = {"dir": "b", "limit": str(limit), "filter": json.dumps(room_filter)}
    answer = await request(user, "GET", f"{CLIENT_V3}/rooms/{_q(room_id)}/messages", params=params)
    return list(reversed(answer.get("chunk", [])))


async def get_event(user: MatrixUser, room_id: str, event_id: str) -> JsonDict:
    return await request(user, "GET", f"{CLIENT_V3}/rooms/{_q(room_id)}/event/{_q(event_id)}")


async def wait_for_event(
    user: MatrixUser,
    room_id: str,
    predicate: EventPredicate,
    *,
    timeout: float = 10.0,
    interval: float = 0.2,
    limit: int = 100,
) -> JsonDict:
    """Poll ``messages`` until an event matches ``predicate``; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        for event in await messages(user, room_id, limit=limit):
            if predicate(event):
                return event
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no matching event in {room_id} after {timeout}s")
        await asyncio.sleep(interval)


async def sync_once(user: MatrixUser, since: str | None = None, timeout_ms: int = 0) -> JsonDict:
    params = {"timeout": str(timeout_ms)}
    if since:
        params["since"] = since
    return await request(user, "GET", f"{CLIENT_V3}/sync", params=params)


async def invited_rooms(user: MatrixUser) -> list[str]:
    answer = await sync_once(user)
    return list(answer.get("rooms", {}).get("invite", {}))


async def wait_for_invite(user: MatrixUser, *, timeout: float = 10.0) -> str:
    """Poll /sync until the user has a pending invite; returns its room id."""
    deadline = time.monotonic() + timeout
    while True:
        rooms = await invited_rooms(user)
        if rooms:
            return rooms[0]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{user.user_id} got no invite after {timeout}s")
        await asyncio.sleep(0.2)


# ------------------------------------------------------------- predicates
def is_text(body: str, sender: str | None = None) -> EventPredicate:
    def match(event: JsonDict) -> bool:
        content = event.get("content", {})
        return (
            event.get("type") == "m.room.message"
            and content.get("body") == body
            and (sender is None or event.get("sender") == sender)
        )

    return match


def relates_to(event_id: str, rel_type: str) -> EventPredicate:
    def match(event: JsonDict) -> bool:
        relation = event.get("content", {}).get("m.relates_to", {})
        return bool(relation.get("event_id") == event_id and relation.get("rel_type") == rel_type)

    return match
