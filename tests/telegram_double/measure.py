"""Throughput of the double's hot path: N sendMessage calls, K in flight, from an aiohttp client.

    .venv/bin/python -m tests.telegram_double.measure               # server in its own process
    .venv/bin/python -m tests.telegram_double.measure --same-loop   # server and client share a loop
    .venv/bin/python -m tests.telegram_double.measure --limits      # Telegram's limits on (429s)
    .venv/bin/python -m tests.telegram_double.measure --form        # PTB's form-encoded bodies

Not a test: prints requests/s and the status codes seen. ``--same-loop`` is the situation of an
in-process benchmark (bot and double in one event loop, sharing one core); the default puts the
double in a child process, as a benchmark of a separate bot process would see it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from tests.telegram_double import RateLimits, TelegramDouble

TOKEN = "123:ABC"
FIRST_USER = 10_000


def _double(chats: int, limits: bool) -> TelegramDouble:
    double = TelegramDouble(TOKEN, limits=RateLimits(enabled=limits))
    for offset in range(chats):
        double.user(FIRST_USER + offset, f"User{offset}")
    return double


async def _serve(chats: int, limits: bool, conn: Connection) -> None:
    async with _double(chats, limits) as double:
        conn.send(double.base_url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"


def _serve_process(chats: int, limits: bool, conn: Connection) -> None:
    asyncio.run(_serve(chats, limits, conn))


async def _fire(
    base_url: str, total: int, in_flight: int, chats: int, form: bool
) -> tuple[float, Counter[int]]:
    url = f"{base_url}{TOKEN}/sendMessage"
    statuses: Counter[int] = Counter()
    remaining = iter(range(total))

    async def worker(session: aiohttp.ClientSession) -> None:
        for number in remaining:  # the shared iterator hands each request to one worker
            payload: dict[str, Any] = {
                "chat_id": FIRST_USER + number % chats,
                "text": f"Alerte n°{number}: évacuation du secteur nord",
            }
            # --form: the x-www-form-urlencoded body python-telegram-bot sends.
            request = session.post(url, data=payload) if form else session.post(url, json=payload)
            async with request as response:
                await response.read()
                statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return elapsed, statuses


async def _same_loop(args: argparse.Namespace) -> tuple[float, Counter[int]]:
    async with _double(args.chats, args.limits) as double:
        return await _fire(double.base_url, args.n, args.in_flight, args.chats, args.form)


def _other_process(args: argparse.Namespace) -> tuple[float, Counter[int]]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve_process, args=(args.chats, args.limits, child))
    server.start()
    try:
        base_url = parent.recv()
        return asyncio.run(_fire(base_url, args.n, args.in_flight, args.chats, args.form))
    finally:
        parent.send("stop")
        server.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests to send")
    parser.add_argument("--in-flight", type=int, default=32, help="concurrent requests")
    parser.add_argument("--chats", type=int, default=1_000, help="distinct private chats")
    parser.add_argument("--same-loop", action="store_true", help="server in the client's loop")
    parser.add_argument("--limits", action="store_true", help="enforce Telegram's limits")
    parser.add_argument("--form", action="store_true", help="form-encoded bodies, as PTB sends")
    args = parser.parse_args()
    if args.same_loop:
        elapsed, statuses = asyncio.run(_same_loop(args))
    else:
        elapsed, statuses = _other_process(args)
    mode = "same loop" if args.same_loop else "separate process"
    print(
        f"{args.n} sendMessage in {elapsed:.2f}s = {args.n / elapsed:,.0f} req/s "
        f"({mode}, {'form' if args.form else 'JSON'} bodies, {args.in_flight} in flight, "
        f"limits {'on' if args.limits else 'off'}); "
        f"statuses {dict(statuses)}"
    )


if __name__ == "__main__":
    main()
