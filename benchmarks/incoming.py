"""The incoming path under load (issue 14): people writing to the bot while it works.

The real bot process against the Bot API double, laid out as in ``benchmarks/telegram.py``
(the double and the people in this process, the bot in its own). Here the double's
simulated people drive the bot, each in their private chat, doing what a person does in
Telegram: typing a command or a commune, pressing the buttons of the bot's last message.

* **spike**: N people start enrolling at the same instant and each sends their next answer
  as soon as the bot's previous reply arrives (a closed loop: the bot sets the pace). An
  officer's ``/valider`` goes in 5 s into it. Then, for memory, a second wave of new people.
* **human pace**: people arriving evenly over A seconds, 3 s between their steps, while an
  alert to the seeded subscribers broadcasts at the paid ceiling.
* **receipts**: a share of a broadcast's recipients press « Reçu » a few seconds after
  their copy arrives, while the broadcast runs and after.
* **free tier**: the spike at 30 msg/s (no paid broadcast).

Every figure comes from the double's side: a reply's latency is the time from the person's
update entering the double's queue to the bot's answer being accepted by the double; the
budget used is what the double accepted per second; 429s are the double's answers. Who
enrolled is read from the bot's database at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.botproc import FIRST_SUBSCRIBER, OFFICER, OFFICERS_CHAT, query, subscriber_chat
from benchmarks.telegram import TelegramBench, per_second
from tests.telegram_double import Record, TelegramDouble

PEOPLE_FROM = 30_000_000  # people enrolling: chat ids apart from the seeded subscribers'
NEVER = 3_600.0  # a wait the run's own deadline ends first


def is_subscriber_chat(chat: int) -> bool:
    """A seeded subscriber's chat (``subscriber_chat``): where alert copies go."""
    return FIRST_SUBSCRIBER < chat < PEOPLE_FROM


def is_person_chat(chat: int) -> bool:
    return chat >= PEOPLE_FROM


@dataclass(frozen=True)
class Step:
    """One step of a conversation: what the person does, and what the bot's answer must
    carry for the next step to be possible."""

    typed: str | None = None  # the person types this text
    pressed: str | None = None  # or presses the button with this value (``c:<nonce>:<value>``)
    answer_button: str | None = None  # the answer offers the button with this value
    answer_text: str | None = None  # or its text holds this

    def answered_by(self, record: Record) -> bool:
        if self.answer_button is not None:
            return button_data(record, self.answer_button) is not None
        return self.answer_text is not None and self.answer_text in (record["text"] or "")


# bot/conversations/enrollment.py, as a person goes through it on Telegram: 7 updates, and
# one answer to each (the welcome, the communities, the selection, the communes question,
# the communes kept, the summary, the confirmation).
ENROLLMENT: tuple[Step, ...] = (
    Step(typed="/start", answer_button="yes"),
    Step(pressed="yes", answer_button="t:citoyen"),
    Step(pressed="t:citoyen", answer_text="Sélection"),
    Step(pressed="done", answer_text="Quelles communes"),
    Step(typed="Vesoul", answer_button="done"),
    Step(pressed="done", answer_button="confirm"),
    Step(pressed="confirm", answer_text="C'est fait"),
)


def buttons(record: Record) -> list[str]:
    rows = (record["reply_markup"] or {}).get("inline_keyboard", [])
    return [str(b["callback_data"]) for row in rows for b in row if "callback_data" in b]


def button_data(record: Record, value: str) -> str | None:
    """The data of the conversation button offering ``value`` (``c:<nonce>:<value>``)."""
    for data in buttons(record):
        if data.startswith("c:") and data.split(":", 2)[2] == value:
            return data
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


@dataclass
class Person:
    chat: Any  # Telegram: the private chat's id; Matrix: the room's id
    acted: int = 0  # steps done on the person's side
    answered: int = 0  # of which the bot answered as expected
    wrong: str | None = None  # an answer that did not offer the next step
    finished_at: float | None = None


@dataclass
class Answer:
    acted_at: float  # the person's message left them (Telegram: entered the double's queue)
    answered_at: float  # the answer was accepted by the platform

    @property
    def latency(self) -> float:
        return self.answered_at - self.acted_at


