"""An officer's /valider while approval maps are drawn for other alerts (issue 13, step 3).

    python -m benchmarks.valider_during_maps [N] [ROUNDS]

N operators' alerts (each with a map to draw) are submitted at once, then an officer
validates another alert in their private chat. Measured from the /valider: until the
officer's answer is posted (the decision committed and replied), until its ``Core.handle``
returns, and until every map is posted; and from the operators' submissions until their
``Core.handle`` have all returned (each waited for its own map before issue 13 step 3).
Medians over ROUNDS runs; a fresh bot each run, stopped only once everything is sent (no
drawing left over to slow the next run).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import TestBot, test_config

OPERATOR, OFFICER = "telegram:100", "telegram:200"


@dataclass(frozen=True, slots=True)
class Run:
    answered: float  # the officer's answer posted
    returned: float  # the officer's handle() returned
    submitted: float  # every operator's handle() returned, from their submission
    drawn: float  # every map posted


async def one_run(n: int) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        bot = await TestBot(test_config(Path(folder) / "bench.sqlite3")).start()
        try:
            core, telegram = bot.core.core, bot.transports["telegram"]
            await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")  # n°1
            submits = [asyncio.create_task(core.handle(bot._incoming(
                OPERATOR, None, text=f"/alerte crue Gray+{k + 1}km : Le Salon déborde")))
                for k in range(n)]
            sent_at, finished = time.perf_counter(), list[float]()
            for task in submits:
                task.add_done_callback(lambda _: finished.append(time.perf_counter()))
            await asyncio.sleep(0.01)  # the submissions are under way
            before = len(telegram.posted["200"])
            start = time.perf_counter()
            answered: list[float] = []

            async def watch() -> None:
                while len(telegram.posted["200"]) == before:
                    await asyncio.sleep(0.001)
                answered.append(time.perf_counter() - start)

            watcher = asyncio.create_task(watch())
            await core.handle(bot._incoming(OFFICER, None, text="/valider 1"))
            returned = time.perf_counter() - start
            await watcher
            await asyncio.gather(*submits)
            await core.replies.flush()  # handle() leaves the maps to the reply sender
            drawn = time.perf_counter() - start
            assert "n°1" in telegram.posted["200"][-1].message.text
            return Run(answered[0], returned, max(finished) - sent_at, drawn)
        finally:
            await bot.stop()


async def main(n: int, rounds: int) -> None:
    runs = [await one_run(n) for _ in range(rounds)]

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"valider-during-maps N={n} rounds={rounds}: officer's answer posted after "
          f"{median_ms([r.answered for r in runs]):.0f} ms, handle() returned after "
          f"{median_ms([r.returned for r in runs]):.0f} ms, the operators' handle() after "
          f"{median_ms([r.submitted for r in runs]):.0f} ms, every map posted after "
          f"{median_ms([r.drawn for r in runs]):.0f} ms (medians)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 3))
