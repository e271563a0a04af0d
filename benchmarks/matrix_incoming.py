"""The incoming path on Matrix (issue 14): the enrollment spike on a real Synapse.

One homeserver on loopback (tests/synapse, its rate limits raised as in the fan-out
benchmark; the responders' accounts exempted). N people, each in a direct room with the
responder, go through the enrollment at once, each sending their next message as soon as
the previous answer arrives (closed loop), as on Telegram but typing (Matrix has no
buttons: « oui », a community's name, « valider », a commune, « terminer », « oui »). The
responder is, in turn:

* the bot, as production runs it (``run_bot.py``, its own process, SQLite on disk), with an
  officer's ``!valider`` sent into the officers' room ``valider_at`` s into the spike, for an
  alert to ``seeded`` subscriber rooms;
* a bare matrix-nio client in its own process (``benchmarks/bare_echo.py``), answering each
  message with a short text at once: what Synapse allows a client that only answers.

Synapse-bound figures are given as the bot's over the bare client's (updates/s, latency).
Each person and the officer and a subscriber long-poll /sync as a client would; times are
Synapse's (``origin_server_ts`` of the answer) against the person's clock (same machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from benchmarks.bare_echo import SYNC_FILTER
from benchmarks.botproc import ROOT, BotProcess, bot_config, query
from benchmarks.incoming import Crowd, Person, sleep_until
from benchmarks.telegram import ALERT, dep70
from tests.synapse import client as mx
from tests.synapse.admin import MatrixUser
from tests.synapse.fixture import synapse_available
from tests.synapse.server import SynapseServer

# What a person types at each step, and what the bot's answer holds.
STEPS: tuple[tuple[str, str], ...] = (
    ("!start", "Acceptez"), ("oui", "communautés"), ("citoyen", "Sélection"),
    ("valider", "communes"), ("Vesoul", "Communes retenues"), ("terminer", "Récapitulatif"),
    ("oui", "C'est fait"))
ALERT_TEXT = ALERT.split(" : ", 1)[1]
FILTER = json.dumps(SYNC_FILTER)
CLIENT = "/_matrix/client/v3"
SETUP_BATCH = 20  # rooms created at once while setting up


class Http:
    """One connection pool for everyone the benchmark plays (the helpers of
    tests/synapse/client open one per call, too slow here)."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        await self.session.close()

    async def send(self, user: MatrixUser, room: str, text: str) -> None:
        path = (f"{CLIENT}/rooms/{quote(room, safe='')}/send/m.room.message/"
                f"{uuid.uuid4().hex}")
        async with self.session.put(user.base_url + path, headers=_auth(user),
                                    json={"msgtype": "m.text", "body": text}) as response:
            if response.status >= 300:
                raise RuntimeError(f"send by {user.user_id}: {response.status} "
                                   f"{await response.text()}")

    async def sync(self, user: MatrixUser, since: str | None, wait_ms: int) -> dict[str, Any]:
        params = {"timeout": str(wait_ms), "filter": FILTER}
        if since:
            params["since"] = since
        async with self.session.get(user.base_url + f"{CLIENT}/sync", params=params,
                                    headers=_auth(user)) as response:
            body: dict[str, Any] = await response.json(content_type=None)
            if response.status >= 300:
                raise RuntimeError(f"sync of {user.user_id}: {response.status} {body}")
            return body


def _auth(user: MatrixUser) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.access_token}"}


Handler = Callable[[str, dict[str, Any]], None]


class Listener:
    """A user's /sync long poll, as their client's: each new message to ``handler``."""

    def __init__(self, http: Http, user: MatrixUser, handler: Handler) -> None:
        self.http, self.user, self.handler = http, user, handler
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        since = (await self.http.sync(self.user, None, 0))["next_batch"]  # from now on
        self._task = asyncio.create_task(self._listen(since))

    async def _listen(self, since: str) -> None:
        while True:
            try:
                body = await self.http.sync(self.user, since, 30_000)
            except (aiohttp.ClientError, TimeoutError, RuntimeError):
                await asyncio.sleep(0.2)
                continue
            since = body["next_batch"]
            for room_id, room in body.get("rooms", {}).get("join", {}).items():
                for event in room.get("timeline", {}).get("events", []):
                    self.handler(room_id, event)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def body_of(event: dict[str, Any]) -> str:
    content = event.get("content", {})
    return str(content.get("m.new_content", content).get("body", ""))


@dataclass
class MatrixPerson(Person):
    user: MatrixUser | None = None
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