class Crowd(ABC):
    """People going through a conversation of ``length`` steps; ``pause`` seconds between an
    answer and their next step (0: a closed loop). Platforms say how a person acts and how
    the answer is recognised."""

    def __init__(self, people: list[Any], length: int, pause: float = 0.0) -> None:
        self.people: list[Any] = people
        self.length = length
        self.pause = pause
        self.answers: list[Answer] = []
        self.activity = time.time()  # the last act or answer, for stall detection
        self.ended_by = "completed"  # or "deadline", "stalled"
        self.pending_at_end = 0  # updates the bot had not read when the run stopped
        self.stopped = False  # the run is over: nobody acts or counts answers any more

    @abstractmethod
    async def act(self, person: Any, index: int) -> Any:
        """Step ``index`` on the person's side; returns what ``answer`` needs."""

    @abstractmethod
    async def answer(self, person: Any, index: int, mark: Any) -> tuple[float, bool, str]:
        """Waits for the answer: (time accepted by the platform, expected?, its text)."""

    def unread(self) -> int:
        """Updates the platform holds for the bot (unknown: 0)."""
        return 0

    async def run(self, starts: Sequence[float], deadline: float, stall: float) -> None:
        """Everyone, person i from ``starts[i]`` (unix time); stops at ``deadline`` (unix
        time) or when nothing moved for ``stall`` s with nothing left for the bot to read."""
        tasks = [asyncio.create_task(self._go(person, start))
                 for person, start in zip(self.people, starts, strict=True)]
        try:
            while not all(task.done() for task in tasks):
                now = time.time()
                if now > deadline:
                    self.ended_by = "deadline"
                    break
                idle = now - self.activity > stall and now > max(starts, default=now)
                if idle and self.unread() == 0:
                    self.ended_by = "stalled"
                    break
                await asyncio.sleep(0.1)
        finally:
            self.pending_at_end = self.unread()
            self.stopped = True
            await _cancel(tasks)
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, Exception)
                    and not isinstance(o, asyncio.CancelledError)]
        if failures:
            raise failures[0]

    async def _go(self, person: Person, start: float) -> None:
        await sleep_until(start)
        answered_at = math.nan
        for index in range(self.length):
            if index and self.pause:
                await asyncio.sleep(self.pause)
            if self.stopped:
                return
            acted_at = time.time()
            mark = await self.act(person, index)
            person.acted += 1
            self.activity = time.time()
            answered_at, expected, text = await self.answer(person, index, mark)
            if self.stopped:
                return
            self.answers.append(Answer(acted_at, answered_at))
            self.activity = time.time()
            if not expected:
                person.wrong = text[:200]
                return
            person.answered += 1
        person.finished_at = answered_at

    # -- what it looked like -----------------------------------------------------------------

    @property
    def finished(self) -> int:
        return sum(1 for p in self.people if p.finished_at is not None)

    @property
    def waiting(self) -> int:
        """People whose last step got no answer (when the run stopped)."""
        return sum(1 for p in self.people if p.acted > p.answered and p.wrong is None)

    def window(self) -> tuple[float, float]:
        """(first act, last answer): the crowd's busy time."""
        if not self.answers:
            return math.nan, math.nan
        return (min(a.acted_at for a in self.answers),
                max(a.answered_at for a in self.answers))

    def latencies(self, during: tuple[float, float] | None = None) -> list[float]:
        """Every answer's latency; only those acted on within ``during`` if given."""
        return [a.latency for a in self.answers
                if during is None or during[0] <= a.acted_at <= during[1]]

    def summary(self, enrolled: set[Any]) -> dict[str, Any]:
        first, last = self.window()
        span = last - first
        latencies = self.latencies()
        people = {p.chat for p in self.people if p.acted}
        return {"people": len(self.people), "started": len(people),
                "finished": self.finished, "answers": len(self.answers),
                "updates": sum(p.acted for p in self.people),
                "ended_by": self.ended_by, "duration_s": round(span, 2),
                "updates_per_s": round(len(self.answers) / span, 1) if span > 0 else math.nan,
                "latency_p50_s": round(percentile(latencies, 0.5), 3),
                "latency_p99_s": round(percentile(latencies, 0.99), 3),
                "latency_max_s": round(max(latencies, default=math.nan), 3),
                "half_enrolled": len(people - enrolled),
                "waiting_at_end": self.waiting, "pending_at_end": self.pending_at_end,
                "wrong_answers": sum(1 for p in self.people if p.wrong is not None),
                "wrong_example": next((p.wrong for p in self.people if p.wrong), None),
                "answers_per_second": per_second(sorted(a.answered_at for a in self.answers),
                                                 first) if self.answers else []}


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until done: on Python 3.11 ``asyncio.wait_for`` can swallow a cancellation
    that arrives as its wait ends (the task then goes on as if nothing happened)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)


