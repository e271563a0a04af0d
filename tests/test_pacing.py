"""Pacing per platform, chat and group; 429 scopes; streaming resolution; progress."""

from __future__ import annotations

import asyncio
import bisect
import heapq
from collections.abc import Awaitable
from pathlib import Path

import pytest

from benchmarks.botproc import FIRST_SUBSCRIBER, subscriber_chat
from bot.broadcast import outbox
from bot.broadcast.pacing import SLICE, Pacer, Priority
from bot.clock import Clock
from bot.config import BroadcastConfig, PlatformRateLimits, RateLimitsConfig
from bot.transports.base import RateLimited
from tests.harness import OFFICERS, TestBot, test_config

OPERATOR, OFFICER = "telegram:100", "telegram:200"


async def seeded_bot(tmp_path: Path, subscribers: int, limits: PlatformRateLimits,
                     background: bool = False, resolution_slice: int = 10_000) -> TestBot:
    from benchmarks.core import seed_subscribers

    config = test_config(tmp_path / "db.sqlite3",
                         rate_limits=RateLimitsConfig(limits, limits, limits),
                         broadcast=BroadcastConfig(resolution_slice=resolution_slice))
    bot = await TestBot(config, background_dispatch=background).start()
    await seed_subscribers(bot, subscribers, ["70550"])
    return bot


async def approve(bot: TestBot, text: str = "/alerte crue Vesoul : Montée des eaux") -> None:
    await bot.say(OPERATOR, text)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)


def recipients_times(bot: TestBot) -> list[float]:
    return [t for t, chat in bot.transports["telegram"].send_times if chat not in (
        OFFICERS, "100", "200")]


async def test_global_rate_is_never_exceeded(tmp_path: Path) -> None:
    bot = await seeded_bot(tmp_path, 45, PlatformRateLimits(30, 1e6, 1e6))
    try:
        await approve(bot)
        await bot.drain(timeout=30)
        times = recipients_times(bot)
        assert len(times) == 45
        # 3 may leave at once (a tenth of a second's budget), then 30 per second.
        assert times[-1] - times[0] >= (45 - 3) / 30 - 0.05
        window = [b - a for a, b in zip(times, times[9:], strict=False)]
        assert min(window) >= (10 - 3) / 30 - 0.01  # no 10 messages closer than the budget
    finally:
        await bot.stop()


async def test_one_chat_is_paced_without_slowing_the_others(tmp_path: Path) -> None:
    bot = await seeded_bot(tmp_path, 0, PlatformRateLimits(1e6, 2, 1e6, per_chat_burst=3))
    pacer = bot.core.core.dispatcher.pacers["telegram"]
    started, really_started = bot.clock.monotonic(), asyncio.get_running_loop().time()
    for _ in range(3):
        await pacer.acquire("A", is_group=False)
    assert bot.clock.monotonic() - started < 0.01  # its burst: three at once
    for _ in range(2):
        await pacer.acquire("A", is_group=False)
    await pacer.acquire("B", is_group=False)
    elapsed_b = bot.clock.monotonic() - started
    await bot.stop()
    assert 1.0 <= elapsed_b < 1.1  # A's next two waited 2 × 0.5 s; B came right after
    assert asyncio.get_running_loop().time() - really_started < 0.5  # on the bot's clock


async def test_group_budget_is_per_minute(tmp_path: Path) -> None:
    bot = await seeded_bot(tmp_path, 0, PlatformRateLimits(1e6, 1e6, 120))  # 2 per second
    pacer = bot.core.core.dispatcher.pacers["telegram"]
    started = bot.clock.monotonic()
    for _ in range(120):  # a minute's worth at once
        await pacer.acquire("-100", is_group=True)
    assert bot.clock.monotonic() - started < 0.01
    for _ in range(2):  # then one every half second
        await pacer.acquire("-100", is_group=True)
    assert 1.0 <= bot.clock.monotonic() - started < 1.1
    await pacer.acquire("-200", is_group=True)  # another group has its own minute
    assert bot.clock.monotonic() - started < 1.1
    await bot.stop()


async def test_a_chat_429_does_not_pause_the_broadcast(tmp_path: Path) -> None:
    bot = await seeded_bot(tmp_path, 20, PlatformRateLimits(1e6, 1e6, 1e6), background=True)
    bot.clock = Clock()  # type: ignore[assignment]
    bot.core.services.clock = Clock()
    first = str(subscriber_chat(1))
    bot.transports["telegram"].failures[first] = [RateLimited(2, chat_only=True)]
    try:
        await approve(bot)
        posted = bot.transports["telegram"].posted
        def served() -> set[str]:
            return {chat for chat, posts in posted.items()
                    if posts and chat.isdigit() and int(chat) > FIRST_SUBSCRIBER}

        for _ in range(100):
            if len(served()) >= 19:
                break
            await asyncio.sleep(0.01)
        assert len(served()) == 19 and first not in served()  # it alone waits its 2 s
    finally:
        await bot.stop()


