"""Reference "bare concurrent matrix-nio sender" for benchmark comparisons.

No queueing, persistence or retry policy of its own: N worker tasks share one
``nio.AsyncClient`` and each sends one ``m.text`` per room. 429s are NOT retried
by nio (``max_limit_exceeded=0``) and are reported as errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import nio


@dataclass
class BareSendResult:
    elapsed_s: float
    event_ids: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return len(self.event_ids)


def bare_client_config(
    max_timeouts: int = 2, request_timeout: float = 30.0
) -> nio.AsyncClientConfig:
    return nio.AsyncClientConfig(
        max_limit_exceeded=0,
        max_timeouts=max_timeouts,
        request_timeout=request_timeout,
        store_sync_tokens=False,
    )


async def bare_concurrent_send(
    homeserver: str,
    access_token: str,
    room_ids: Sequence[str],
    *,
    concurrency: int = 10,
    body: str = "bare sender message",
    user_id: str = "",
    device_id: str = "",
    max_timeouts: int = 2,
) -> BareSendResult:
    """Send ``body`` once to every room with ``concurrency`` tasks; time it."""
    client = nio.AsyncClient(homeserver, user_id, config=bare_client_config(max_timeouts))
    client.restore_login(user_id, device_id, access_token)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for room_id in room_ids:
        queue.put_nowait(room_id)
    result = BareSendResult(elapsed_s=0.0)
    started = time.perf_counter()
    try:
        workers = [_worker(client, queue, body, result) for _ in range(max(1, concurrency))]
        await asyncio.gather(*workers)
    finally:
        result.elapsed_s = time.perf_counter() - started
        await client.close()
    return result


async def _worker(
    client: nio.AsyncClient, queue: asyncio.Queue[str], body: str, result: BareSendResult
) -> None:
    while not queue.empty():
        room_id = queue.get_nowait()
        await _send_one(client, room_id, body, result)


async def _send_one(
    client: nio.AsyncClient, room_id: str, body: str, result: BareSendResult
) -> None:
    try:
        response = await client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": body},
            ignore_unverified_devices=True,
        )
    except (TimeoutError, aiohttp.ClientError, nio.LocalProtocolError) as err:
        result.errors[room_id] = f"{type(err).__name__}: {err}"
        return
    if isinstance(response, nio.RoomSendResponse):
        result.event_ids[room_id] = response.event_id
    else:
        result.errors[room_id] = str(response)