@dataclass
class TelegramPerson(Person):
    last: Record | None = None  # the bot's last answer: the next step presses its buttons


class TelegramCrowd(Crowd):
    """People in their private chats on the Bot API double."""

    def __init__(self, double: TelegramDouble, chats: Iterable[int], pause: float = 0.0,
                 steps: tuple[Step, ...] = ENROLLMENT) -> None:
        super().__init__([TelegramPerson(chat) for chat in chats], len(steps), pause)
        self.double = double
        self.steps = steps

    def unread(self) -> int:
        return len(self.double.world.updates)

    async def act(self, person: TelegramPerson, index: int) -> int:
        """Types or presses; returns the chat's last message id before (the answer's after)."""
        step = self.steps[index]
        mark = self.double.world.chat(person.chat).next_message_id - 1
        if step.typed is not None:
            await self.double.send_text(person.chat, step.typed)
            return mark
        assert step.pressed is not None and person.last is not None
        data = button_data(person.last, step.pressed)
        assert data is not None  # checked by answered_by when the answer came
        await self.double.press(person.chat, person.chat, person.last["message_id"], data)
        return mark

    async def answer(self, person: TelegramPerson, index: int,
                     mark: int) -> tuple[float, bool, str]:
        record = await self.double.wait_for_message(person.chat, after=mark, timeout=NEVER)
        person.last = record
        return float(record["sent_at"]), self.steps[index].answered_by(record), str(
            record["text"])


def enrolled_chats(bench: TelegramBench) -> set[int]:
    """People the bot's database holds as subscribers (the enrollment committed)."""
    rows = query(bench.process.database,
                 "SELECT chat_id FROM subscribers WHERE platform = 'telegram'")
    return {int(chat) for (chat,) in rows if is_person_chat(int(chat))}


def declare_people(double: TelegramDouble, first: int, count: int) -> list[int]:
    chats = [PEOPLE_FROM + first + n for n in range(count)]
    for chat in chats:
        double.user(chat, "Habitant")
    return chats


def least_time(people: int, rate: float, chat_rate: float = 1.0, chat_burst: int = 3) -> float:
    """Seconds the platform's limits require for everyone's enrollment answers: ``rate``
    for the bot, ``chat_rate`` in each chat after a burst of ``chat_burst`` (Telegram's, as
    the double enforces them)."""
    answers = len(ENROLLMENT)
    return max(answers * people / rate, max(0, answers - chat_burst) / chat_rate)


@dataclass
class Budget:
    """How the platform budget was used while an alert broadcast (the double's view)."""

    ceiling: float
    copies: int = 0  # alert copies accepted
    seconds: int = 0  # whole seconds of broadcast measured (first and last left out)
    copies_per_s: float = math.nan
    replies_per_s: float = math.nan  # everything else accepted in those seconds
    started_at: float = math.nan  # first copy
    ended_at: float = math.nan  # last copy
    per_second_copies: list[int] = field(default_factory=list)
    per_second_replies: list[int] = field(default_factory=list)

    @property
    def use(self) -> float:
        """(copies + replies) per second / ceiling: the budget the bot used while it had
        copies to send. Replies count: they share the budget (issue 14, item 3), so the
        broadcast "at the ceiling" is the bot sending ceiling messages a second."""
        return (self.copies_per_s + self.replies_per_s) / self.ceiling

    @classmethod
    def of(cls, double: TelegramDouble, ceiling: float, since: float) -> Budget:
        """From the messages the double accepted after ``since``: alert copies (they carry
        « Reçu ») and everything else (replies, to staff and to people)."""
        budget = cls(ceiling)
        copies = sorted(record["sent_at"] for chat in double.world.chats.values()
                        if is_subscriber_chat(chat.id) for record in chat.sent
                        if record["sent_at"] >= since and _has_receipt_button(record))
        if not copies:
            return budget
        first, last = copies[0], copies[-1]
        sends = Counter(int(t - first) for t, _ in double.stats.accepted_at
                        if first <= t <= last)
        budget.copies, budget.started_at, budget.ended_at = len(copies), first, last
        budget.per_second_copies = per_second(copies, first)
        budget.per_second_replies = [sends[k] - n for k, n in
                                     enumerate(budget.per_second_copies)]
        middle = range(1, int(last - first))  # the start-up and the unfinished last second
        budget.seconds = len(middle)
        if middle:
            budget.copies_per_s = sum(budget.per_second_copies[k] for k in middle) / len(middle)
            budget.replies_per_s = sum(budget.per_second_replies[k]
                                       for k in middle) / len(middle)
        return budget

    def summary(self) -> dict[str, Any]:
        return {"ceiling": self.ceiling, "copies": self.copies, "seconds": self.seconds,
                "copies_per_s": round(self.copies_per_s, 1),
                "replies_per_s": round(self.replies_per_s, 1),
                "use": round(self.use, 4), "duration_s": round(self.ended_at - self.started_at, 2),
                "per_second_copies": self.per_second_copies,
                "per_second_replies": self.per_second_replies}


