"""The Matrix transport's lanes: syncs pipelined, rooms concurrently, each in order, staff
first, and a sync token saved only once its events and every earlier sync's are handled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from bot.config import MatrixConfig
from bot.domain import ChatRef, Identity, Incoming
from bot.storage.database import Database
from bot.storage.transport_state import TransportState
from bot.transports.matrix import NEXT_BATCH, MatrixTransport

BOT = "@alertes:test"
OFFICER = "@officier:test"


def event(room: str, sender: str, body: str) -> SimpleNamespace:
    return SimpleNamespace(source={
        "type": "m.room.message", "sender": sender, "event_id": f"${room}-{body}",
        "origin_server_ts": 10**13, "content": {"msgtype": "m.text", "body": body}})


def sync(token: str, timelines: dict[str, list[SimpleNamespace]]) -> SimpleNamespace:
    join = {room: SimpleNamespace(timeline=SimpleNamespace(events=events))
            for room, events in timelines.items()}
    return SimpleNamespace(account_data_events=[], next_batch=token,
                           rooms=SimpleNamespace(join=join, leave={}, invite={}))


class Core:
    """Stands for Core.handle; the texts in ``held`` wait until released."""

    def __init__(self) -> None:
        self.handled: list[Incoming] = []
        self.held: dict[str, asyncio.Event] = {}

    async def __call__(self, incoming: Incoming) -> None:
        gate = self.held.get(incoming.text)
        if gate is not None:
            await gate.wait()
        self.handled.append(incoming)

    def texts(self, room: str | None = None) -> list[str]:
        return [i.text for i in self.handled if room is None or i.chat.chat_id == room]


@pytest.fixture
async def state() -> AsyncIterator[TransportState]:
    db = await Database.open(":memory:")
    yield TransportState(db, "matrix")
    await db.close()


async def transport_with(core: Core, state: TransportState) -> MatrixTransport:
    transport = MatrixTransport(MatrixConfig(user_id=BOT, officers_room="!officiers:test"),
                                state, lambda _: False)

    def staff(sender: Identity, chat: ChatRef) -> bool:
        return sender.user_id == OFFICER

    # What start() sets up, without a homeserver: the sync loop is driven by hand.
    transport._on_incoming = core
    transport._staff = staff
    transport._since = "t0"  # not the first sync
    return transport


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_token_waits_for_its_sync_and_every_earlier_one(
        state: TransportState) -> None:
    core = Core()
    core.held["a2"] = asyncio.Event()
    transport = await transport_with(core, state)
    transport._take_sync(sync("t1", {"!a:test": [event("!a:test", "@p:test", "a1"),
                                                 event("!a:test", "@p:test", "a2")],
                                     "!b:test": [event("!b:test", "@q:test", "b1")]}))
    transport._take_sync(sync("t2", {"!a:test": [event("!a:test", "@p:test", "a3")],
                                     "!c:test": [event("!c:test", "@r:test", "c1")]}))
    await settle()
    # Other rooms went on, the second sync's too; room a waits at a2, and so do both tokens.
    assert sorted(core.texts()) == ["a1", "b1", "c1"]
    assert await state.get(NEXT_BATCH) is None
    core.held["a2"].set()
    await asyncio.wait_for(transport._handled(), 5)
    assert core.texts("!a:test") == ["a1", "a2", "a3"]
    assert await state.get(NEXT_BATCH) == "t2" and transport.ready.is_set()
    await transport.lanes.close()


async def test_a_stop_keeps_the_token_of_what_was_not_handled(state: TransportState) -> None:
    core = Core()
    core.held["a1"] = asyncio.Event()
    transport = await transport_with(core, state)
    transport._take_sync(sync("t1", {"!b:test": [event("!b:test", "@q:test", "b1")]}))
    await asyncio.wait_for(transport._handled(), 5)
    transport._take_sync(sync("t2", {"!a:test": [event("!a:test", "@p:test", "a1"),
                                                 event("!a:test", "@p:test", "a2")]}))
    await settle()
    closing = asyncio.create_task(transport.lanes.close())  # a2 dropped, a1 finishes
    await settle()
    core.held["a1"].set()
    await asyncio.wait_for(closing, 5)
    await asyncio.wait_for(transport._handled(), 5)
    assert core.texts() == ["b1", "a1"]
    assert await state.get(NEXT_BATCH) == "t1"  # t2 replays a1 (skipped by the inbox) and a2


async def test_an_officer_goes_before_the_rooms_waiting(state: TransportState) -> None:
    core = Core()
    gate = core.held["x"] = asyncio.Event()
    transport = await transport_with(core, state)
    transport.lanes.workers = 1
    busy: dict[str, list[Any]] = {"!busy:test": [event("!busy:test", "@p:test", "x")]}
    people = {f"!p{n}:test": [event(f"!p{n}:test", f"@p{n}:test", f"m{n}")] for n in range(50)}
    transport._take_sync(sync("t1", {**busy, **people}))
    await settle()  # the one worker holds "x"
    transport._take_sync(sync("t2", {"!dm-officier:test": [
        event("!dm-officier:test", OFFICER, "/valider 3")]}))
    await settle()
    gate.set()
    await asyncio.wait_for(transport._handled(), 5)
    assert core.texts()[:2] == ["x", "/valider 3"]
    assert len(core.handled) == 52
    await transport.lanes.close()
