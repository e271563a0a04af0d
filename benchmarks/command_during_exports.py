"""An officer's /valider while files are built for others: CAP exports or /mesdonnees.

    python -m benchmarks.command_during_exports [cap|mesdonnees] [N] [ROUNDS]

``cap``: an operator asks N ``/cap`` exports at once; ``mesdonnees``: N subscribers ask for
their data at once. Then an officer validates an alert in their private chat. Measured as
in benchmarks/valider_during_maps.py: from the /valider until the officer's answer is
posted, until its ``Core.handle`` returns, and until every export is posted; and from the
asking until the askers' ``Core.handle`` have all returned. Medians over ROUNDS runs; a
fresh bot each run.
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
KINDS = ("cap", "mesdonnees")


@dataclass(frozen=True, slots=True)
class Run:
    answered: float  # the officer's answer posted
    returned: float  # the officer's handle() returned
    asked: float  # every asker's handle() returned, from their asking
    exported: float  # every export posted


async def _setup(bot: TestBot, kind: str, n: int) -> list[tuple[str, str]]:
    """(who, command) of the N exports."""
    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")  # n°1, to validate
    if kind == "cap":
        await bot.say(OPERATOR, "/alerte crue Gray+5km : Le Salon déborde")  # n°2
        return [(OPERATOR, "/cap 2")] * n
    people = [f"telegram:{5000 + k}" for k in range(n)]
    for who in people:
        await bot.enroll(who, "citoyen", "Vesoul")
    return [(who, "/mesdonnees") for who in people]


async def one_run(kind: str, n: int) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        bot = await TestBot(test_config(Path(folder) / "bench.sqlite3")).start()
        try:
            core, telegram = bot.core.core, bot.transports["telegram"]
            exports = await _setup(bot, kind, n)
            chats = {who.split(":")[1] for who, _ in exports}
            files_before = sum(1 for chat in chats for p in telegram.posted[chat]
                               if p.message.attachment)
            asks = [asyncio.create_task(core.handle(bot._incoming(who, None, text=text)))
                    for who, text in exports]
            sent_at, finished = time.perf_counter(), list[float]()
            for task in asks:
                task.add_done_callback(lambda _: finished.append(time.perf_counter()))
            await asyncio.sleep(0.001)  # the exports are under way
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
            await asyncio.gather(*asks)
            while sum(1 for chat in chats for p in telegram.posted[chat]
                      if p.message.attachment) < files_before + n:
                await asyncio.sleep(0.001)
            exported = time.perf_counter() - start
            assert "n°1" in telegram.posted["200"][-1].message.text
            return Run(answered[0], returned, max(finished) - sent_at, exported)
        finally:
            await bot.stop()


async def main(kind: str, n: int, rounds: int) -> None:
    runs = [await one_run(kind, n) for _ in range(rounds)]

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"command-during-exports {kind} N={n} rounds={rounds}: officer's answer posted "
          f"after {median_ms([r.answered for r in runs]):.0f} ms, handle() returned after "
          f"{median_ms([r.returned for r in runs]):.0f} ms, the askers' handle() after "
          f"{median_ms([r.asked for r in runs]):.0f} ms, every export posted after "
          f"{median_ms([r.exported for r in runs]):.0f} ms (medians)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "cap",
                     int(sys.argv[2]) if len(sys.argv) > 2 else 30,
                     int(sys.argv[3]) if len(sys.argv) > 3 else 3))
