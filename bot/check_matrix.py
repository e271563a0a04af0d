"""Pre-flight check of Matrix: the session, the officers' room, the rate-limit exemption.

matrix-nio returns homeserver errors as ``ErrorResponse`` objects and lets network
trouble out as aiohttp or timeout exceptions; both end up as one line. The client is
set never to retry (a retry loop would hide an unreachable homeserver behind minutes of
silence). With a password instead of an access token, the check logs in as a device of
its own, never the configured ``device_id``, and logs it out at the end: the bot's
device and its token stay untouched, and no device is left behind.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

import nio

from bot.check_report import TIMEOUT, CheckFailed, Section
from bot.config import Config, MatrixConfig
from bot.transports.matrix_errors import NETWORK_ERRORS

CHECK_DEVICE_NAME = "alerte-bot check"
OVERRIDE_PATH = "/_synapse/admin/v1/users/{}/override_ratelimit"
EXEMPT_BODY = '{"messages_per_second": 0, "burst_count": 0}'


async def check_matrix(config: Config, found: Section, officers_elsewhere: list[str]) -> None:
    settings = config.matrix
    client = _client(settings)
    temporary = False
    try:
        temporary = await _log_in(client, settings, found)
        await _whoami(client, settings, temporary, found)
        await _check_officers_room(client, settings, found, officers_elsewhere)
        await _check_rate_limit(client, config, found)
    finally:
        if temporary:
            await _log_out(client, found)
        await client.close()


def _client(settings: MatrixConfig) -> Any:
    options = nio.AsyncClientConfig(max_limit_exceeded=0, max_timeouts=0,
                                    request_timeout=TIMEOUT, store_sync_tokens=False,
                                    encryption_enabled=False)
    client = nio.AsyncClient(settings.homeserver, settings.user_id, config=options)
    if settings.access_token:
        client.restore_login(settings.user_id, settings.device_id, settings.access_token)
    return client


async def _call(call: Awaitable[Any], settings: MatrixConfig) -> Any:
    """One homeserver request; network trouble ends the Matrix check in one line."""
    try:
        return await asyncio.wait_for(call, TIMEOUT)
    except TimeoutError:
        raise CheckFailed(f"no answer from the homeserver at {settings.homeserver} within "
                          f"{TIMEOUT:g} s") from None
    except NETWORK_ERRORS as error:
        raise CheckFailed(f"cannot reach the homeserver at {settings.homeserver} "
                          f"({error or type(error).__name__})") from None


def _error(response: Any) -> str:
    code = getattr(response, "status_code", None) or "error"
    return f"{code}: {getattr(response, 'message', None) or response}"


# -- the session ------------------------------------------------------------------------


async def _log_in(client: Any, settings: MatrixConfig, found: Section) -> bool:
    """Log in with the password if there is no token; True if the check did."""
    if settings.access_token:
        return False
    response = await _call(client.login(password=settings.password,
                                        device_name=CHECK_DEVICE_NAME), settings)
    if not isinstance(response, nio.LoginResponse):
        raise CheckFailed(f"the homeserver refused the password login ({_error(response)}); "
                          "check MATRIX_PASSWORD")
    each_start = "" if settings.device_id else ", as a new device each time"
    found.warning("no matrix.access_token: the bot logs in with the password at each start"
                  f"{each_start}; prefer an access token (docs/matrix.md §1)")
    return True


async def _whoami(client: Any, settings: MatrixConfig, temporary: bool, found: Section) -> None:
    response = await _call(client.whoami(), settings)
    if not isinstance(response, nio.WhoamiResponse):
        raise CheckFailed(f"the homeserver refused the access token ({_error(response)}); "
                          "check MATRIX_ACCESS_TOKEN")
    if response.user_id != settings.user_id:
        raise CheckFailed(f"the access token belongs to {response.user_id}, not to "
                          f"matrix.user_id {settings.user_id}")
    device = (f"temporary device {response.device_id}, logged out after the check"
              if temporary else f"device {response.device_id}")
    found.ok(f"logged in as {response.user_id} ({device}) — whoami ok")
    if not temporary and settings.device_id and response.device_id != settings.device_id:
        found.warning(f"matrix.device_id is {settings.device_id}, but the access token is "
                      f"device {response.device_id}'s")


async def _log_out(client: Any, found: Section) -> None:
    device = client.device_id
    try:
        response = await asyncio.wait_for(client.logout(), TIMEOUT)
    except NETWORK_ERRORS as error:  # TimeoutError included
        response = error
    if not isinstance(response, nio.LogoutResponse):
        found.warning(f"could not log out the check's own session (device {device}): remove "
                      "it from the account's sessions in a Matrix client")


# -- the officers' room -----------------------------------------------------------------


async def _check_officers_room(client: Any, settings: MatrixConfig, found: Section,
                               officers_elsewhere: list[str]) -> None:
    room = settings.officers_room
    if not room:
        found.no_officers_channel("matrix.officers_room", officers_elsewhere,
                                  "docs/matrix.md §2")
        return
    room_id = await _resolve(client, settings, found)
    if room_id is None:
        return
    label = room if room == room_id else f"{room} ({room_id})"
    joined = await _call(client.joined_rooms(), settings)
    if not isinstance(joined, nio.JoinedRoomsResponse):
        raise CheckFailed(f"cannot list the bot's rooms ({_error(joined)})")
    if room_id not in joined.rooms:
        await _not_joined(client, settings, room_id, label, found)
        return
    await _check_joined_room(client, settings, room_id, label, found)



async def _resolve(client: Any, settings: MatrixConfig, found: Section) -> str | None:
    room = settings.officers_room
    if not room.startswith("#"):
        return room
    response = await _call(client.room_resolve_alias(room), settings)
    if isinstance(response, nio.RoomResolveAliasResponse):
        return str(response.room_id)
    found.problem(f"officers' room {room}: the alias cannot be resolved ({_error(response)}); "
                  "check matrix.officers_room")
    return None


async def _not_joined(client: Any, settings: MatrixConfig, room_id: str, label: str,
                      found: Section) -> None:
    """The bot accepts an invitation to the officers' room at start: an invitation is
    enough. A sync limited to that room, without timelines, tells whether there is one."""
    response = await _call(client.sync(timeout=0, sync_filter=_only_room(room_id)), settings)
    if isinstance(response, nio.SyncResponse) and room_id in response.rooms.invite:
        found.warning(f"officers' room {label}: invited, not joined yet; the bot joins at "
                      "start (run the check again then, to see whether it may post)")
        return
    found.problem(f"officers' room {label}: the bot has not joined it and is not invited "
                  f"(invite {settings.user_id} from the room; the bot accepts at start)")


def _only_room(room_id: str) -> dict[str, Any]:
    nothing: dict[str, Any] = {"types": []}
    return {"presence": nothing, "account_data": nothing,
            "room": {"rooms": [room_id], "timeline": {"limit": 0}, "state": nothing,
                     "ephemeral": nothing, "account_data": nothing}}


async def _check_joined_room(client: Any, settings: MatrixConfig, room_id: str, label: str,
                             found: Section) -> None:
    name = (await _state(client, settings, room_id, "m.room.name") or {}).get("name")
    described = f"officers' room {label}" + (f" « {name} »" if isinstance(name, str) else "")
    if await _state(client, settings, room_id, "m.room.encryption") is not None:
        found.problem(f"{described} is encrypted: the bot cannot read the officers' commands "
                      "there (use an unencrypted room, docs/matrix.md §2 and §6)")
    levels = await _state(client, settings, room_id, "m.room.power_levels")
    own, needed = _message_levels(levels or {}, settings.user_id)
    if own >= needed:
        found.ok(f"{described} joined — the bot may post")
    else:
        found.problem(f"{described}: the bot's power level {own} is below the {needed} needed "
                      "to send messages (raise it in the room's roles and permissions)")


async def _state(client: Any, settings: MatrixConfig, room_id: str,
                 event_type: str) -> dict[str, Any] | None:
    """A state event's content; None if the room has none of that type."""
    response = await _call(client.room_get_state_event(room_id, event_type), settings)
    if isinstance(response, nio.RoomGetStateEventResponse):
        content = response.content
        return content if isinstance(content, dict) else {}
    if getattr(response, "status_code", None) == "M_NOT_FOUND":
        return None
    raise CheckFailed(f"cannot read {event_type} of room {room_id} ({_error(response)})")


