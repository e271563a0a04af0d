"""The Telegram transport's lanes: concurrent across chats, ordered within one, staff first,
and an offset that never passes an update neither handled nor spooled (crash safety)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.config import TelegramConfig
from bot.domain import ChatRef, Identity, Incoming
from bot.storage.database import Database
from bot.storage.transport_state import TransportState
from bot.transports.telegram import SPOOL, TelegramTransport
from tests.telegram_double import RateLimits, TelegramDouble

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:lanes-token"
OFFICERS = -20
OFFICER = 7
PEOPLE = range(100, 160)
LOOSE = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)


def config(double: TelegramDouble) -> TelegramConfig:
    return TelegramConfig(enabled=True, token=TOKEN, base_url=double.base_url,
                          base_file_url=double.base_file_url, officers_chat_id=OFFICERS,
                          poll_timeout=1)


def officers_only(sender: Identity, chat: ChatRef) -> bool:
    return chat.chat_id == str(OFFICERS)


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(TOKEN, "alerte_lanes_bot", limits=LOOSE) as running:
        running.user(OFFICER, "Officier")
        for person in PEOPLE:
            running.user(person, f"P{person}")
        running.group(OFFICERS, "Officiers", members=[OFFICER])
        yield running


@pytest.fixture
async def state() -> AsyncIterator[TransportState]:
    db = await Database.open(":memory:")
    yield TransportState(db, "telegram")
    await db.close()


class Core:
    """Stands for Core.handle: notes what it handled, may be held, may be slow."""

    def __init__(self) -> None:
        self.handled: list[Incoming] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.most = 0
        self.pause: Callable[[], float] = lambda: 0.0

    async def __call__(self, incoming: Incoming) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
            await asyncio.sleep(self.pause())
            self.handled.append(incoming)
        finally:
            self.running -= 1

    def texts(self, chat: int) -> list[str]:
        return [i.text for i in self.handled if i.chat.chat_id == str(chat)]


async def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def started(double: TelegramDouble, core: Core, state: TransportState | None,
                  staff: Callable[[Identity, ChatRef], bool] = officers_only
                  ) -> TelegramTransport:
    transport = TelegramTransport(config(double), state=state)
    await transport.start(core, staff)
    return transport


async def stopping(transport: TelegramTransport, then: Callable[[], Awaitable[None]]) -> None:
    try:
        await then()
    finally:
        await transport.stop()


async def test_chats_concurrently_each_in_order(double: TelegramDouble,
                                                state: TransportState) -> None:
    core, rng = Core(), random.Random(14)
    core.pause = lambda: rng.random() / 100
    for n in range(10):
        for person in PEOPLE:
            await double.send_text(person, f"{person}-{n}")
    transport = await started(double, core, state)

    async def check() -> None:
        await until(lambda: len(core.handled) == 10 * len(PEOPLE), "every update handled")
        for person in PEOPLE:
            assert core.texts(person) == [f"{person}-{n}" for n in range(10)]
        assert core.most > 1  # several chats at once
        await until(lambda: not double.pending_updates, "every update confirmed")

    await stopping(transport, check)
    assert await state.starting_with(SPOOL) == []  # all handled: the spool is empty


async def test_an_officer_is_handled_before_the_public_backlog(
        double: TelegramDouble, state: TransportState) -> None:
    core = Core()
    core.gate.clear()
    transport = await started(double, core, state)

    async def check() -> None:
        for n in range(5):
            for person in PEOPLE:  # 300 updates from 60 people waiting
                await double.send_text(person, f"{person}-{n}")
        await double.send_text(OFFICER, "/valider 1", OFFICERS)
        # Read past the public backlog (beyond getUpdates' 100), so the officer is seen.
        await until(lambda: transport.lanes.pending == 5 * len(PEOPLE) + 1, "all taken")
        core.gate.set()
        await until(lambda: len(core.handled) == 5 * len(PEOPLE) + 1, "every update handled")
        position = [i.chat.chat_id for i in core.handled].index(str(OFFICERS))
        assert position <= transport.lanes.workers, position  # only those already running

    await stopping(transport, check)


async def test_the_offset_passes_only_updates_handled_or_spooled(
        double: TelegramDouble, state: TransportState) -> None:
    """A crash (here: a stop that drops what waits) loses nothing the offset confirmed."""
    person = PEOPLE[0]
    first = Core()
    first.gate.clear()
    transport = await started(double, first, state)
    for n in range(5):
        await double.send_text(person, f"pas {n}")
    # Taken, and confirmed to Telegram by the next getUpdates: so they must be in the spool.
    await until(lambda: not double.pending_updates and first.running == 1, "confirmed")
    spooled = await state.starting_with(SPOOL)
    assert [u["message"]["text"] for _, value in spooled for u in json.loads(value)] == [
        f"pas {n}" for n in range(5)]
    stopping_task = asyncio.create_task(transport.stop())  # "pas 0" runs; the rest waits
    await asyncio.sleep(0.05)
    first.gate.set()
    await asyncio.wait_for(stopping_task, 10)
    assert first.texts(person) == ["pas 0"]
    assert await state.starting_with(SPOOL) != []  # the dropped ones stay spooled

    second = Core()
    transport = await started(double, second, state)

    async def check() -> None:
        await double.send_text(person, "après")
        await until(lambda: "après" in second.texts(person), "the new update")
        # All of the spool first, in order ("pas 0" again: the core's inbox skips it).
        assert second.texts(person) == [f"pas {n}" for n in range(5)] + ["après"]
        await until(lambda: not transport._janitors, "the spool cleaned")
        assert await state.starting_with(SPOOL) == []

    await stopping(transport, check)


async def test_without_a_spool_the_offset_waits_for_handling(double: TelegramDouble) -> None:
    core = Core()
    core.gate.clear()
    transport = await started(double, core, None)

    async def check() -> None:
        for person in PEOPLE[:3]:
            await double.send_text(person, "bonjour")
        await until(lambda: core.running == 3, "three chats handled at once")
        await asyncio.sleep(1.5)  # a whole long poll: still not confirmed
        assert len(double.pending_updates) == 3
        core.gate.set()
        await until(lambda: not double.pending_updates, "confirmed once handled")

    await stopping(transport, check)


async def test_a_malformed_update_does_not_hold_the_others(double: TelegramDouble,
                                                          state: TransportState) -> None:
    core = Core()
    transport = await started(double, core, state)
    taken: dict[int, int] = defaultdict(int)
    original = transport._take

    def counting(app: object, data: dict[str, object]) -> object:
        taken[0] += 1
        if taken[0] == 1:
            data = {**data, "message": {"not": "a message"}}  # PTB cannot read it
        return original(app, data)  # type: ignore[arg-type]

    transport._take = counting  # type: ignore[assignment,method-assign]

    async def check() -> None:
        await double.send_text(PEOPLE[0], "illisible")
        await double.send_text(PEOPLE[0], "lisible")
        await until(lambda: core.texts(PEOPLE[0]) == ["lisible"], "the readable one")
        await until(lambda: not double.pending_updates, "both confirmed")

    await stopping(transport, check)
