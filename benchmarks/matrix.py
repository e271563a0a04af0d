"""Matrix fan-out on a real Synapse: the bot's dispatcher against a bare concurrent nio sender.

One homeserver on loopback (tests/synapse), the bot account exempted from its rate limits.
The bot account owns ``rooms`` rooms; each is a subscriber's chat. Alternating rounds, in
this one process (same event loop, same client library):

* bare: ``tests.synapse.bare_sender.bare_concurrent_send`` posts one message per room with
  N concurrent tasks, nothing else (no outbox, no pacing, no bookkeeping); tried at several
  concurrencies, the best counts. Its event is a short plain ``m.text``;
* bare, same event: the same sender (same nio settings, same worker pattern) posting the
  bot's exact event (HTML ``formatted_body``, numbered choices): this isolates the
  engine's cost from the payload's;
* bot: the real core and dispatcher on ``MatrixTransport``: an operator's alert is approved
  (on a memory transport standing in for the officers' channel), its recipients are written
  to the outbox and the dispatcher sends them, recording every outcome in SQLite.

Throughput = rooms / time from start (bare: first send; bot: the approval) to the last
message accepted (bot: every outcome recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nio

from benchmarks.botproc import seed_database
from bot.app import BotApp, build_services
from bot.clock import Clock
from bot.config import (
    BroadcastConfig,
    Config,
    MatrixConfig,
    PlatformRateLimits,
    RateLimitsConfig,
    RolesConfig,
    ThrottleConfig,
)
from bot.domain import ChatKind, ChatRef, Identity, Incoming
from bot.storage.transport_state import TransportState
from bot.transports.matrix import MatrixTransport
from bot.transports.memory import MemoryTransport
from tests.harness import ROOT, shared_layer
from tests.synapse import client as mx
from tests.synapse.admin import MatrixUser
from tests.synapse.bare_sender import bare_client_config, bare_concurrent_send
from tests.synapse.fixture import synapse_available
from tests.synapse.server import SynapseServer

OPERATOR, OFFICER, OFFICERS = "telegram:100", "telegram:200", "officers"
ALERT = "/alerte crue dep:70 : Montée des eaux de la Saône, évacuez les berges"
BARE_CONCURRENCY = (10, 32, 64)


@dataclass
class MatrixResult:
    rooms: int
    bot_s: list[float] = field(default_factory=list)
    bare_s: dict[int, list[float]] = field(default_factory=dict)  # by concurrency
    same_event_s: list[float] = field(default_factory=list)  # bare, the bot's event
    same_event_concurrency: int = 0
    bot_sent: list[int] = field(default_factory=list)
    bare_sent: list[int] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    def best_bare(self) -> tuple[int, float]:
        """(concurrency, median seconds) of the fastest bare configuration."""
        return min(((c, statistics.median(s)) for c, s in self.bare_s.items()),
                   key=lambda item: item[1])

    def summary(self) -> dict[str, Any]:
        concurrency, bare = self.best_bare()
        bot = statistics.median(self.bot_s)
        same = statistics.median(self.same_event_s)
        return {"rooms": self.rooms, "rounds": len(self.bot_s),
                "bot_s": round(bot, 3), "bot_per_second": round(self.rooms / bot, 1),
                "bare_s": round(bare, 3), "bare_per_second": round(self.rooms / bare, 1),
                "bare_concurrency": concurrency,
                "bare_all": {c: round(self.rooms / statistics.median(s), 1)
                             for c, s in self.bare_s.items()},
                "ratio": round(bare / bot, 3),
                "same_event_s": round(same, 3),
                "same_event_per_second": round(self.rooms / same, 1),
                "same_event_concurrency": self.same_event_concurrency,
                "ratio_same_event": round(same / bot, 3),
                "bot_sent_min": min(self.bot_sent), "bare_sent_min": min(self.bare_sent)}


def bot_config(folder: Path, server: SynapseServer, bot: MatrixUser,
               in_flight: int) -> Config:
    matrix = MatrixConfig(enabled=True, homeserver=server.base_url, user_id=bot.user_id,
                          access_token=bot.access_token, device_id=bot.device_id)
    # The account is exempted on the homeserver, so its pacing is raised to match (the
    # documented setting for a homeserver with relaxed limits); per room it stays 5/s.
    limits = RateLimitsConfig(matrix=PlatformRateLimits(1000.0, 5.0, 300.0))
    roles = RolesConfig(operators=[OPERATOR], officers=[OFFICER])
    return Config(database=str(folder / "bot.sqlite3"), roles=roles, matrix=matrix,
                  rate_limits=limits, broadcast=BroadcastConfig(in_flight=in_flight),
                  throttle=ThrottleConfig(messages_per_minute=10_000, burst=10_000),
                  base_dir=str(ROOT))


class MatrixBot:
    """BotApp with the real MatrixTransport; the operator and officers on a memory one."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.officers = MemoryTransport("telegram", OFFICERS)
        self.app: BotApp | None = None
        self.transport: MatrixTransport | None = None
        self.alerts = 0

    async def start(self, rooms: list[str]) -> None:
        services = await build_services(self.config, Clock(), shared_layer(),
                                        frozenset({"matrix", "telegram"}))
        communes = sorted(shared_layer().in_departement("70"))
        await seed_database(services.db, len(rooms), communes, platform="matrix",
                            chat_ids=rooms)
        self.transport = MatrixTransport(self.config.matrix,
                                         TransportState(services.db, "matrix"),
                                         is_admin=lambda identity: False)
        self.app = BotApp(services, {"matrix": self.transport, "telegram": self.officers})
        await self.app.start()
        await asyncio.wait_for(self.transport.ready.wait(), 60)

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()
            self.app = None

    async def _say(self, who: str, text: str, chat: str | None = None) -> None:
        assert self.app is not None
        identity = Identity.parse(who)
        kind = ChatKind.OFFICERS if chat == OFFICERS else ChatKind.PRIVATE
        await self.app.core.handle(Incoming(
            sender=identity, chat=ChatRef(identity.platform, chat or identity.user_id),
            chat_kind=kind, text=text))

    async def broadcast(self, timeout: float = 120.0) -> tuple[float, str, int]:
        """One alert to every room: (seconds from approval to the report, report, sent)."""
        assert self.app is not None
        self.alerts += 1
        number = self.alerts
        await self._say(OPERATOR, ALERT)
        started = time.perf_counter()
        await self._say(OFFICER, f"/valider {number}", OFFICERS)
        needle = f"Rapport alerte n°{number} "
        deadline = started + timeout
        while not any(needle in text for text in self.officers.texts(OFFICERS)):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no report for alert {number}")
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - started
        report = next(t for t in self.officers.texts(OFFICERS) if needle in t)
        sent = int(await self.app.services.db.fetchval(
            "SELECT count(*) FROM deliveries WHERE alert_id = ? AND status = 'sent'",
            (number,)))
        return elapsed, report, sent


