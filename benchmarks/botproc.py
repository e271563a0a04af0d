"""The bot as production runs it: ``run_bot.py`` in its own process, on a database we seed.

The benchmarks drive it from the outside only (the Telegram double, the database file, signals),
so what they measure includes everything a deployment pays: long polling, the real transports,
the dispatcher, SQLite on disk. ``/proc/PID/status`` gives its memory (VmRSS, VmHWM).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.storage.database import Database, is_postgresql
from bot.storage.dialect import translate
from tests.harness import database_for

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:bench-token"
OPERATOR, OFFICER, ADMIN = 100, 200, 900
OFFICERS_CHAT = -1001000
FIRST_SUBSCRIBER = 10_000  # every subscriber's chat id is above it (subscriber_chat)


# Real Telegram ids follow account creation, not enrollment order: subscriber n's chat id
# is scattered (a bijection of 1 … CHAT_SPREAD - 1), so the outbox's chat-keyed index is
# written out of order as it would be in production.
CHAT_SPREAD = 1_000_003  # a prime: n ↦ n × CHAT_STEP mod CHAT_SPREAD is one-to-one
CHAT_STEP = 7_919


def subscriber_chat(number: int) -> int:
    return FIRST_SUBSCRIBER + number * CHAT_STEP % CHAT_SPREAD


async def seed_database(db: Database, count: int, communes: list[str],
                        platform: str = "telegram", chat_ids: list[str] | None = None) -> None:
    """``count`` active subscribers (ids 1..count) spread over ``communes``, community
    'citoyen'; chat ids ``subscriber_chat(id)`` unless ``chat_ids`` are given."""
    rng = random.Random(70)
    chats = chat_ids or [str(subscriber_chat(i)) for i in range(1, count + 1)]
    async with db.transaction():
        await db.executemany(
            "INSERT INTO subscribers (id, platform, platform_user_id, chat_id, consent_at,"
            " consent_version, created_at, updated_at) VALUES (?, ?, ?, ?, 'x', 'v',"
            " 'x', 'x')", ((i, platform, chats[i - 1], chats[i - 1]) for i in range(1, count + 1)))
        await db.executemany(
            "INSERT INTO subscriber_communes VALUES (?, ?)",
            ((i, rng.choice(communes)) for i in range(1, count + 1)))
        await db.executemany(
            "INSERT INTO subscriber_communities VALUES (?, 'citoyen')",
            ((i,) for i in range(1, count + 1)))
    await db.sync_identities()  # ids given: PostgreSQL's next id goes past them


def bot_config(folder: Path, base_url: str, *, rate: float, paid: bool,
               in_flight: int | None = 32,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A production-shaped configuration on the double; paths absolute (the file lives
    in a temporary folder)."""
    config: dict[str, Any] = {
        # On a PostgreSQL run of the tests (tests/conftest.py), a database of its own there.
        "database": database_for(folder / "bot.sqlite3"),
        "secret_key": "benchmark-secret-key-0123456789abcdef",
        "language": "fr",
        "communities": str(ROOT / "config/communities.yaml"),
        "categories": str(ROOT / "config/categories.yaml"),
        "geo": {"communes": [str(ROOT / "config/geo/communes-70.geojson"),
                             str(ROOT / "config/geo/communes-48.geojson")],
                "perimeter_files": str(folder / "perimetres")},
        "roles": {"admins": [f"telegram:{ADMIN}"], "operators": [f"telegram:{OPERATOR}"],
                  "officers": [f"telegram:{OFFICER}"]},
        "telegram": {"enabled": True, "token": TOKEN, "base_url": base_url,
                     "base_file_url": base_url.replace("/bot", "/file/bot"),
                     "officers_chat_id": OFFICERS_CHAT, "poll_timeout": 10,
                     "paid_broadcast": paid},
        "rate_limits": {"telegram": {"global_per_second": rate, "per_chat_per_second": 1.0,
                                     "per_group_per_minute": 20.0}},
        "broadcast": {} if in_flight is None else {"in_flight": in_flight},  # None: default
        # People in a benchmark type faster than the per-person flood guard allows.
        "throttle": {"messages_per_minute": 10_000, "burst": 10_000},
    }
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@dataclass
class Memory:
    rss_kb: int = 0
    hwm_kb: int = 0


def read_memory(pid: int) -> Memory:
    memory = Memory()
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                memory.rss_kb = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                memory.hwm_kb = int(line.split()[1])
    return memory


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class BotProcess:
    """``run_bot.py`` on ``config``; logs to ``folder/bot-N.log``."""

    folder: Path
    config: dict[str, Any]
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    peak_kb: int = 0  # the largest VmHWM seen across this object's processes
    samples: list[tuple[float, int]] = field(default_factory=list)  # (time, VmRSS kB)
    _sampler: asyncio.Task[None] | None = None

    @property
    def config_path(self) -> Path:
        return self.folder / "bot.yaml"

    @property
    def database(self) -> Path | str:
        """The SQLite file, or the PostgreSQL URL."""
        found = str(self.config["database"])
        return found if is_postgresql(found) else Path(found)

    async def seed(self, count: int, communes: list[str], **options: Any) -> None:
        """Subscribers in the bot's database (created and migrated if new)."""
        db = await Database.open(self.database)
        try:
            await seed_database(db, count, communes, **options)
        finally:
            await db.close()

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.starts += 1
        log = (self.folder / f"bot-{self.starts}.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # BENCH_PROFILE=DIR: the bot runs under cProfile, one .pstats file per start.
        profile = os.environ.get("BENCH_PROFILE")
        runner = ["-m", "cProfile", "-o", str(Path(profile) / f"bot-{self.starts}.pstats")
                  ] if profile else []
        script = os.environ.get("BENCH_RUNNER", str(ROOT / "run_bot.py"))  # for experiments
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *runner, script, "--config", str(self.config_path), "run",
            cwd=str(self.folder), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            env=env)
        log.close()
        self._sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        process = self.process
        assert process is not None
        pid = process.pid
        while process.returncode is None:
            memory = read_memory(pid)
            if memory.rss_kb:
                self.samples.append((time.time(), memory.rss_kb))
                self.peak_kb = max(self.peak_kb, memory.hwm_kb)
            await asyncio.sleep(0.25)

    def cpu(self) -> float:
        return 0.0 if self.process is None else cpu_seconds(self.process.pid)

    def memory(self) -> Memory:
        return Memory() if self.process is None else read_memory(self.process.pid)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a power cut of the process."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM, as systemd stops the bot; SIGKILL if it hangs."""
        await self._end(signal.SIGTERM)

    async def _end(self, signum: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            self.peak_kb = max(self.peak_kb, read_memory(process.pid).hwm_kb)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    def log_text(self) -> str:
        path = self.folder / f"bot-{self.starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        path = self.folder / f"bot-{self.starts}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def query(database: Path | str, sql: str,
          params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """A read on the bot's database from outside (WAL: never blocks the bot's writes); on
    PostgreSQL, the same SQL translated (bot/storage/dialect.py)."""
    if is_postgresql(database):
        import psycopg
        with psycopg.connect(str(database), cursor_factory=psycopg.RawCursor) as pg:
            return [tuple(row) for row in pg.execute(  # type: ignore[call-overload]
                translate(sql).sql, tuple(params) or None).fetchall()]
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        return list(connection.execute(sql, tuple(params)))
    finally:
        connection.close()


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
