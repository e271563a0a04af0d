"""Core benchmarks, in-process: perimeter parsing, recipient resolution, memory dispatch.

Each function returns a list of result rows; ``python -m benchmarks`` writes them to
``benchmarks/results/latest.json`` and a Markdown table beside it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.botproc import seed_database
from bot.config import BroadcastConfig, PlatformRateLimits, RateLimitsConfig
from bot.geo.perimeter import parse_perimeter
from tests.harness import OFFICERS, TestBot, shared_layer, test_config

Row = dict[str, Any]


def perimeter_parsing(repeat: int = 200) -> list[Row]:
    layer = shared_layer()
    rows = []
    for text in ("Vesoul", "Vesoul+10km", "47.62,6.15+10km", "70000", "dep:70", "Vesoul, Gray"):
        timings = []
        for _ in range(repeat):
            start = time.perf_counter()
            perimeter = parse_perimeter(text, layer)
            timings.append(time.perf_counter() - start)
        rows.append({"benchmark": "perimeter", "case": text, "communes": len(perimeter.communes),
                     "median_ms": round(statistics.median(timings) * 1000, 3)})
    return rows


async def seed_subscribers(bot: TestBot, count: int, communes: list[str]) -> None:
    """``count`` Telegram subscribers (chat ids 10001…) spread over ``communes``."""
    await seed_database(bot.core.services.db, count, communes)


async def resolution(subscribers: int = 100_000, database: str | None = None) -> list[Row]:
    """Approval, then the whole recipient resolution, alone: memory transports, nothing
    sent (the dispatcher is stopped), so this is the engine's and SQLite's own cost
    (``database``: a PostgreSQL URL instead)."""
    with tempfile.TemporaryDirectory() as folder:
        config = test_config(Path(folder) / "bench.sqlite3")
        if database is not None:
            config = replace(config, database=database)
        bot = await TestBot(config).start()
        try:
            await seed_subscribers(bot, subscribers, sorted(shared_layer().in_departement("70")))
            await bot.say("telegram:100", "/alerte crue dep:70 : Montée des eaux de la Saône")
            start = time.perf_counter()
            await bot.say("telegram:200", "/valider 1", chat=OFFICERS)
            approval_s = time.perf_counter() - start
            dispatcher, chunks = bot.core.core.dispatcher, 0
            start = time.perf_counter()
            while await dispatcher.resolve_once():
                chunks += 1
            resolution_s = time.perf_counter() - start
            rows = int(await bot.core.services.db.fetchval("SELECT count(*) FROM deliveries"))
        finally:
            await bot.stop()
    return [{"benchmark": "resolution alone (in-process)",
             "case": f"dep:70, {subscribers} subscribers", "approval_s": round(approval_s, 3),
             "resolution_s": round(resolution_s, 3),
             "total_s": round(approval_s + resolution_s, 3), "chunks": chunks, "rows": rows}]


async def resolution_and_dispatch(subscribers: int = 100_000) -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        # The memory transport has no platform ceiling: measure the engine's own cost.
        unlimited = RateLimitsConfig(telegram=PlatformRateLimits(1e9, 1e9, 1e9))
        config = test_config(Path(folder) / "bench.sqlite3", rate_limits=unlimited,
                             broadcast=BroadcastConfig(in_flight=256))
        bot = await TestBot(config).start()
        try:
            communes = sorted(shared_layer().in_departement("70"))
            await seed_subscribers(bot, subscribers, communes)
            await bot.say("telegram:100", "/alerte crue dep:70 : Montée des eaux de la Saône")
            start = time.perf_counter()
            await bot.say("telegram:200", "/valider 1", chat=OFFICERS)
            approval_s = time.perf_counter() - start
            start = time.perf_counter()
            await bot.drain(timeout=600)
            dispatch_s = time.perf_counter() - start
            sent = int(await bot.core.services.db.fetchval(
                "SELECT count(*) FROM deliveries WHERE status = 'sent'"))
        finally:
            await bot.stop()
    return [
        {"benchmark": "approval+resolution", "case": f"dep:70, {subscribers} subscribers",
         "seconds": round(approval_s, 3)},
        {"benchmark": "dispatch (memory transport)", "case": f"{sent} deliveries",
         "seconds": round(dispatch_s, 2), "per_second": round(sent / dispatch_s)},
    ]
