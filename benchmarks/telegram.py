"""Telegram broadcast benchmarks: the real bot (its own process) against the Bot API double.

Layout, chosen for fairness on a small machine (measured: with the double in the bot's
process the double takes ~30 % of the bot's core at 1,000 msg/s): this process runs the
double and nothing else busy (it reads the double's counters and polls the bot's database
now and then); the bot runs ``run_bot.py`` in a child process, so each has a core of its
own. The naive python-telegram-bot baseline runs in a child process too, against the same
kind of double.

Everything is driven from outside as in production: the operator and the officer type their
commands into the double, the bot long-polls them, approves, resolves, sends. The figures
come from the double's view (times of accepted messages, 429s answered), from the report the
bot posts in the officers' group, and from /proc for the bot's memory and CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.botproc import (
    ADMIN,
    FIRST_SUBSCRIBER,
    OFFICER,
    OFFICERS_CHAT,
    OPERATOR,
    ROOT,
    TOKEN,
    BotProcess,
    bot_config,
    query,
    subscriber_chat,
)
from tests.harness import shared_layer
from tests.telegram_double import Record, TelegramDouble

ALERT = "/alerte crue dep:70 : Montée des eaux de la Saône, évacuez les berges"
MAP_CAPTION = "Carte de l'alerte n°1"  # the caption of the request's map (render.map_caption)
_NUMBER = r"(\d[\d\u202f\u00a0 ]*)"  # French groups digits with a narrow no-break space
REPORT = re.compile(rf"Rapport alerte n°1 : {_NUMBER} envoyés?, {_NUMBER} échecs?, "
                    rf"{_NUMBER} bloqués? sur {_NUMBER}")
DUPLICATES = re.compile(rf"Dont {_NUMBER} envois? repris")


def dep70() -> list[str]:
    return sorted(shared_layer().in_departement("70"))


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def quiet_collector() -> None:
    """No garbage collection in this process (the double's) while it measures: with 100,000
    users in memory a full collection stops the double for up to 0.25 s, which the bot
    would see as Telegram stalling. The double's few cycles wait until the end."""
    gc.collect()
    gc.freeze()
    gc.disable()


def normal_collector() -> None:
    gc.enable()
    gc.unfreeze()
    gc.collect()


class SlowDouble(TelegramDouble):
    """The double behind a network: every Bot API call is answered ``latency`` s later
    (a loopback double answers in well under a millisecond; api.telegram.org does not)."""

    def __init__(self, *args: Any, latency: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latency = latency

    async def _on_api(self, request: web.Request) -> web.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        return await super()._on_api(request)


def make_double(subscribers: int, *, rate: float, paid: bool,
                latency: float = 0.0) -> SlowDouble:
    double = SlowDouble(TOKEN, "alerte_bench_bot", global_rate=rate, paid_broadcast=paid,
                        latency=latency)
    for user_id, name in ((OPERATOR, "Opérateur"), (OFFICER, "Officier"), (ADMIN, "Admin")):
        double.user(user_id, name)
    double.group(OFFICERS_CHAT, "Officiers", kind="supergroup", members=[OPERATOR, OFFICER])
    for n in range(1, subscribers + 1):
        double.user(subscriber_chat(n), "Abonné")
    return double


def per_second(times: list[float], origin: float) -> list[int]:
    """Counts in each whole second after ``origin``."""
    if not times:
        return []
    buckets = Counter(int(t - origin) for t in times)
    return [buckets.get(second, 0) for second in range(max(buckets) + 1)]


def steady_rate(times: list[float]) -> float:
    """Messages per second over the whole seconds between the first and the last one
    (the start-up second and the unfinished last second left out)."""
    if len(times) < 3:
        return float("nan")
    counts = per_second(times, times[0])
    middle = counts[1:-1]
    return sum(middle) / len(middle) if middle else float("nan")


@dataclass
class Broadcast:
    """What one broadcast looked like from the double, the bot's report and /proc."""

    subscribers: int
    approved_at: float = 0.0  # unix time the officer's /valider reached the double
    resolved_s: float | None = None  # approval → every recipient written (database polled)
    times: list[float] = field(default_factory=list)  # accepted sends to subscribers
    per_chat: Counter[int] = field(default_factory=Counter)
    report: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0  # VmHWM of the bot process
    idle_rss_mb: float = 0.0  # VmRSS once the bot polls, before the alert
    broadcast_rss_mb: float = 0.0  # the largest VmRSS sampled from approval to report
    cpu_s: float = 0.0  # the bot's CPU time from approval to report
    double_cpu_s: float = 0.0  # this process's (the double's) over the same time

    @property
    def delivered(self) -> int:
        return len(self.times)

    @property
    def first_delivery_s(self) -> float:
        return self.times[0] - self.approved_at if self.times else float("nan")

    @property
    def duration_s(self) -> float:
        """Approval → last subscriber message accepted."""
        return self.times[-1] - self.approved_at if self.times else float("nan")

    @property
    def overall_rate(self) -> float:
        """Messages per second from the first delivery to the last."""
        if len(self.times) < 2:
            return float("nan")
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

    @property
    def steady_rate(self) -> float:
        return steady_rate(self.times)

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000 * self.cpu_s / self.delivered if self.delivered else float("nan")

    def per_second(self) -> list[int]:
        return per_second(self.times, self.approved_at)

    def report_counts(self) -> dict[str, int]:
        match = REPORT.search(self.report)
        if match is None:
            return {}
        counts = dict(zip(("sent", "failed", "blocked", "total"),
                          (number(value) for value in match.groups()), strict=True))
        duplicates = DUPLICATES.search(self.report)
        counts["possible_duplicates"] = number(duplicates[1]) if duplicates else 0
        return counts

    def lost(self, reachable: set[int]) -> int:
        return sum(1 for chat in reachable if self.per_chat[chat] == 0)

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.per_chat.values() if count > 1)

    def summary(self) -> dict[str, Any]:
        return {"subscribers": self.subscribers, "delivered": self.delivered,
                "first_delivery_s": round(self.first_delivery_s, 3),
                "duration_s": round(self.duration_s, 2),
                "overall_rate": round(self.overall_rate, 1),
                "steady_rate": round(self.steady_rate, 1),
                "resolved_s": None if self.resolved_s is None else round(self.resolved_s, 3),
                "peak_rss_mb": self.peak_rss_mb, "idle_rss_mb": self.idle_rss_mb,
                "broadcast_rss_mb": self.broadcast_rss_mb,
                "bot_cpu_s": round(self.cpu_s, 2),
                "bot_cpu_ms_per_message": round(self.cpu_ms_per_message, 3),
                "double_cpu_s": round(self.double_cpu_s, 2),
                "count_429": self.stats.get("errors", {}).get(429, 0),
                "rate_limited": self.stats.get("rate_limited", {}),
                "report": self.report, "per_second": self.per_second()}


class TelegramBench:
    """A fresh double with ``subscribers`` users and a bot process seeded with them."""

    def __init__(self, folder: Path, subscribers: int, *, rate: float, paid: bool,
                 in_flight: int | None = 32, latency: float = 0.0,
                 database: str | None = None) -> None:
        self.folder = folder
        self.database = database  # a PostgreSQL URL; None: SQLite in the folder
        self.subscribers = subscribers
        self.double = make_double(subscribers, rate=rate, paid=paid, latency=latency)
        self.rate, self.paid, self.in_flight = rate, paid, in_flight
        self.bot: BotProcess | None = None
        self.result = Broadcast(subscribers)
        self._cpu_at_approval = self._double_cpu_at_approval = 0.0
        self._resolution: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TelegramBench:
        await self.double.start()
        config = bot_config(self.folder, self.double.base_url, rate=self.rate, paid=self.paid,
                            in_flight=self.in_flight)
        if self.database is not None:
            config["database"] = self.database
        self.bot = BotProcess(self.folder, config)
        await self.bot.seed(self.subscribers, dep70())
        quiet_collector()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self.bot is not None:
                await self.bot.stop()
            await self.double.stop()
        finally:
            normal_collector()

    @property
    def process(self) -> BotProcess:
        assert self.bot is not None
        return self.bot

    async def start_bot(self, timeout: float = 60.0) -> None:
        """Start the bot process and wait until it long-polls the double."""
        before = self.double.stats.requests["getupdates"]
        await self.process.start()
        await self.until(lambda: self.double.stats.requests["getupdates"] > before, timeout,
                         "the bot never polled")
        if not self.result.idle_rss_mb:
            self.result.idle_rss_mb = round(self.process.memory().rss_kb / 1024, 1)

    async def until(self, check: Callable[[], bool], timeout: float, what: str,
                    interval: float = 0.01) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            process = self.process.process
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"bot exited ({process.returncode}): "
                                   f"{self.process.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} after {timeout:.0f} s\n{self.process.log_tail()}")
            await asyncio.sleep(interval)

    def _officers_after(self, after: int, needle: str) -> Record | None:
        for record in self.double.messages(OFFICERS_CHAT):
            if record["message_id"] > after and needle in (record["text"] or
                                                           record["caption"] or ""):
                return record
        return None

    async def request_and_approve(self, watch_resolution: bool = False) -> None:
        """The operator writes the alert; once its approval request is in the officers'
        group, map included, the officer approves. Records the approval time.

        The map is drawn after commit and follows the request's text by 0.1 s or more (it
        came with it until issue 13 step 3): an officer approving in between decides
        without it, and the figures from approval would measure its drawing, which
        competes with the broadcast's start for the interpreter."""
        await self.request()
        await self.approve(watch_resolution)

    async def request(self) -> None:
        """The operator writes the alert; returns once its approval request is in the
        officers' group, map included."""
        mark = int(self.double.world.chat(OFFICERS_CHAT).next_message_id) - 1
        await self.double.send_text(OPERATOR, ALERT)
        await self.until(lambda: self._officers_after(mark, "n°1") is not None, 60,
                         "no approval request")
        await self.until(lambda: self._officers_after(mark, MAP_CAPTION) is not None, 60,
                         "no map with the approval request")

    async def approve(self, watch_resolution: bool = False) -> None:
        """The officer's ``/valider 1`` in the officers' group; records the time."""
        self.result.approved_at = time.time()
        self._cpu_at_approval = self.process.cpu()
        self._double_cpu_at_approval = time.process_time()
        await self.double.send_text(OFFICER, "/valider 1", OFFICERS_CHAT)
        if watch_resolution:
            self._resolution = asyncio.create_task(self._watch_resolution())

    async def _watch_resolution(self, timeout: float = 120.0) -> None:
        """Poll the database until every recipient row is written (resolve_after NULL)."""
        deadline = time.monotonic() + timeout
        database = self.process.database
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the file may be mid-checkpoint
                rows = query(database, "SELECT status, resolve_after FROM alerts WHERE id = 1")
                if rows and rows[0][0] in ("broadcasting", "done") and rows[0][1] is None:
                    self.result.resolved_s = time.time() - self.result.approved_at
                    return
            await asyncio.sleep(0.005)

    def subscriber_deliveries(self) -> int:
        return sum(1 for _, chat in self.double.stats.accepted_at if chat > FIRST_SUBSCRIBER)

    async def wait_report(self, timeout: float) -> None:
        await self.until(lambda: self._officers_after(0, "Rapport alerte n°1") is not None,
                         timeout, "no report", interval=0.1)
        if self._resolution is not None:
            await self._resolution

    def collect(self) -> Broadcast:
        result = self.result
        if self.process.process is not None:
            result.cpu_s = self.process.cpu() - self._cpu_at_approval
            result.double_cpu_s = time.process_time() - self._double_cpu_at_approval
            # The high-water mark, read before the bot stops: the broadcast's peak.
            self.process.peak_kb = max(self.process.peak_kb, self.process.memory().hwm_kb)
        accepted = [(t, chat) for t, chat in self.double.stats.accepted_at
                    if chat > FIRST_SUBSCRIBER]
        result.times = sorted(t for t, _ in accepted)
        result.per_chat = Counter(chat for _, chat in accepted)
        record = self._officers_after(0, "Rapport alerte n°1")
        result.report = "" if record is None else str(record["text"])
        result.stats = self.double.stats.snapshot()
        result.peak_rss_mb = round(self.process.peak_kb / 1024, 1)
        during = [kb for t, kb in self.process.samples if t >= result.approved_at]
        result.broadcast_rss_mb = round(max(during, default=0) / 1024, 1)
        return result