class MatrixCrowd(Crowd):
    """People in their direct rooms with ``responder``; ``expect``: check the bot's answers
    (the bare client answers « ok » to everything)."""

    def __init__(self, http: Http, people: list[MatrixPerson], responder: str,
                 expect: bool) -> None:
        super().__init__(list(people), len(STEPS))
        self.http, self.responder, self.expect = http, responder, expect
        self.listeners = [Listener(http, p.user, self._heard) for p in people if p.user]
        self._rooms = {p.chat: p for p in people}

    def _heard(self, room_id: str, event: dict[str, Any]) -> None:
        person = self._rooms.get(room_id)
        if person is not None and event.get("sender") == self.responder:
            person.inbox.put_nowait(event)

    async def listen(self) -> None:
        await asyncio.gather(*(listener.start() for listener in self.listeners))

    async def close(self) -> None:
        await asyncio.gather(*(listener.stop() for listener in self.listeners))

    async def act(self, person: MatrixPerson, index: int) -> None:
        assert person.user is not None
        await self.http.send(person.user, person.chat, STEPS[index][0])

    async def answer(self, person: MatrixPerson, index: int,
                     mark: None) -> tuple[float, bool, str]:
        event = await person.inbox.get()
        text = body_of(event)
        return (event["origin_server_ts"] / 1000, not self.expect or STEPS[index][1] in text,
                text)


@dataclass(frozen=True)
class MatrixPlan:
    people: int = 12
    seeded: int = 10  # subscriber rooms the officer's alert goes to
    valider_at: float = 2.0  # s into the spike
    deadline: float = 120.0
    stall: float = 20.0


@dataclass
class Accounts:
    bot: MatrixUser
    bare: MatrixUser
    officer: MatrixUser
    operator: MatrixUser
    citizen: MatrixUser
    people: list[MatrixUser]


async def spike(plan: MatrixPlan, server: SynapseServer | None = None,
                prefix: str = "inbench") -> dict[str, Any]:
    """On ``server`` (a running homeserver, e.g. the tests' session one), or on one started
    for the occasion."""
    if not synapse_available():
        raise RuntimeError("matrix-synapse is not installed")
    with tempfile.TemporaryDirectory(prefix="bench-mx-in-") as scratch:
        if server is not None:
            return await _spike(server, Path(scratch), plan, prefix)
        own = SynapseServer(Path(scratch) / "synapse")
        await asyncio.to_thread(own.start)
        try:
            return await _spike(own, Path(scratch), plan, prefix)
        finally:
            await asyncio.to_thread(own.stop)


async def _spike(server: SynapseServer, folder: Path, plan: MatrixPlan,
                 prefix: str) -> dict[str, Any]:
    prefix = f"{prefix}{int(time.time() * 1000) % 10**8}"
    names = ["bot", "bare", "officer", "operator", "citizen"]
    staff = dict(zip(names, await asyncio.gather(
        *(server.register(f"{prefix}-{name}") for name in names)), strict=True))
    people = await asyncio.gather(*(server.register(f"{prefix}-p{n}")
                                    for n in range(plan.people)))
    accounts = Accounts(people=list(people), **staff)
    await server.exempt(accounts.bot)
    await server.exempt(accounts.bare)
    http = Http()
    try:
        bot = await _bot_run(server, folder, accounts, plan, http)
        bare = await _bare_run(server, accounts, plan, http)
    finally:
        await http.close()
    return {"plan": plan.__dict__, "bot": bot, "bare": bare,
            "ratio_updates": _ratio(bot["wave"]["updates_per_s"], bare["wave"]["updates_per_s"]),
            "ratio_p50": _ratio(bot["wave"]["latency_p50_s"], bare["wave"]["latency_p50_s"])}


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b and not (math.isnan(a) or math.isnan(b)) else math.nan


async def _direct_rooms(users: list[MatrixUser], responder: MatrixUser) -> list[str]:
    rooms: list[str] = []
    for start in range(0, len(users), SETUP_BATCH):
        rooms += await asyncio.gather(*(
            mx.create_room(user, invite=[responder.user_id], is_direct=True)
            for user in users[start:start + SETUP_BATCH]))
    return rooms


async def _joined(responder: MatrixUser, rooms: list[str], timeout: float = 120.0) -> None:
    """Until the responder is in every room (it joins on the invites)."""
    deadline = time.monotonic() + timeout
    while True:
        joined = set((await mx.request(responder, "GET", f"{CLIENT}/joined_rooms"))
                     ["joined_rooms"])
        if joined >= set(rooms):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{responder.user_id} joined {len(joined & set(rooms))} of "
                               f"{len(rooms)} rooms")
        await asyncio.sleep(0.2)


def _people(accounts: Accounts, rooms: list[str]) -> list[MatrixPerson]:
    return [MatrixPerson(room, user=user) for user, room in zip(accounts.people, rooms,
                                                                strict=True)]


async def _bot_run(server: SynapseServer, folder: Path, accounts: Accounts, plan: MatrixPlan,
                   http: Http) -> dict[str, Any]:
    bot, officer, operator = accounts.bot, accounts.officer, accounts.operator
    officers = await mx.create_room(officer, invite=[bot.user_id, operator.user_id],
                                    name="Officiers")
    await mx.join(operator, officers)
    subscribers = await asyncio.gather(*(
        mx.create_room(bot, invite=[accounts.citizen.user_id], name=f"Abonné {n}")
        for n in range(plan.seeded)))
    # The citizen is in each subscriber room, to see when the first copy arrives.
    await asyncio.gather(*(mx.join(accounts.citizen, room) for room in subscribers))
    process = BotProcess(folder / "bot", _config(folder / "bot", server, accounts, officers))
    await process.seed(plan.seeded, dep70(), platform="matrix", chat_ids=list(subscribers))
    await process.start()
    try:
        operator_room, *_ = await _direct_rooms([operator], bot)
        rooms = await _direct_rooms(accounts.people, bot)
        await _joined(bot, [officers, operator_room, *rooms])
        return await _bot_spike(http, accounts, plan, process, officers, operator_room,
                                rooms, set(subscribers))
    finally:
        await process.stop()