def first_copy_after(double: TelegramDouble, since: float) -> float:
    """Seconds from ``since`` to the first alert copy the double accepted after it."""
    return min((t - since for t, chat in double.stats.accepted_at
                if t >= since and is_subscriber_chat(chat)), default=math.nan)


def count_429(double: TelegramDouble) -> int:
    return double.stats.count_429


# -- spike: everyone at once, closed loop ---------------------------------------------------------


@dataclass(frozen=True)
class SpikePlan:
    people: int = 2_000
    seeded: int = 1_000  # the existing subscribers the officer's alert goes to
    valider_at: float = 5.0  # seconds into the spike; negative: no alert, no /valider
    second_wave: int = 2_000  # new people after the first wave, for memory (0: none)
    rate: float = 1000.0
    paid: bool = True
    latency: float = 0.0
    deadline: float = 90.0  # seconds a wave may take at most
    # Nothing answered for that long, nothing left unread: the answers were dropped, stop.
    # (A bot that reads everything at once and works through its own backlog still answers
    # someone every few seconds.)
    stall: float = 20.0


async def spike(folder: Path, plan: SpikePlan) -> dict[str, Any]:
    """The enrollment spike; with ``valider_at`` ≥ 0 the officer's ``/valider`` that far
    into it; with ``second_wave`` the bot's memory before and after a second wave."""
    bench = TelegramBench(folder, plan.seeded, rate=plan.rate, paid=plan.paid,
                          latency=plan.latency)
    double = bench.double
    first_wave = declare_people(double, 0, plan.people)
    second_wave = declare_people(double, plan.people, plan.second_wave)
    outcome: dict[str, Any] = {"plan": plan.__dict__}
    async with bench:
        await bench.start_bot()
        if plan.valider_at >= 0:
            await bench.request()
        crowd = TelegramCrowd(double, first_wave)
        start = time.time() + 0.2
        valider = (asyncio.create_task(_valider(bench, start + plan.valider_at))
                   if plan.valider_at >= 0 else None)
        cpu_before = bench.process.cpu()
        await crowd.run([start] * len(first_wave), start + plan.deadline, plan.stall)
        outcome["bot_cpu_s"] = round(bench.process.cpu() - cpu_before, 2)
        if valider is not None:
            outcome["valider"] = await _finish_valider(bench, valider)
        outcome["wave"] = crowd.summary(enrolled_chats(bench))
        outcome["count_429"] = count_429(double)
        outcome["rate_limited"] = dict(double.stats.rate_limited)
        if second_wave:
            outcome["memory"] = await _second_wave(bench, second_wave, plan)
        outcome["bot_log_tail"] = bench.process.log_tail(5)
    return outcome


async def _valider(bench: TelegramBench, at: float) -> float:
    """The officer types /valider 1 at ``at``; returns the acknowledgement's latency."""
    double = bench.double
    await sleep_until(at)
    mark = double.world.chat(OFFICERS_CHAT).next_message_id - 1
    bench.result.approved_at = sent = time.time()
    await double.send_text(OFFICER, "/valider 1", OFFICERS_CHAT)
    record = await double.wait_for_message(
        OFFICERS_CHAT, lambda r: "n°1 validée" in (r["text"] or ""), NEVER, after=mark)
    return float(record["sent_at"]) - sent