async def ceiling(folder: Path, subscribers: int, rate: float, paid: bool, *,
                  latency: float = 0.0, in_flight: int | None = 32,
                  database: str | None = None) -> Broadcast:
    """One broadcast at the platform's ceiling; what the double saw (``database``: a
    PostgreSQL URL; None: SQLite)."""
    async with TelegramBench(folder, subscribers, rate=rate, paid=paid,
                             latency=latency, in_flight=in_flight, database=database) as bench:
        await bench.start_bot()
        await bench.request_and_approve(watch_resolution=True)
        await bench.wait_report(timeout=subscribers / rate * 3 + 120)
        return bench.collect()


def reached(bench: TelegramBench, deliveries: int) -> bool:
    return bench.subscriber_deliveries() >= deliveries


async def with_faults(folder: Path, subscribers: int, rate: float = 1000.0) -> dict[str, Any]:
    """429s, 403s and 502s from the double during a paid broadcast: every reachable
    recipient must be served and the report must match the double's view exactly."""
    gone = {subscriber_chat(n) for n in range(7, subscribers + 1, 50)}  # deleted accounts
    async with TelegramBench(folder, subscribers, rate=rate, paid=True) as bench:
        double = bench.double
        for chat in gone:
            double.deactivate(chat)  # 403 "user is deactivated", no update to warn the bot
        double.inject_rate_limits(subscriber_chat(3), retry_after=2)  # one chat's 429
        await bench.start_bot()
        await bench.request_and_approve()
        step = max(subscribers // 6, 1)
        # Whole-bot 429s and 502s at three points of the broadcast, while sends are in flight.
        for point, fault in enumerate(("429", "502", "429+502")):
            await bench.until(partial(reached, bench, step * (point + 1)), 120,
                              f"stalled before {step * (point + 1)}")
            if "429" in fault:
                double.inject_rate_limits(retry_after=1, count=5)
            if "502" in fault:
                double.fail_next(10, 502)
        await bench.wait_report(timeout=180)
        result = bench.collect()
    reachable = {subscriber_chat(n) for n in range(1, subscribers + 1)} - gone
    counts = result.report_counts()
    refused = set(double.stats.forbidden)
    double_view = {"sent": len(set(result.per_chat) & reachable), "failed": 0,
                   "blocked": sum(double.stats.forbidden.values()), "total": subscribers}
    return {"subscribers": subscribers, "reachable": len(reachable),
            "lost": result.lost(reachable), "report": counts, "double": double_view,
            "exact": bool(counts) and all(counts.get(k) == v for k, v in double_view.items()),
            "duplicates": result.duplicates(), "count_429": double.stats.count_429,
            "count_403": double.stats.count_403, "count_502": double.stats.count_502,
            "forbidden_kinds": sorted(refused), "report_text": result.report,
            "per_second": result.per_second(), "duration_s": round(result.duration_s, 2)}


async def crash_and_resume(folder: Path, subscribers: int, in_flight: int = 32,
                           kill_at: float = 0.4, rate: float = 1000.0) -> dict[str, Any]:
    """``kill -9`` of the bot mid-broadcast, restart on the same database: nobody lost,
    possible duplicates reported and bounded by 2 × in_flight."""
    async with TelegramBench(folder, subscribers, rate=rate, paid=True,
                             in_flight=in_flight) as bench:
        await bench.start_bot()
        await bench.request_and_approve()
        await bench.until(partial(reached, bench, int(subscribers * kill_at)), 120,
                          "stalled")
        await bench.process.kill()
        killed_after = bench.subscriber_deliveries()
        await asyncio.sleep(0.5)  # whatever the dead process had on the wire lands now
        await bench.start_bot()
        await bench.wait_report(timeout=180)
        result = bench.collect()
    reachable = {subscriber_chat(n) for n in range(1, subscribers + 1)}
    counts = result.report_counts()
    return {"subscribers": subscribers, "in_flight": in_flight, "killed_after": killed_after,
            "lost": result.lost(reachable), "duplicates": result.duplicates(),
            "reported_duplicates": counts.get("possible_duplicates", 0),
            "bound": 2 * in_flight, "report": counts, "report_text": result.report,
            "per_second": result.per_second(), "duration_s": round(result.duration_s, 2)}


async def failover(folder: Path, subscribers: int, database: str, *, rate: float = 1000.0,
                   in_flight: int = 32, kill_at: float = 0.4) -> dict[str, Any]:
    """Two bot processes on one PostgreSQL database (issue 18): ``kill -9`` of the leader
    mid-broadcast; the standby takes the lock over and finishes the broadcast. Nobody lost,
    duplicates within the dead leader's in-flight window, sending resumed within seconds."""
    async with TelegramBench(folder / "leader", subscribers, rate=rate, paid=True,
                             in_flight=in_flight, database=database) as bench:
        standby = BotProcess(folder / "standby", dict(bench.process.config))
        await bench.start_bot()
        await standby.start()
        await bench.until(lambda: "stands by" in standby.log_text(), 60, "no standby")
        await bench.request_and_approve()
        await bench.until(partial(reached, bench, int(subscribers * kill_at)), 120,
                          "stalled")
        leader = bench.process
        killed_at = time.time()
        await leader.kill()
        killed_after = bench.subscriber_deliveries()
        bench.bot = standby  # the report comes from it
        await bench.wait_report(timeout=180)
        result = bench.collect()
        await leader.stop()
    reachable = {subscriber_chat(n) for n in range(1, subscribers + 1)}
    # Sends the dead process had on the wire land within milliseconds of the kill; the
    # next ones are the new leader's.
    resumed = [t for t in result.times if t > killed_at + 0.1]
    return {"subscribers": subscribers, "rate": rate, "in_flight": in_flight,
            "killed_after": killed_after, "lost": result.lost(reachable),
            "duplicates": result.duplicates(), "bound": 2 * in_flight,
            "resumed_s": round(resumed[0] - killed_at, 2) if resumed else None,
            "count_429": result.stats.get("errors", {}).get(429, 0),
            "report": result.report_counts(), "duration_s": round(result.duration_s, 2),
            "steady_rate": round(result.steady_rate, 1)}


async def naive_baseline(subscribers: int, mode: str, latency: float = 0.0) -> dict[str, Any]:
    """python-telegram-bot as a typical user writes it (benchmarks/naive_ptb.py), in its
    own process, on a fresh double with the same paid ceiling."""
    double = make_double(subscribers, rate=30, paid=True, latency=latency)
    async with double:
        quiet_collector()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.naive_ptb", "--base-url", double.base_url,
                "--token", TOKEN, "--count", str(subscribers), "--mode", mode, cwd=str(ROOT),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            stdout, stderr = await process.communicate()
        finally:
            normal_collector()
        if process.returncode != 0:
            raise RuntimeError(f"naive baseline failed: {stderr.decode()[-2000:]}")
        outcome: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
        times = sorted(t for t, chat in double.stats.accepted_at if chat > FIRST_SUBSCRIBER)
    outcome.update(subscribers=subscribers, latency_ms=round(latency * 1000),
                   delivered=len(times), count_429=double.stats.count_429,
                   overall_rate=round((len(times) - 1) / (times[-1] - times[0]), 1)
                   if len(times) > 1 else float("nan"),
                   steady_rate=round(steady_rate(times), 1),
                   cpu_ms_per_message=round(1000 * outcome["cpu_s"] / max(len(times), 1), 3),
                   per_second=per_second(times, times[0]) if times else [])
    return outcome


def temporary() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="bench-")
