"""Crash test (issue 13): the real bot process, killed with SIGKILL at random instants.

``run_bot.py`` runs as in production (long polling or sync, SQLite on disk) against the
Bot API double, or a real Synapse. Each round enrolls a new subscriber, files an alert,
approves it and ends it; in each of these four scenarios one step, chosen at random, is
followed by a SIGKILL a random fraction of a second after the person acted (before, during
or after the bot handled it), and the bot is started again. Then every state change must
have happened exactly once (one subscriber per enrollment, one alert per ``/alerte``, one
approval, one end) and every reply must have arrived (at least once: a reply in flight at
the kill may come twice).

``CRASH_RUNS`` rounds per platform (default 5; ``make crash``: 50), seeded by
``CRASH_SEED``; ``CRASH_PLATFORMS`` (default "telegram matrix", in ``make test`` too).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.botproc import TOKEN, BotProcess, bot_config, query
from tests.synapse import client as mx
from tests.synapse.admin import MatrixUser
from tests.synapse.server import SynapseServer
from tests.telegram_double import RateLimits, TelegramDouble

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

RUNS = int(os.environ.get("CRASH_RUNS", "5"))
SEED = int(os.environ.get("CRASH_SEED", "13"))
PLATFORMS = os.environ.get("CRASH_PLATFORMS", "telegram matrix").split()
BOT_NAME = "alerte_crash_bot"
KILL_WITHIN = 0.25  # seconds after the person acted: the bot handles a step in about 0.05 s
REPLY_TIMEOUT = 30.0  # a restart included
SCENARIOS = ("enrollment", "alerte", "approval", "fin")
OFFICERS = "officers"  # the officers' channel; other chats are a person's private chat


@dataclass(frozen=True)
class Step:
    who: str  # "operator", "officer" or a subscriber-to-be
    act: str  # typed text, or "approve"
    expect: str  # in the bot's answer, in the person's private chat unless ``chat``
    chat: str | None = None


class Crash(ABC):
    """The bot process and the people around it; subclasses are the platforms."""

    def __init__(self, bot: BotProcess, rng: random.Random) -> None:
        self.bot = bot
        self.rng = rng
        self.kills: Counter[str] = Counter()

    @abstractmethod
    async def start(self) -> None:
        """Start the bot and wait until it listens: a kill then hits handling, not start-up."""

    @abstractmethod
    async def new_person(self, name: str) -> str:
        """A person who can write to the bot; returns their identity as the bot sees it."""

    @abstractmethod
    async def act(self, step: Step) -> Any:
        """What the person does; returns a mark: the bot's answer comes after it."""

    @abstractmethod
    async def answered(self, chat: str, expect: str, after: Any) -> bool: ...

    async def run(self, scenario: str, steps: list[Step]) -> None:
        """The steps in order, with a kill after one of them."""
        doomed = self.rng.randrange(len(steps))
        for index, step in enumerate(steps):
            mark = await self.act(step)
            if index == doomed:
                await asyncio.sleep(self.rng.uniform(0, KILL_WITHIN))
                await self.bot.kill()
                self.kills[scenario] += 1
                await self.start()
            await self.answer(step.chat or step.who, step.expect, mark)

    async def answer(self, chat: str, expect: str, after: Any = None) -> None:
        deadline = time.monotonic() + REPLY_TIMEOUT
        while not await self.answered(chat, expect, after):
            if time.monotonic() > deadline:
                raise AssertionError(f"reply lost: no {expect!r} in {chat}\n"
                                     f"{self.bot.log_tail()}")
            await asyncio.sleep(0.05)

    def count(self, sql: str, *params: object) -> int:
        return int(query(self.bot.database, sql, params)[0][0])