def _message_levels(levels: dict[str, Any], user_id: str) -> tuple[int, int]:
    """(the bot's power level, the level m.room.message needs). Without a power-levels
    event everyone may send: both are 0."""
    own = _mapping(levels.get("users")).get(user_id, levels.get("users_default", 0))
    needed = _mapping(levels.get("events")).get("m.room.message",
                                                levels.get("events_default", 0))
    return _level(own), _level(needed)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _level(value: Any) -> int:
    # Old room versions allow levels written as strings.
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# -- the rate-limit exemption -----------------------------------------------------------


async def _check_rate_limit(client: Any, config: Config, found: Section) -> None:
    path = OVERRIDE_PATH.format(quote(config.matrix.user_id, safe=""))
    status, body = await _call(_get_json(client, path), config.matrix)
    if status == 200:
        _judge_override(body, path, config.rate_limits.matrix.global_per_second, found)
    elif status == 403:
        found.warning("rate-limit exemption: unknown (the bot is not a server admin; ask the "
                      f"homeserver admin to check GET {path}: it should answer "
                      "messages_per_second 0)")
    else:
        found.warning(f"rate-limit exemption: unknown (GET {path} answered HTTP {status}: "
                      "not a Synapse, or its admin API is not published at this address; "
                      "ask the homeserver admin)")


async def _get_json(client: Any, path: str) -> tuple[int, dict[str, Any]]:
    # matrix-nio 0.26 has no call for Synapse's admin API; the request is plain.
    response = await client.send("GET", path, None,
                                 {"Authorization": f"Bearer {client.access_token}"})
    try:
        body = json.loads(await response.read() or b"{}")
    except ValueError:
        body = {}
    finally:
        response.release()
    return response.status, body if isinstance(body, dict) else {}


def _judge_override(body: dict[str, Any], path: str, pace: float, found: Section) -> None:
    rate, burst = body.get("messages_per_second"), body.get("burst_count")
    ask = f"ask the homeserver admin: POST {path} with {EXEMPT_BODY}"
    if not isinstance(rate, int | float):
        found.problem("rate-limit exemption missing: Synapse limits the bot to its rc_message "
                      "(by default 0.2 msg/s after a burst of 10: about 100 minutes for "
                      f"1,200 recipients); {ask}")
    elif rate == 0:
        found.ok("exempt from Synapse's message rate limit (override_ratelimit: "
                 "messages_per_second 0)")
    elif rate >= pace:
        found.ok(f"rate limit raised to {rate:g} msg/s (burst {burst}), not below the bot's "
                 f"own pace ({pace:g} msg/s, rate_limits.matrix.global_per_second)")
    else:
        found.problem(f"rate limit raised to {rate:g} msg/s (burst {burst}) only, below the "
                      f"bot's pace ({pace:g} msg/s); {ask}")