async def _finish_valider(bench: TelegramBench, task: asyncio.Task[float],
                          grace: float = 10.0) -> dict[str, Any]:
    """The acknowledgement's and the first copy's delays (NaN: not within the run + grace)."""
    done, _ = await asyncio.wait({task}, timeout=grace)
    acknowledged = task.result() if done else math.nan
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    approved = bench.result.approved_at
    first = first_copy_after(bench.double, approved) if approved else math.nan
    if approved and math.isnan(first):  # the copies may still be on their way
        deadline = time.time() + grace
        while math.isnan(first) and time.time() < deadline:
            await asyncio.sleep(0.05)
            first = first_copy_after(bench.double, approved)
    return {"acknowledged_s": round(acknowledged, 3), "first_copy_s": round(first, 3)}


async def _second_wave(bench: TelegramBench, chats: list[int],
                       plan: SpikePlan) -> dict[str, Any]:
    """VmRSS once the first wave (and its alert) is over, then after ``chats`` enrolled."""
    before = await _settled_rss(bench)
    crowd = TelegramCrowd(bench.double, chats)
    start = time.time() + 0.2
    await crowd.run([start] * len(chats), start + plan.deadline, plan.stall)
    after = await _settled_rss(bench)
    growth = (after - before) / 1024
    return {"people": len(chats), "rss_before_mb": round(before / 1024, 1),
            "rss_after_mb": round(after / 1024, 1), "growth_mb": round(growth, 2),
            "growth_per_2000_mb": round(growth * 2000 / max(len(chats), 1), 2),
            "wave": crowd.summary(enrolled_chats(bench))}


async def _settled_rss(bench: TelegramBench, quiet: float = 2.0, patience: float = 90.0) -> int:
    """VmRSS (kB) once the bot is idle: nothing unread and nothing sent for ``quiet`` s (a
    bot that reads every update at once still works through its backlog after a wave cut
    by its deadline). After ``patience`` s, idle or not: the figure is still the memory."""
    stats = bench.double.stats
    deadline = time.monotonic() + patience
    sent, since = stats.accepted_total, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if stats.accepted_total != sent or len(bench.double.world.updates):
            sent, since = stats.accepted_total, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return bench.process.memory().rss_kb


# -- human pace, while an alert broadcasts -------------------------------------------------------


@dataclass(frozen=True)
class HumanPlan:
    people: int = 2_000
    arrival: float = 60.0  # seconds over which they arrive, evenly
    pause: float = 3.0  # between the bot's answer and the person's next step
    subscribers: int = 20_000  # the alert's recipients
    approve_at: float = 15.0  # seconds after the first arrival
    latency: float = 0.0
    grace: float = 60.0  # beyond the last arrival's expected end, at most


async def human_pace(folder: Path, plan: HumanPlan) -> dict[str, Any]:
    rate = 1000.0
    bench = TelegramBench(folder, plan.subscribers, rate=rate, paid=True, latency=plan.latency)
    chats = declare_people(bench.double, 0, plan.people)
    async with bench:
        await bench.start_bot()
        await bench.request()
        crowd = TelegramCrowd(bench.double, chats, pause=plan.pause)
        start = time.time() + 0.2
        starts = [start + plan.arrival * n / plan.people for n in range(plan.people)]
        approval = asyncio.create_task(_approve_at(bench, start + plan.approve_at))
        end = start + plan.arrival + len(ENROLLMENT) * plan.pause + plan.grace
        await crowd.run(starts, end, stall=20.0)
        await approval
        await bench.wait_report(timeout=max(60.0, plan.subscribers / rate * 3))
        budget = Budget.of(bench.double, rate, bench.result.approved_at)
        wave = crowd.summary(enrolled_chats(bench))
        during = crowd.latencies((budget.started_at, budget.ended_at))
        wave["during_broadcast_p99_s"] = round(percentile(during, 0.99), 3)
        wave["during_broadcast_answers"] = len(during)
        return {"plan": plan.__dict__, "wave": wave, "broadcast": budget.summary(),
                "count_429": count_429(bench.double),
                "rate_limited": dict(bench.double.stats.rate_limited),
                "report": bench._officers_after(0, "Rapport alerte n°1") is not None}


async def _approve_at(bench: TelegramBench, at: float) -> None:
    await sleep_until(at)
    await bench.approve()