async def eventually(check: Callable[[], bool], timeout: float,
                     context: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time\n{context()}")
        await asyncio.sleep(0.02)


# -- Telegram, on the Bot API double ----------------------------------------------------------


TELEGRAM_IDS = {"operator": 100, "officer": 200, "admin": 900, OFFICERS: -1001000}


class TelegramCrash(Crash):
    def __init__(self, double: TelegramDouble, bot: BotProcess, rng: random.Random) -> None:
        super().__init__(bot, rng)
        self.double = double
        self.ids = dict(TELEGRAM_IDS)
        for name in ("operator", "officer", "admin"):
            double.user(self.ids[name], name)
        double.group(self.ids[OFFICERS], "Officiers", kind="supergroup",
                     members=[self.ids["operator"], self.ids["officer"]])

    async def start(self) -> None:
        polls = self.double.world.stats.requests["getupdates"]
        await self.bot.start()
        await eventually(lambda: self.double.world.stats.requests["getupdates"] > polls,
                         REPLY_TIMEOUT, self.bot.log_tail)

    async def new_person(self, name: str) -> str:
        self.ids[name] = 1_000 + len(self.ids)
        self.double.user(self.ids[name], name)
        return str(self.ids[name])

    async def act(self, step: Step) -> int:
        chat = self.ids[step.chat or step.who]
        mark = self.double.world.chat(chat).next_message_id - 1
        who = self.ids[step.who]
        if step.act == "approve":
            record, data = self._button(chat, "Valider")
            await self.double.press(who, chat, record["message_id"], data)
        else:
            await self.double.send_text(who, step.act, None if step.chat is None else chat)
        return mark

    def _button(self, chat: int, label: str) -> tuple[dict[str, Any], str]:
        for record in reversed(self.double.messages(chat)):
            rows = (record["reply_markup"] or {}).get("inline_keyboard", [])
            for button in (b for row in rows for b in row):
                if label in button["text"]:
                    return record, str(button["callback_data"])
        raise AssertionError(f"no button {label!r} in chat {chat}")

    async def answered(self, chat: str, expect: str, after: Any) -> bool:
        return any(expect in (r["text"] or "") for r in self.double.messages(self.ids[chat])
                   if r["message_id"] > (after or 0))


# -- Matrix, on Synapse -----------------------------------------------------------------------


class MatrixCrash(Crash):
    def __init__(self, server: SynapseServer, users: dict[str, MatrixUser], bot: BotProcess,
                 rng: random.Random) -> None:
        super().__init__(bot, rng)
        self.server = server
        self.users = users
        self.rooms: dict[str, str] = {}

    async def start(self) -> None:
        """Until the bot answers: its first sync done, it handles what comes."""
        await self.bot.start()
        if "operator" in self.rooms:
            await self.answer("operator", "Commandes",
                              await self.act(Step("operator", "!aide", "Commandes")))

    async def open(self) -> None:
        """The officers' room first (the configuration names it), then the bot."""
        officer, operator, bot = self.users["officer"], self.users["operator"], self.users["bot"]
        self.rooms[OFFICERS] = await mx.create_room(
            officer, invite=[bot.user_id, operator.user_id], name="Officiers")
        await mx.join(operator, self.rooms[OFFICERS])
        self.bot.config["matrix"]["officers_room"] = self.rooms[OFFICERS]
        await self.bot.start()
        await self._joined(officer, self.rooms[OFFICERS])
        await self.new_person("operator")

    async def _joined(self, member: MatrixUser, room: str) -> None:
        deadline = time.monotonic() + REPLY_TIMEOUT
        while self.users["bot"].user_id not in await mx.joined_members(member, room):
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not join {room}\n{self.bot.log_tail()}")
            await asyncio.sleep(0.1)

    async def new_person(self, name: str) -> str:
        if name not in self.users:
            self.users[name] = await self.server.register(f"{self.prefix}-{name}")
        user = self.users[name]
        self.rooms[name] = await mx.create_room(user, invite=[self.users["bot"].user_id],
                                                is_direct=True)
        await self._joined(user, self.rooms[name])
        return user.user_id

    @property
    def prefix(self) -> str:
        return self.users["bot"].user_id.split("-")[0].lstrip("@")

    async def act(self, step: Step) -> int:
        mark = int(time.time() * 1000) - 5  # server timestamps: same host, same clock
        room, user = self.rooms[step.chat or step.who], self.users[step.who]
        if step.act == "approve":
            await mx.send_reaction(user, room, await self._newest_request(room), "✅")
        else:
            await mx.send_text(user, room, step.act)
        return mark

    async def _newest_request(self, room: str) -> str:
        for event in reversed(await mx.messages(self.users["officer"], room, limit=50)):
            body = str(event.get("content", {}).get("body", ""))
            if event["sender"] == self.users["bot"].user_id and "Demande de diffusion" in body:
                return str(event["event_id"])
        raise AssertionError("no request in the officers' room")

    async def answered(self, chat: str, expect: str, after: Any) -> bool:
        reader = self.users["officer" if chat == OFFICERS else chat]
        for event in await mx.messages(reader, self.rooms[chat], limit=50):
            content = event.get("content", {})
            body = str(content.get("m.new_content", content).get("body", ""))
            if (event["sender"] == self.users["bot"].user_id and expect in body
                    and event.get("origin_server_ts", 0) >= (after or 0)):
                return True
        return False


# -- the rounds -------------------------------------------------------------------------------


def enrollment(person: str) -> list[Step]:
    return [Step(person, "/start", "Acceptez"), Step(person, "oui", "communautés"),
            Step(person, "commercant", "Sélection"), Step(person, "valider", "communes"),
            Step(person, "Vesoul", "Communes retenues"), Step(person, "terminer", "Récapitulatif"),
            Step(person, "oui", "C'est fait")]


async def one_round(crash: Crash, number: int) -> None:
    person, body = f"habitant{number}", f"Vitrine forcée rue Carnot, tournée {number}"
    identity = await crash.new_person(person)
    await crash.run("enrollment", enrollment(person))
    await crash.run("alerte", [Step("operator", f"/alerte cambriolage Vesoul+5km pour commercant"
                                                f" : {body}", "aperçu")])
    await crash.answer(OFFICERS, body)  # the request to the officers
    alert = crash.count("SELECT id FROM alerts WHERE body = ? AND parent_id IS NULL", body)
    await crash.run("approval", [Step("officer", "approve", "validée", OFFICERS)])
    await crash.answer(person, body)  # the broadcast reached the new subscriber
    await crash.run("fin", [Step("operator", f"/fin {alert}", "levée")])
    assert_once(crash, identity, body, alert)


def assert_once(crash: Crash, identity: str, body: str, alert: int) -> None:
    people = crash.count("SELECT count(*) FROM subscribers WHERE platform_user_id = ?", identity)
    communes = crash.count("SELECT count(*) FROM subscriber_communes c JOIN subscribers s"
                           " ON s.id = c.subscriber_id WHERE s.platform_user_id = ?", identity)
    alerts = crash.count("SELECT count(*) FROM alerts WHERE body = ? AND parent_id IS NULL",
                         body)
    approvals = crash.count("SELECT count(*) FROM approvals WHERE alert_id = ?", alert)
    ends = crash.count("SELECT count(*) FROM alerts WHERE parent_id = ? AND kind = 'all_clear'",
                       alert)
    assert (people, communes, alerts, approvals, ends) == (1, 1, 1, 1, 1), crash.bot.log_tail()


async def rounds(crash: Crash, platform: str) -> None:
    for number in range(RUNS):
        await one_round(crash, number)
    assert crash.kills == {scenario: RUNS for scenario in SCENARIOS}
    events = crash.count("SELECT count(*) FROM inbox")
    print(f"crash {platform}: {RUNS} rounds, kills {dict(crash.kills)}, "
          f"{events} events handled once")


@pytest.mark.skipif("telegram" not in PLATFORMS, reason="CRASH_PLATFORMS leaves Telegram out")
async def test_telegram_kills_change_everything_once_and_lose_no_reply(tmp_path: Path) -> None:
    limits = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)
    async with TelegramDouble(TOKEN, BOT_NAME, limits=limits) as double:
        ids = TELEGRAM_IDS
        config = bot_config(tmp_path, double.base_url, rate=1_000.0, paid=False, extra={
            "telegram": {"officers_chat_id": ids[OFFICERS], "poll_timeout": 5}})
        crash = TelegramCrash(double, BotProcess(tmp_path / "bot", config), random.Random(SEED))
        await crash.start()
        try:
            await rounds(crash, "telegram")
        finally:
            await crash.bot.stop()