async def test_a_global_429_pauses_the_platform(tmp_path: Path) -> None:
    bot = await seeded_bot(tmp_path, 0, PlatformRateLimits(1e6, 1e6, 1e6))
    pacer = bot.core.core.dispatcher.pacers["telegram"]
    pacer.pause(0.6)
    started = bot.clock.monotonic()
    await pacer.acquire("anyone", is_group=False)
    assert 0.6 <= bot.clock.monotonic() - started < 0.65
    await bot.stop()


class CountingClock(Clock):
    """The real clock, counting the sleeps asked of it."""

    def __init__(self) -> None:
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        await super().sleep(seconds)


async def test_callers_queued_for_the_global_budget_sleep_once_each() -> None:
    from bot.broadcast.pacing import Pacer

    clock = CountingClock()
    pacer = Pacer(PlatformRateLimits(2000, 1e6, 1e6), clock)  # 200 at once, then 2,000/s
    await asyncio.gather(*(pacer.acquire(str(chat), is_group=False) for chat in range(250)))
    # The 50 beyond the burst wait on the real clock (25 ms): about one sleep each (twice
    # at worst, for a wake-up a hair early). Waiters that all woke to try again slept
    # about 50 × 49 / 2 times: 16 wake-ups per message at 1,000 msg/s, a quarter of the
    # bot's CPU per message.
    assert clock.sleeps <= 2 * 50


async def test_recipients_are_written_in_chunks_and_resume_after_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "FIRST_SLICE", 10)
    bot = await seeded_bot(tmp_path, 60, PlatformRateLimits(1e6, 1e6, 1e6), resolution_slice=25)
    try:
        await approve(bot)
        db = bot.core.services.db
        assert await db.fetchval("SELECT count(*) FROM deliveries") == 10
        assert "60 destinataires" in bot.inbox(OPERATOR)[-1]
        await bot.core.core.dispatcher.resolve_once()
        assert await db.fetchval("SELECT count(*) FROM deliveries") == 35
        await bot.restart()
        await bot.drain()
        db = bot.core.services.db  # the restart opened the database again
        assert await db.fetchval("SELECT count(*) FROM deliveries") == 60
        assert "60 envoyés, 0 échec, 0 bloqué sur 60" in bot.officers()[-1]
    finally:
        await bot.stop()


async def test_pacer_forgets_passed_chats_during_a_long_broadcast() -> None:
    from bot.broadcast.pacing import SWEEP_ABOVE

    pacer = Pacer(PlatformRateLimits(1e9, 1e9, 1e9))  # slots pass at once: all forgettable
    for chat in range(3 * SWEEP_ABOVE):
        await pacer.acquire(str(chat), is_group=False)
    assert len(pacer) <= SWEEP_ABOVE
    slow = Pacer(PlatformRateLimits(1e9, 1e-3, 1e9))  # every slot still ahead: all kept
    for chat in range(SWEEP_ABOVE + 10):
        await slow.acquire(str(chat), is_group=False)
    assert len(slow) == SWEEP_ABOVE + 10


# id: (communes, communities, status). Ids with gaps so slices are uneven, a subscriber in
# two of the alert's communes, others outside the communes, the community, or paused.
MIXED_SUBSCRIBERS = {
    1: (["70550"], ["commercant"], "active"),
    2: (["70279"], ["commercant"], "active"),
    3: (["70550", "70279"], ["commercant", "elu"], "active"),
    5: (["70550"], ["agriculteur"], "active"),
    8: (["70550"], ["commercant"], "paused"),
    13: (["70279"], ["agriculteur", "commercant"], "active"),
    14: (["70550"], ["elu", "commercant"], "active"),
    40: (["70001"], ["commercant"], "active"),
    41: (["70550"], ["commercant"], "blocked"),
    97: (["70550"], ["commercant"], "active"),
}


