"""The baseline: a broadcast as a typical python-telegram-bot user writes it.

    python -m benchmarks.naive_ptb --base-url URL --token T --count 30000 \
        --mode loop|gather

``ApplicationBuilder`` with PTB's own ``AIORateLimiter`` at the paid-broadcast ceiling
(1,000 msg/s) and its retries on 429, then either one ``await bot.send_message`` after the
other (``loop``) or chunks of ``CHUNK`` sends gathered at once (``gather``). No outbox, no
database, no report: only the sending. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder

from benchmarks.botproc import subscriber_chat

TEXT = ("🔴 ALERTE — Crue : Montée des eaux de la Saône, évacuez les berges. "
        "Secteur : Haute-Saône (70). Consignes : éloignez-vous des cours d'eau.")
CHUNK = 100


async def broadcast(base_url: str, token: str, chats: list[int], mode: str) -> dict[str, Any]:
    limiter = AIORateLimiter(overall_max_rate=1000, overall_time_period=1, max_retries=3)
    app = ApplicationBuilder().token(token).base_url(base_url).rate_limiter(limiter).build()
    errors = 0
    async with app:
        bot = app.bot
        started, cpu_started = time.perf_counter(), time.process_time()
        if mode == "loop":
            for chat in chats:
                try:
                    await bot.send_message(chat, TEXT)
                except TelegramError:
                    errors += 1
        else:
            for index in range(0, len(chats), CHUNK):
                outcomes = await asyncio.gather(
                    *(bot.send_message(chat, TEXT) for chat in chats[index:index + CHUNK]),
                    return_exceptions=True)
                errors += sum(1 for outcome in outcomes if isinstance(outcome, BaseException))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return {"mode": mode, "sent": len(chats) - errors, "errors": errors,
            "seconds": round(elapsed, 3), "per_second": round((len(chats) - errors) / elapsed, 1),
            "cpu_s": round(cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--mode", choices=["loop", "gather"], default="loop")
    args = parser.parse_args()
    chats = [subscriber_chat(n) for n in range(1, args.count + 1)]  # the seeded users
    print(json.dumps(asyncio.run(broadcast(args.base_url, args.token, chats, args.mode))))


if __name__ == "__main__":
    main()