@pytest.fixture
async def matrix_crash(request: pytest.FixtureRequest, tmp_path: Path
                       ) -> AsyncIterator[MatrixCrash]:
    server: SynapseServer = request.getfixturevalue("synapse")
    prefix = f"crash{int(time.time() * 1000) % 10**9}"
    users = {name: await server.register(f"{prefix}-{name}")
             for name in ("bot", "operator", "officer", "admin")}
    await server.exempt(users["bot"])
    bot = users["bot"]

    def ids(*names: str) -> list[str]:
        return [f"matrix:{users[name].user_id}" for name in names]

    config = bot_config(tmp_path, "http://127.0.0.1:9/bot", rate=1_000.0, paid=False, extra={
        "telegram": {"enabled": False},
        "matrix": {"enabled": True, "homeserver": server.base_url, "user_id": bot.user_id,
                   "access_token": bot.access_token, "device_id": bot.device_id},
        "roles": {"admins": ids("admin"), "operators": ids("operator"),
                  "officers": ids("officer")}})
    crash = MatrixCrash(server, users, BotProcess(tmp_path / "bot", config), random.Random(SEED))
    try:
        yield crash
    finally:
        await crash.bot.stop()


@pytest.mark.synapse
@pytest.mark.skipif("matrix" not in PLATFORMS, reason="CRASH_PLATFORMS leaves Matrix out")
async def test_matrix_kills_change_everything_once_and_lose_no_reply(
        matrix_crash: MatrixCrash) -> None:
    await matrix_crash.open()
    await rounds(matrix_crash, "matrix")
