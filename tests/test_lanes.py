"""bot/lanes.py: order within a key, concurrency across keys, staff first, fairness, bounds."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Hashable

import pytest

from bot.domain import ChatRef, Identity
from bot.lanes import Job, Lane, Lanes, lane_of, nobody
from tests.harness import OFFICERS, TestBot


class Recorder:
    """Jobs that note when they start and finish, and how many run at once."""

    def __init__(self) -> None:
        self.started: list[tuple[Hashable, int]] = []
        self.finished: dict[Hashable, list[int]] = defaultdict(list)
        self.running = 0
        self.most = 0
        self.gate = asyncio.Event()
        self.gate.set()

    def job(self, key: Hashable, number: int, pause: float = 0.0) -> Job:
        async def run() -> None:
            self.started.append((key, number))
            self.running += 1
            self.most = max(self.most, self.running)
            await self.gate.wait()
            await asyncio.sleep(pause)
            self.running -= 1
            self.finished[key].append(number)
        return run


async def test_each_key_in_order_while_keys_run_concurrently() -> None:
    lanes, seen, rng = Lanes(workers=8), Recorder(), random.Random(14)
    futures = [lanes.put(f"chat{chat}", Lane.PUBLIC, seen.job(f"chat{chat}", n,
                                                              rng.random() / 200))
               for n in range(20) for chat in range(30)]
    await asyncio.wait_for(asyncio.gather(*futures), 30)
    assert all(seen.finished[f"chat{chat}"] == list(range(20)) for chat in range(30))
    assert 1 < seen.most <= 8  # concurrent, never beyond the workers
    assert lanes.pending == 0


async def test_staff_first_whatever_the_public_backlog() -> None:
    lanes, seen = Lanes(workers=2), Recorder()
    seen.gate.clear()
    public = [lanes.put(f"person{n}", Lane.PUBLIC, seen.job(f"person{n}", 0))
              for n in range(2_000)]
    await asyncio.sleep(0)  # the two workers are busy with the first two people
    staff = lanes.put("officers", Lane.STAFF, seen.job("officers", 0))
    seen.gate.set()
    await asyncio.wait_for(staff, 10)
    assert seen.started.index(("officers", 0)) == 2  # right after the two already running
    await asyncio.wait_for(asyncio.gather(*public), 30)


async def test_a_staff_event_promotes_its_chat_but_keeps_its_order() -> None:
    lanes, seen = Lanes(workers=1), Recorder()
    seen.gate.clear()
    lanes.put("busy", Lane.PUBLIC, seen.job("busy", 0))
    await asyncio.sleep(0)  # the one worker holds "busy"
    for n in range(5):
        lanes.put(f"person{n}", Lane.PUBLIC, seen.job(f"person{n}", 0))
    lanes.put("group", Lane.PUBLIC, seen.job("group", 0))  # someone in a group...
    lanes.put("group", Lane.STAFF, seen.job("group", 1))  # ...then an operator there
    seen.gate.set()
    await asyncio.wait_for(lanes.join(), 10)
    order = seen.started
    assert order[:3] == [("busy", 0), ("group", 0), ("group", 1)]
    assert len(order) == 8


async def test_the_public_take_turns() -> None:
    lanes, seen = Lanes(workers=1), Recorder()
    seen.gate.clear()
    lanes.put("chatty", Lane.PUBLIC, seen.job("chatty", 0))
    await asyncio.sleep(0)
    for n in range(1, 100):
        lanes.put("chatty", Lane.PUBLIC, seen.job("chatty", n))
    for n in range(10):
        lanes.put(f"person{n}", Lane.PUBLIC, seen.job(f"person{n}", 0))
    seen.gate.set()
    await asyncio.wait_for(lanes.join(), 10)
    # One event per turn: the ten others are all served within the first dozen.
    others = [i for i, (key, _) in enumerate(seen.started) if key != "chatty"]
    assert max(others) <= 11, others
    assert seen.finished["chatty"] == list(range(100))


async def test_room_holds_the_receiver_back_while_full() -> None:
    lanes, seen = Lanes(workers=2, capacity=10), Recorder()
    seen.gate.clear()
    for n in range(10):
        lanes.put(f"person{n}", Lane.PUBLIC, seen.job(f"person{n}", 0))
    assert lanes.free() == 0
    waiting = asyncio.create_task(lanes.room(5))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # full: the receiver fetches nothing more
    seen.gate.set()
    await asyncio.wait_for(waiting, 10)
    assert lanes.pending <= 5
    await lanes.join()
    await asyncio.wait_for(lanes.room(50), 1)  # more than the capacity: once empty


async def test_close_drops_what_waits_and_lets_what_runs_finish() -> None:
    lanes, seen = Lanes(workers=1), Recorder()
    seen.gate.clear()
    running = lanes.put("a", Lane.PUBLIC, seen.job("a", 0))
    await asyncio.sleep(0)
    queued = lanes.put("b", Lane.PUBLIC, seen.job("b", 0))
    closing = asyncio.create_task(lanes.close())
    await asyncio.sleep(0.05)
    assert not closing.done() and queued.cancelled()  # waits for "a" only
    seen.gate.set()
    await asyncio.wait_for(closing, 5)
    assert running.done() and not running.cancelled()
    assert seen.finished == {"a": [0]} and lanes.pending == 0
    assert lanes.put("c", Lane.PUBLIC, seen.job("c", 0)).cancelled()  # closed
    lanes.reopen()
    await asyncio.wait_for(lanes.put("c", Lane.PUBLIC, seen.job("c", 0)), 5)


async def test_a_failing_job_is_logged_and_the_chat_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    lanes, seen = Lanes(workers=2, name="test"), Recorder()

    async def broken() -> None:
        raise RuntimeError("handler bug")

    failed = lanes.put("a", Lane.PUBLIC, broken)
    after = lanes.put("a", Lane.PUBLIC, seen.job("a", 1))
    await asyncio.wait_for(asyncio.gather(failed, after), 5)
    assert seen.finished["a"] == [1]
    assert any("test: an event could not be handled" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


async def test_a_put_right_after_the_workers_went_idle_still_runs() -> None:
    lanes, seen = Lanes(workers=1), Recorder()
    for round_ in range(50):
        await asyncio.wait_for(lanes.put("a", Lane.PUBLIC, seen.job("a", round_)), 5)
    assert seen.finished["a"] == list(range(50))


def test_lane_of_asks_the_staff_test() -> None:
    officer, room = Identity("matrix", "@o:x"), ChatRef("matrix", "!r:x")
    assert lane_of(lambda who, chat: who == officer, officer, room) is Lane.STAFF
    assert lane_of(nobody, officer, room) is Lane.PUBLIC
    with pytest.raises(ValueError):
        Lanes(workers=0)


# -- the core under lanes: decisions and the staff test ------------------------------------

ALERT = "/alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée rue Carnot"
OPERATOR, OFFICER, MATRIX_OFFICER = "telegram:100", "telegram:200", "matrix:@officer:test"


async def test_two_officers_deciding_at_once_do_not_interleave(bot: TestBot) -> None:
    """Their channels are two chats, so two lanes: the decision's transaction decides."""
    await bot.say(OPERATOR, ALERT)
    replies = await asyncio.gather(bot.say(OFFICER, "/valider 1", chat=OFFICERS),
                                   bot.say(MATRIX_OFFICER, "/valider 1", chat=OFFICERS))
    assert sum("validée : diffusion" in reply for reply in replies) == 1, replies
    assert sum("n'est plus en attente" in reply for reply in replies) == 1, replies
    transitions = await bot.core.services.stores.alerts.transitions(1)
    assert [t[0] for t in transitions].count("approved") == 1


async def test_the_core_says_who_is_staff(bot: TestBot) -> None:
    core = bot.core.core
    officers = ChatRef("telegram", OFFICERS)
    assert core.from_staff(Identity("telegram", "1"), officers)  # anyone, in their channel
    assert core.from_staff(Identity("telegram", "200"), ChatRef("telegram", "200"))
    assert not core.from_staff(Identity("telegram", "1"), ChatRef("telegram", "1"))