# -- receipts during a broadcast ------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptsPlan:
    subscribers: int = 20_000
    share: float = 0.2  # of the recipients press « Reçu »
    # Seconds after their copy arrives, uniformly: people read first. Over a minute, as in
    # the measurement (~70 receipts/s while the broadcast runs).
    delay: tuple[float, float] = (1.0, 60.0)
    after: float = 5.0  # the run watches the broadcast and this many seconds after it
    drain: float = 30.0  # then waits at most this long for the answers to the presses made
    latency: float = 0.0
    seed: int = 14


@dataclass
class Receipt:
    chat: int
    pressed_at: float = math.nan
    answered_at: float = math.nan

    @property
    def pressed(self) -> bool:
        return not math.isnan(self.pressed_at)

    @property
    def latency(self) -> float:
        """Infinite while unanswered: a press nobody answered is worse than any late one."""
        return math.inf if math.isnan(self.answered_at) else self.answered_at - self.pressed_at


async def receipts(folder: Path, plan: ReceiptsPlan) -> dict[str, Any]:
    """The presses that fall within the broadcast and ``after`` s more are measured; the
    people who would press later do not."""
    rate = 1000.0
    rng = random.Random(plan.seed)
    bench = TelegramBench(folder, plan.subscribers, rate=rate, paid=True, latency=plan.latency)
    chosen = rng.sample(range(1, plan.subscribers + 1), round(plan.share * plan.subscribers))
    presses = [Receipt(subscriber_chat(n)) for n in chosen]
    closed = asyncio.Event()
    async with bench:
        await bench.start_bot()
        await bench.request()
        tasks = [asyncio.create_task(_press_receipt(bench.double, r, rng.uniform(*plan.delay),
                                                    closed)) for r in presses]
        try:
            await bench.approve()
            await bench.wait_report(timeout=max(60.0, plan.subscribers / rate * 3))
            await asyncio.sleep(plan.after)
            closed.set()
            await _answered(presses, timeout=plan.drain)
            unread = len(bench.double.world.updates)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        budget = Budget.of(bench.double, rate, bench.result.approved_at)
        noted = int(query(bench.process.database, "SELECT count(*) FROM deliveries WHERE"
                          " alert_id = 1 AND acknowledged_at IS NOT NULL")[0][0])
        pressed = [r for r in presses if r.pressed]
        during = [r.latency for r in pressed if r.pressed_at <= budget.ended_at]
        after = [r.latency for r in pressed if r.pressed_at > budget.ended_at]
        return {"plan": plan.__dict__, "broadcast": budget.summary(),
                "count_429": count_429(bench.double),
                "rate_limited": dict(bench.double.stats.rate_limited),
                "pressed": len(pressed), "noted": noted, "lost": len(pressed) - noted,
                "unanswered": sum(1 for r in pressed if math.isnan(r.answered_at)),
                "unread_at_end": unread,
                "during": len(during), "after": len(after),
                "during_p50_s": round(percentile(during, 0.5), 3),
                "during_p99_s": round(percentile(during, 0.99), 3),
                "after_p99_s": round(percentile(after, 0.99), 3),
                "presses_per_second": per_second(sorted(r.pressed_at for r in pressed),
                                                 bench.result.approved_at)}


async def _answered(presses: list[Receipt], timeout: float) -> None:
    """Until every press made has its answer, ``timeout`` s at most."""
    deadline = time.time() + timeout
    while time.time() < deadline and any(r.pressed and math.isnan(r.answered_at)
                                         for r in presses):
        await asyncio.sleep(0.05)


async def _press_receipt(double: TelegramDouble, receipt: Receipt, delay: float,
                         closed: asyncio.Event) -> None:
    """Waits for the alert's copy, reads it ``delay`` s, presses « Reçu » (unless the run
    is over), waits for the thanks."""
    copy = await double.wait_for_message(receipt.chat, _has_receipt_button, NEVER)
    await asyncio.sleep(delay)
    if closed.is_set():
        return
    mark = double.world.chat(receipt.chat).next_message_id - 1
    receipt.pressed_at = time.time()
    await double.press(receipt.chat, receipt.chat, copy["message_id"], "ack:1")
    answer = await double.wait_for_message(
        receipt.chat, lambda r: "réception" in (r["text"] or "").lower(), NEVER, after=mark)
    receipt.answered_at = float(answer["sent_at"])


def _has_receipt_button(record: Record) -> bool:
    return "ack:1" in buttons(record)