async def test_slices_write_exactly_the_matching_subscribers_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "FIRST_SLICE", 2)
    bot = await seeded_bot(tmp_path, 0, PlatformRateLimits(1e6, 1e6, 1e6), resolution_slice=7)
    try:
        db = bot.core.services.db
        for sid, (communes, communities, status) in MIXED_SUBSCRIBERS.items():
            await db.execute("INSERT INTO subscribers (id, platform, platform_user_id, chat_id,"
                             " status, consent_at, consent_version, created_at, updated_at)"
                             " VALUES (?, 'telegram', ?, ?, ?, 'x', 'v', 'x', 'x')",
                             (sid, str(9000 + sid), str(9000 + sid), status))
            for insee in communes:
                await db.execute("INSERT INTO subscriber_communes VALUES (?, ?)", (sid, insee))
            for community in communities:
                await db.execute("INSERT INTO subscriber_communities VALUES (?, ?)",
                                 (sid, community))
        await approve(bot, "/alerte cambriolage Vesoul, Gray pour commercant : Vitrine forcée")
        assert "6 destinataires" in bot.inbox(OPERATOR)[-1]
        while await bot.core.core.dispatcher.resolve_once():
            pass
        rows = await db.fetchall("SELECT recipient_id FROM deliveries ORDER BY recipient_id")
        assert [row[0] for row in rows] == [1, 2, 3, 13, 14, 97]
    finally:
        await bot.stop()


async def test_recipients_on_a_platform_not_running_fail_and_the_report_comes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.botproc import seed_database

    monkeypatch.setattr(outbox, "FIRST_SLICE", 3)
    config = test_config(tmp_path / "db.sqlite3",
                         broadcast=BroadcastConfig(resolution_slice=4))
    bot = await TestBot(config, platforms=("telegram",)).start()
    try:
        db = bot.core.services.db
        await seed_database(db, 10, ["70550"])
        await db.execute("UPDATE subscribers SET platform = 'matrix' WHERE id IN (2, 9)")
        await approve(bot)
        await bot.drain()
        assert "8 envoyés, 2 échecs, 0 bloqué sur 10" in bot.officers()[-1]
        errors = await db.fetchall("SELECT DISTINCT last_error FROM deliveries"
                                   " WHERE status = 'failed'")
        assert [row[0] for row in errors] == ["platform matrix is not running"]
    finally:
        await bot.stop()


async def test_long_broadcast_has_an_edited_progress_message_and_a_rate_report(
        tmp_path: Path) -> None:
    bot = await seeded_bot(tmp_path, 150, PlatformRateLimits(1e6, 1e6, 1e6))
    try:
        await approve(bot)
        dispatcher = bot.core.core.dispatcher
        await dispatcher.run_once("telegram")
        await dispatcher.post_progress()
        posted = bot.transports["telegram"].posted[OFFICERS]
        progress = [p for p in posted if "⏳ Diffusion alerte n°1" in p.message.text]
        assert len(progress) == 1 and "/150 traités" in progress[0].message.text
        bot.advance(seconds=3)
        await bot.drain()
        assert "150 envoyés" in progress[0].current.text  # edited into the final report
        report = bot.officers()[-1]
        assert "Cadence moyenne : 50,0 messages/s" in report
        assert "plafonds réglés (telegram 1\u202f000\u202f000/s" in report
    finally:
        await bot.stop()


# -- priorities: replies and alert copies share one budget ------------------------------------


class SteppedClock(Clock):
    """The bot's clock, stepped by the test: a sleep waits until ``run`` moves time to its
    end, once every task is waiting. Unlike FrozenClock, sleeps of several tasks at once
    overlap as they do in real time, so rates and orders are those of a real run."""

    def __init__(self) -> None:
        self._time = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    def monotonic(self) -> float:
        return self._time

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._timers, (self._time + seconds, self._count, future))
        await future

    async def run(self, *work: Awaitable[None]) -> None:
        """Run ``work`` to its end, moving time to the next timer whenever all wait."""
        done = asyncio.ensure_future(asyncio.gather(*work))
        while True:
            for _ in range(200):  # let every woken task run until it waits again
                await asyncio.sleep(0)
            if done.done():
                done.result()  # raises what the work raised
                return
            assert self._timers, "everything waits, and no timer will wake it"
            self._time, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)


async def test_waiting_replies_take_the_budget_before_waiting_copies() -> None:
    clock = SteppedClock()
    pacer = Pacer(PlatformRateLimits(10, 1e6, 1e6), clock)  # one slot per 0.1 s
    granted: list[Priority] = []

    async def send(chat: str, priority: Priority) -> None:
        await pacer.acquire(chat, is_group=False, priority=priority)
        granted.append(priority)

    async def broadcast_then_replies() -> None:
        copies = [asyncio.create_task(send(f"copy{n}", Priority.BULK)) for n in range(20)]
        await asyncio.sleep(0)  # the copies queue first
        await asyncio.gather(*copies,
                             *(send(f"person{n}", Priority.CONVERSATION) for n in range(4)),
                             *(send(f"officer{n}", Priority.STAFF) for n in range(2)))

    await clock.run(broadcast_then_replies())
    # The first copy found the budget free; then the officers, the people, the copies.
    assert granted == [Priority.BULK, *[Priority.STAFF] * 2, *[Priority.CONVERSATION] * 4,
                       *[Priority.BULK] * 19]
    assert clock.monotonic() == pytest.approx(2.5)  # 26 slots at 10/s, the first at once


