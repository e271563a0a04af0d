"""The bare matrix-nio client the Matrix incoming benchmark compares the bot with.

    python -m benchmarks.bare_echo --homeserver URL --user-id @x:y --device-id D --token T

In its own process, as the bot runs in its own: long-polls /sync, joins every room it is
invited to, and answers each text message from someone else with a short text at once
(every answer of a sync sent concurrently). Nothing else: no database, no conversation, no
pacing. What people measure against it is what Synapse allows a client that does nothing
but answer. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

import nio

from tests.synapse.bare_sender import bare_client_config

# Only what an answering client needs: the timeline's messages and the invites.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []}, "account_data": {"types": []},
    "room": {"timeline": {"types": ["m.room.message"], "limit": 100},
             "state": {"types": []}, "ephemeral": {"types": []},
             "account_data": {"types": []}},
}


async def answer(client: nio.AsyncClient, room_id: str) -> None:
    with contextlib.suppress(Exception):  # a failed answer is the person's timeout
        await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "ok"},
                               ignore_unverified_devices=True)


async def serve(client: nio.AsyncClient, stop: asyncio.Event) -> None:
    first = await client.sync(timeout=0, sync_filter=SYNC_FILTER)
    since = first.next_batch if isinstance(first, nio.SyncResponse) else None
    pending: set[asyncio.Task[None]] = set()
    if isinstance(first, nio.SyncResponse):  # invited before it started
        pending |= {asyncio.create_task(_join(client, room)) for room in first.rooms.invite}
    while not stop.is_set():
        response = await client.sync(timeout=30_000, since=since, sync_filter=SYNC_FILTER)
        if not isinstance(response, nio.SyncResponse):
            await asyncio.sleep(0.5)
            continue
        since = response.next_batch
        for room_id in response.rooms.invite:
            pending.add(asyncio.create_task(_join(client, room_id)))
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                if isinstance(event, nio.RoomMessageText) and event.sender != client.user_id:
                    pending.add(asyncio.create_task(answer(client, room_id)))
        pending = {task for task in pending if not task.done()}


async def _join(client: nio.AsyncClient, room_id: str) -> None:
    with contextlib.suppress(Exception):
        await client.join(room_id)


async def main(arguments: argparse.Namespace) -> None:
    client = nio.AsyncClient(arguments.homeserver, arguments.user_id,
                             config=bare_client_config())
    client.restore_login(arguments.user_id, arguments.device_id, arguments.token)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(serve(client, stop))
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bare matrix-nio answering client")
    for name in ("--homeserver", "--user-id", "--device-id", "--token"):
        parser.add_argument(name, required=True)
    asyncio.run(main(parser.parse_args()))