def _config(folder: Path, server: SynapseServer, accounts: Accounts,
            officers: str) -> dict[str, Any]:
    def ids(*users: MatrixUser) -> list[str]:
        return [f"matrix:{user.user_id}" for user in users]

    bot = accounts.bot
    # The account is exempted on the homeserver, so the bot's pacing is raised to match,
    # as in the fan-out benchmark (per room it stays 5/s).
    return bot_config(folder, "http://127.0.0.1:9/bot", rate=30.0, paid=False, extra={
        "telegram": {"enabled": False},
        "matrix": {"enabled": True, "homeserver": server.base_url, "user_id": bot.user_id,
                   "access_token": bot.access_token, "device_id": bot.device_id,
                   "officers_room": officers},
        "rate_limits": {"matrix": {"global_per_second": 1000.0, "per_chat_per_second": 5.0,
                                   "per_group_per_minute": 300.0}},
        "roles": {"admins": [], "operators": ids(accounts.operator),
                  "officers": ids(accounts.officer)}})


async def _bot_spike(http: Http, accounts: Accounts, plan: MatrixPlan, process: BotProcess,
                     officers: str, operator_room: str, rooms: list[str],
                     subscribers: set[str]) -> dict[str, Any]:
    bot = accounts.bot.user_id
    seen: dict[str, float] = {}  # first time (Synapse's) of: request, acknowledged, copy

    def officer_heard(room_id: str, event: dict[str, Any]) -> None:
        text = body_of(event)
        if room_id == officers and event.get("sender") == bot:
            if "n°1" in text:
                seen.setdefault("request", event["origin_server_ts"] / 1000)
            if "n°1 validée" in text:
                seen.setdefault("acknowledged", event["origin_server_ts"] / 1000)

    def citizen_heard(room_id: str, event: dict[str, Any]) -> None:
        if room_id in subscribers and ALERT_TEXT in body_of(event):
            seen.setdefault("copy", event["origin_server_ts"] / 1000)

    watchers = [Listener(http, accounts.officer, officer_heard),
                Listener(http, accounts.citizen, citizen_heard)]
    crowd = MatrixCrowd(http, _people(accounts, rooms), bot, expect=True)
    await asyncio.gather(crowd.listen(), *(w.start() for w in watchers))
    try:
        await http.send(accounts.operator, operator_room, ALERT.replace("/", "!", 1))
        await _until(lambda: "request" in seen, 60, "no approval request", process)
        start = time.time() + 0.2
        valider = asyncio.create_task(_valider(http, accounts.officer, officers,
                                               start + plan.valider_at))
        await crowd.run([start] * len(rooms), start + plan.deadline, plan.stall)
        sent = await valider
        deadline = time.time() + 20
        while not {"acknowledged", "copy"} <= set(seen) and time.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await crowd.close()
        await asyncio.gather(*(w.stop() for w in watchers))
    enrolled = {str(room) for (room,) in query(
        process.database, "SELECT chat_id FROM subscribers WHERE platform = 'matrix'")}
    return {"wave": crowd.summary(enrolled),
            "acknowledged_s": round(seen.get("acknowledged", math.nan) - sent, 3),
            "first_copy_s": round(seen.get("copy", math.nan) - sent, 3),
            "bot_log_tail": process.log_tail(5)}


async def _valider(http: Http, officer: MatrixUser, officers: str, at: float) -> float:
    await sleep_until(at)
    sent = time.time()
    await http.send(officer, officers, "!valider 1")
    return sent


async def _until(check: Callable[[], bool], timeout: float, what: str,
                 process: BotProcess) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}\n{process.log_tail()}")
        await asyncio.sleep(0.05)


async def _bare_run(server: SynapseServer, accounts: Accounts, plan: MatrixPlan,
                    http: Http) -> dict[str, Any]:
    bare = accounts.bare
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bare_echo", "--homeserver", server.base_url,
        "--user-id", bare.user_id, "--device-id", bare.device_id, "--token", bare.access_token,
        cwd=str(ROOT), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    try:
        rooms = await _direct_rooms(accounts.people, bare)
        await _joined(bare, rooms)
        crowd = MatrixCrowd(http, _people(accounts, rooms), bare.user_id, expect=False)
        await crowd.listen()
        try:
            start = time.time() + 0.2
            await crowd.run([start] * len(rooms), start + plan.deadline, plan.stall)
        finally:
            await crowd.close()
        return {"wave": crowd.summary({room for room in rooms})}
    finally:
        if child.returncode is None:
            child.terminate()
        await child.wait()