async def test_copies_take_what_replies_leave_and_the_budget_is_never_exceeded() -> None:
    rate, reply_every, until = 20.0, 0.25, 10.0  # replies: 4/s of a 20/s budget
    clock = SteppedClock()
    pacer = Pacer(PlatformRateLimits(rate, 1e6, 1e6), clock)
    grants: list[tuple[float, Priority]] = []
    reply_waits: list[float] = []

    async def send(chat: str, priority: Priority) -> None:
        asked = clock.monotonic()
        await pacer.acquire(chat, is_group=False, priority=priority)
        grants.append((clock.monotonic(), priority))
        if priority is Priority.CONVERSATION:
            reply_waits.append(clock.monotonic() - asked)

    async def broadcast() -> None:
        # A dispatcher's in-flight window: 8 copies waiting at any time.
        copies = iter(range(1_000_000))
        running: set[asyncio.Task[None]] = set()
        while clock.monotonic() < until:
            while len(running) < 8:
                task = asyncio.create_task(send(f"copy{next(copies)}", Priority.BULK))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in running:
            task.cancel()

    async def people() -> None:
        for n in range(int(until / reply_every)):
            await asyncio.gather(send(f"person{n}", Priority.CONVERSATION),
                                 clock.sleep(reply_every))

    await clock.run(broadcast(), people())
    replies = [t for t, p in grants if p is Priority.CONVERSATION]
    copies = [t for t, p in grants if p is Priority.BULK]
    assert len(replies) == until / reply_every
    assert max(reply_waits) <= 1 / rate + 1e-9  # one slot at most, never behind the copies
    # The copies had the rest: the budget minus the replies, give or take the first burst.
    assert len(copies) >= (rate - 1 / reply_every) * until - 2
    # And together never above the budget: in any second, a second's worth plus the burst.
    times = sorted(t for t, _ in grants)
    for index, start in enumerate(times):
        within = bisect.bisect_right(times, start + 1.0 - 1e-9) - index
        assert within <= rate * (1.0 + SLICE) + 1e-6, (start, within)


async def test_a_reply_to_a_chat_that_just_got_a_copy_waits_its_turn() -> None:
    clock = SteppedClock()
    # 1/s per chat (2 at once), 20/min per group.
    pacer = Pacer(PlatformRateLimits(1e6, 1, 20, per_chat_burst=2), clock)

    async def in_turn() -> None:
        await pacer.acquire("A", is_group=False, priority=Priority.BULK)
        await pacer.acquire("A", is_group=False, priority=Priority.STAFF)  # its burst
        assert clock.monotonic() == 0.0
        await pacer.acquire("A", is_group=False, priority=Priority.STAFF)
        assert clock.monotonic() == pytest.approx(1.0)
        for _ in range(20):
            await pacer.acquire("G", is_group=True, priority=Priority.BULK)
        await pacer.acquire("G", is_group=True, priority=Priority.CONVERSATION)
        assert clock.monotonic() == pytest.approx(4.0)  # the group's minute was taken

    await clock.run(in_turn())


async def test_a_more_urgent_message_to_the_same_chat_keeps_the_chats_interval() -> None:
    clock = SteppedClock()
    # Slots every 0.5 s; one message a second to a chat, no burst.
    pacer = Pacer(PlatformRateLimits(2, 1, 1e6, per_chat_burst=1), clock)
    sent: list[tuple[float, str, Priority]] = []

    async def send(chat: str, priority: Priority) -> None:
        await pacer.acquire(chat, is_group=False, priority=priority)
        sent.append((clock.monotonic(), chat, priority))

    # The copy to A waits behind the copy to B; the reply to A comes meanwhile and goes
    # first, so the copy to A then waits a second more.
    await clock.run(send("B", Priority.BULK), send("A", Priority.BULK),
                    send("C", Priority.BULK), send("A", Priority.CONVERSATION))
    assert [(t, chat) for t, chat, _ in sent] == [
        (0.0, "B"), (0.5, "A"), (1.0, "C"), (1.5, "A")]
    assert [p for _, chat, p in sent if chat == "A"] == [Priority.CONVERSATION, Priority.BULK]


async def test_a_pause_holds_every_priority() -> None:
    clock = SteppedClock()
    pacer = Pacer(PlatformRateLimits(1e6, 1e6, 1e6), clock)
    pacer.pause(2.0)
    assert pacer.expected_wait("anyone") == 2.0
    await clock.run(pacer.acquire("anyone", is_group=False, priority=Priority.STAFF))
    assert clock.monotonic() == pytest.approx(2.0)
