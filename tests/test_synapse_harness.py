"""Proves the real-Synapse harness in ``tests/synapse`` works end to end."""

from __future__ import annotations

import asyncio
import os
import time

import nio
import pytest

from tests.synapse import client as mx
from tests.synapse.admin import MatrixUser, versions
from tests.synapse.bare_sender import bare_concurrent_send
from tests.synapse.server import SynapseServer

pytest_plugins = ["tests.synapse.fixture"]
pytestmark = pytest.mark.synapse

BURST = 30


def nio_client(user: MatrixUser) -> nio.AsyncClient:
    config = nio.AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2)
    client = nio.AsyncClient(user.base_url, user.user_id, config=config)
    client.restore_login(user.user_id, user.device_id, user.access_token)
    return client


async def timed_send(
    client: nio.AsyncClient, room_id: str, body: str
) -> tuple[nio.Response, float]:
    started = time.monotonic()
    content = {"msgtype": "m.text", "body": body}
    response = await client.room_send(room_id, "m.room.message", content)
    return response, time.monotonic() - started


async def nio_burst(user: MatrixUser, room_id: str, count: int) -> list[tuple[nio.Response, float]]:
    """Send ``count`` messages concurrently; each response with its duration (s).

    Concurrent on purpose: Synapse holds every 429 for 0.5 s before answering,
    so a sequential burst of 30 would take ~10 s.
    """
    client = nio_client(user)
    try:
        return list(
            await asyncio.gather(*(timed_send(client, room_id, f"#{i}") for i in range(count)))
        )
    finally:
        await client.close()


async def dm_pair(
    server: SynapseServer, sender: str, reader: str
) -> tuple[MatrixUser, MatrixUser, str]:
    """``sender`` opens a DM with ``reader``, who joins it."""
    alice, bob = await asyncio.gather(server.register(sender), server.register(reader))
    room_id = await mx.create_room(alice, invite=[bob.user_id], is_direct=True, name="dm")
    await mx.join(bob, room_id)
    return alice, bob, room_id


# ------------------------------------------------------------------ server
def test_server_answers_versions(synapse: SynapseServer) -> None:
    assert synapse.running and synapse.pid is not None
    os.kill(synapse.pid, 0)  # the recorded PID is a live process
    assert synapse.startup_seconds is not None and synapse.startup_seconds < 60
    assert versions(synapse.base_url)["versions"]
    print(f"\nSynapse start-up: {synapse.startup_seconds:.2f}s on {synapse.base_url}")


def test_registration_is_cached(synapse: SynapseServer) -> None:
    first = synapse.register_user("cached")
    assert synapse.register_user("cached") is first
    assert first.user_id == "@cached:test.local" and first.device_id and first.access_token


# --------------------------------------------------------- human helpers
async def test_dm_message_is_read_by_other_user(synapse: SynapseServer) -> None:
    alice, bob, room_id = await dm_pair(synapse, "dm-alice", "dm-bob")
    assert room_id in (await mx.direct_rooms(alice))[bob.user_id]
    await mx.send_text(alice, room_id, "hello bob")
    event = await mx.wait_for_event(bob, room_id, mx.is_text("hello bob", alice.user_id))
    assert event["sender"] == alice.user_id


async def test_reaction_edit_and_redaction_are_visible(synapse: SynapseServer) -> None:
    alice, bob, room_id = await dm_pair(synapse, "rx-alice", "rx-bob")
    original = await mx.send_text(alice, room_id, "first draft")
    await mx.send_reaction(bob, room_id, original, "👍")
    await mx.edit(alice, room_id, original, "final text")
    reaction = await mx.wait_for_event(alice, room_id, mx.relates_to(original, "m.annotation"))
    assert reaction["content"]["m.relates_to"]["key"] == "👍"
    edited = await mx.wait_for_event(bob, room_id, mx.relates_to(original, "m.replace"))
    assert edited["content"]["m.new_content"]["body"] == "final text"
    await mx.redact(alice, room_id, original, reason="oops")
    redacted = await mx.get_event(bob, room_id, original)
    assert redacted["content"] == {} and "redacted_because" in redacted["unsigned"]


# -------------------------------------------------------------------- nio
async def test_nio_restore_login_syncs_and_sends(synapse: SynapseServer) -> None:
    alice, bob, room_id = await dm_pair(synapse, "nio-alice", "nio-bob")
    client = nio_client(bob)
    try:
        sync = await client.sync(timeout=0, full_state=True)
        assert isinstance(sync, nio.SyncResponse), sync
        assert room_id in client.rooms
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "via nio"}
        )
        assert isinstance(sent, nio.RoomSendResponse), sent
    finally:
        await client.close()
    await mx.wait_for_event(alice, room_id, mx.is_text("via nio", bob.user_id))


async def test_nio_returns_limit_exceeded_without_retrying(
    synapse_default_limits: SynapseServer,
) -> None:
    user = await synapse_default_limits.register("burst-user")
    room_id = await mx.create_room(user, name="burst")
    timed = await nio_burst(user, room_id, BURST)
    limited = [(r, t) for r, t in timed if isinstance(r, nio.RoomSendError)]
    assert limited, "expected M_LIMIT_EXCEEDED with Synapse's default rc_message"
    first, first_duration = limited[0]
    assert first.status_code == "M_LIMIT_EXCEEDED"
    assert isinstance(first.retry_after_ms, int) and first.retry_after_ms > 0
    assert first.transport_response is not None
    assert first.transport_response.status == 429
    assert first.transport_response.headers.get("Retry-After")
    # A retrying nio never hands a 429 back, and would have slept retry_after_ms
    # (~4.7 s here) first. Synapse itself holds every 429 for ~0.5 s (its
    # anti-tight-loop pause) before answering.
    assert first_duration < first.retry_after_ms / 1000
    ok = sum(isinstance(r, nio.RoomSendResponse) for r, _ in timed)
    assert ok + len(limited) == BURST
    slowest = max(t for _, t in limited)
    print(f"\nburst: {ok} sent, {len(limited)} limited ({first}), slowest 429 {slowest:.2f}s")


async def test_exempt_user_is_not_rate_limited(synapse_default_limits: SynapseServer) -> None:
    bot = await synapse_default_limits.register("exempt-bot")
    await synapse_default_limits.exempt(bot)
    room_id = await mx.create_room(bot, name="exempt")
    timed = await nio_burst(bot, room_id, BURST)
    assert all(isinstance(r, nio.RoomSendResponse) for r, _ in timed), timed


# ------------------------------------------------------------ bare sender
async def test_bare_sender_reaches_twenty_rooms(synapse: SynapseServer) -> None:
    human, bot = await asyncio.gather(synapse.register("bare-human"), synapse.register("bare-bot"))
    await synapse.exempt(bot)
    room_ids = list(
        await asyncio.gather(*(mx.create_room(human, invite=[bot.user_id]) for _ in range(20)))
    )
    await asyncio.gather(*(mx.join(bot, room_id) for room_id in room_ids))
    result = await bare_concurrent_send(
        bot.base_url,
        bot.access_token,
        room_ids,
        concurrency=5,
        body="bare hello",
        user_id=bot.user_id,
        device_id=bot.device_id,
    )
    assert not result.errors and set(result.event_ids) == set(room_ids)
    received = await asyncio.gather(
        *(mx.wait_for_event(human, r, mx.is_text("bare hello", bot.user_id)) for r in room_ids)
    )
    assert {e["event_id"] for e in received} == set(result.event_ids.values())
    print(f"\nbare sender: 20 rooms in {result.elapsed_s:.3f}s")