async def bare_send_event(homeserver: str, user: MatrixUser, room_ids: list[str],
                          content: dict[str, Any], concurrency: int) -> tuple[float, int]:
    """``bare_concurrent_send`` with a given event content: (seconds, events accepted)."""
    client = nio.AsyncClient(homeserver, user.user_id, config=bare_client_config())
    client.restore_login(user.user_id, user.device_id, user.access_token)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for room_id in room_ids:
        queue.put_nowait(room_id)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while not queue.empty():
            room_id = queue.get_nowait()
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, nio.LocalProtocolError):
                response = await client.room_send(room_id, "m.room.message", content,
                                                  ignore_unverified_devices=True)
                sent += isinstance(response, nio.RoomSendResponse)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        elapsed = time.perf_counter() - started
        await client.close()
    return elapsed, sent


async def bot_event(user: MatrixUser, room_id: str) -> dict[str, Any]:
    """The content of the bot's last alert in ``room_id``."""
    events = await mx.messages(user, room_id, limit=10, types=["m.room.message"])
    mine = [e for e in events if e["sender"] == user.user_id
            and not str(e["content"].get("body", "")).startswith("bare")]
    return dict(mine[-1]["content"])


async def fan_out(rooms: int = 200, rounds: int = 3, in_flight: int = 32,
                  server: SynapseServer | None = None, prefix: str = "bench") -> MatrixResult:
    """On ``server`` (a running homeserver, e.g. the tests' session one), or on one
    started for the occasion."""
    if not synapse_available():
        raise RuntimeError("matrix-synapse is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-synapse-") as scratch:
        if server is not None:
            return await _fan_out(server, Path(scratch), rooms, rounds, in_flight, prefix)
        own = SynapseServer(Path(scratch) / "synapse")
        await asyncio.to_thread(own.start)
        try:
            return await _fan_out(own, Path(scratch), rooms, rounds, in_flight, prefix)
        finally:
            await asyncio.to_thread(own.stop)


async def _fan_out(server: SynapseServer, folder: Path, rooms: int, rounds: int,
                   in_flight: int, prefix: str) -> MatrixResult:
    bot_user = await server.register(f"{prefix}-alerte-bot")
    citizen = await server.register(f"{prefix}-citoyen")
    await server.exempt(bot_user)
    room_ids: list[str] = []
    for start in range(0, rooms, 20):  # created by the bot: it is in every room at once
        room_ids += await asyncio.gather(*(
            mx.create_room(bot_user, invite=[citizen.user_id], name=f"Abonné {n}")
            for n in range(start, min(start + 20, rooms))))
    result = MatrixResult(rooms, same_event_concurrency=2 * in_flight)
    bot = MatrixBot(bot_config(folder, server, bot_user, in_flight))
    await bot.start(room_ids)
    try:
        await bot.broadcast()  # warm-up (Synapse's caches), and the bot's event to copy
        event = await bot_event(bot_user, room_ids[0])
        for round_number in range(rounds):
            for concurrency in BARE_CONCURRENCY:
                bare = await bare_concurrent_send(
                    server.base_url, bot_user.access_token, room_ids,
                    concurrency=concurrency, body=f"bare {round_number}",
                    user_id=bot_user.user_id, device_id=bot_user.device_id)
                result.bare_s.setdefault(concurrency, []).append(bare.elapsed_s)
                result.bare_sent.append(bare.sent)
            seconds, accepted = await bare_send_event(
                server.base_url, bot_user, room_ids, event, result.same_event_concurrency)
            result.same_event_s.append(seconds)
            result.bare_sent.append(accepted)
            elapsed, report, sent = await bot.broadcast()
            result.bot_s.append(elapsed)
            result.reports.append(report)
            result.bot_sent.append(sent)
    finally:
        await bot.stop()
    return result
