"""A bot on memory transports, driven one line per exchange: ``await bot.say(who, text)``."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import BotApp, build_services
from bot.clock import FrozenClock
from bot.config import (
    Config,
    PlatformRateLimits,
    RateLimitsConfig,
    RolesConfig,
    ThrottleConfig,
)
from bot.domain import Attachment, ChatKind, ChatRef, Identity, Incoming, Outgoing
from bot.geo.communes import CommuneLayer
from bot.organisations import configured_channels
from bot.transports.memory import MemoryTransport
from tests import postgres

ROOT = Path(__file__).resolve().parent.parent
OFFICERS = "officers"
# Tuesday 24 November 2026, 14:00 in Paris: far from any DST change.
START = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)

_LAYER: CommuneLayer | None = None


def shared_layer() -> CommuneLayer:
    """Loading the communes takes ~0.1 s; tests share one read-only layer."""
    global _LAYER
    if _LAYER is None:
        _LAYER = CommuneLayer.load([ROOT / "config/geo/communes-70.geojson",
                                    ROOT / "config/geo/communes-48.geojson"])
    return _LAYER


def test_config(database: Path, **overrides: object) -> Config:
    roles = RolesConfig(admins=["telegram:900"], operators=["telegram:100", "matrix:@op:test"],
                        officers=["telegram:200", "telegram:201", "telegram:100",
                                  "matrix:@officer:test"])
    # The clock is frozen in tests, so the flood budget never refills: make it roomy
    # (tests/test_security.py checks the real limits).
    # Likewise platform pacing would only slow tests down (tests/test_pacing.py checks it).
    unpaced = PlatformRateLimits(1e6, 1e6, 1e6)
    config = Config(database=database_for(database), roles=roles, base_dir=str(ROOT),
                    throttle=ThrottleConfig(messages_per_minute=10_000, burst=10_000),
                    rate_limits=RateLimitsConfig(unpaced, unpaced, unpaced))
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


def database_for(path: Path | str) -> str:
    """The database a test's bot uses for ``path``: that SQLite file, or on a PostgreSQL run
    (tests/conftest.py --backend postgresql) a PostgreSQL database of its own."""
    if postgres.ACTIVE is None or str(path) == ":memory:":
        return str(path)
    return postgres.ACTIVE.for_path(str(path))


test_config.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


class TestBot:
    """Plays people on memory transports; each ``say`` returns the replies it caused."""

    __test__ = False  # not a pytest test class

    def __init__(self, config: Config, platforms: Iterable[str] = ("telegram", "matrix"),
                 background_dispatch: bool = False) -> None:
        self.config = config
        self.background_dispatch = background_dispatch
        self.clock = FrozenClock(START)
        self.transports = {p: MemoryTransport(p, OFFICERS, self.clock) for p in platforms}
        for platform, transport in self.transports.items():  # the organisations' channels
            transport.more_officers = configured_channels(config, platform)
        self.app: BotApp | None = None
        self._event_ids = itertools.count(1)  # across restarts, as a platform's are
        # The display name each platform gives a person (Telegram's first and last name,
        # Matrix's display name), sent with everything they do; none by default.
        self.platform_names: dict[str, str] = {}

    async def start(self) -> TestBot:
        services = await build_services(self.config, self.clock, shared_layer(),
                                        frozenset(self.transports))
        self.app = BotApp(services, self.transports)
        await self.app.start()
        if not self.background_dispatch:  # tests decide when deliveries and ticks happen
            await self.app.core.dispatcher.stop()
            self.app.scheduler.pause()
        return self

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()
            self.app = None

    async def restart(self) -> None:
        await self.stop()
        for transport in self.transports.values():
            transport.posted.clear()
        await self.start()

    @property
    def core(self) -> BotApp:
        assert self.app is not None
        return self.app

    async def send(self, incoming: Incoming) -> list[Outgoing]:
        transport = self.transports[incoming.chat.platform]
        chat = incoming.chat.chat_id
        before = len(transport.posted[chat])
        await self.core.core.handle(incoming)
        # handle() leaves files (maps, exports) to the reply sender's loop: wait for them.
        await self.core.core.replies.flush()
        return [post.message for post in transport.posted[chat][before:]]

    async def say(self, who: str, text: str, chat: str | None = None) -> str:
        """``who`` speaks in their private chat (or ``chat``); returns the replies' text."""
        incoming = self._incoming(who, chat, text=text)
        return "\n".join(message.text for message in await self.send(incoming))

    async def press(self, who: str, label: str, chat: str | None = None) -> str:
        """Press the choice labelled ``label`` (substring) in the last message with choices."""
        data = self.choice_data(who, label, chat)
        incoming = self._incoming(who, chat, choice=data)
        return "\n".join(message.text for message in await self.send(incoming))

    async def press_data(self, who: str, data: str, chat: str | None = None) -> str:
        incoming = self._incoming(who, chat, choice=data)
        return "\n".join(message.text for message in await self.send(incoming))

    async def send_file(self, who: str, attachment: Attachment, text: str = "",
                        chat: str | None = None) -> str:
        """``who`` sends a file (a photo), with ``text`` as its caption."""
        incoming = self._incoming(who, chat, text=text, attachment=attachment)
        return "\n".join(message.text for message in await self.send(incoming))

    async def share_location(self, who: str, lat: float, lon: float) -> str:
        incoming = self._incoming(who, None, location=(lat, lon))
        return "\n".join(message.text for message in await self.send(incoming))

    def choice_data(self, who: str, label: str, chat: str | None = None) -> str:
        identity = Identity.parse(who)
        posts = self.transports[identity.platform].posted[chat or identity.user_id]
        for post in reversed(posts):
            options = post.current.choices
            exact = [o.data for o in options if o.label == label]
            partial = [o.data for o in options if label in o.label]
            if exact or partial:
                return (exact or partial)[0]
        raise AssertionError(f"no choice {label!r} in {who}'s chat")

    def _incoming(self, who: str, chat: str | None, **content: object) -> Incoming:
        identity = Identity.parse(who)
        officers = {OFFICERS, *self.transports[identity.platform].more_officers}
        kind = ChatKind.PRIVATE if chat is None else (
            ChatKind.OFFICERS if chat in officers else ChatKind.GROUP)
        return Incoming(sender=identity, chat=ChatRef(identity.platform, chat or identity.user_id),
                        chat_kind=kind, chat_title=chat or "", event_id=str(next(self._event_ids)),
                        sender_name=self.platform_names.get(who, ""),
                        **content)  # type: ignore[arg-type]

    def inbox(self, who: str) -> list[str]:
        identity = Identity.parse(who)
        return self.transports[identity.platform].texts(identity.user_id)

    def officers(self, platform: str = "telegram") -> list[str]:
        return self.transports[platform].texts(OFFICERS)

    async def enroll(self, who: str, communities: str, communes: str) -> None:
        await self.say(who, "/start")
        await self.press(who, "accepte")
        await self.say(who, communities)
        await self.say(who, "valider")
        await self.say(who, communes)
        await self.say(who, "terminer")
        reply = await self.say(who, "oui")
        assert "C'est fait" in reply, reply

    async def drain(self, timeout: float = 5.0) -> None:
        """Run the dispatcher until the outbox has nothing due, then close broadcasts."""
        dispatcher = self.core.core.dispatcher
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            busy = await dispatcher.resolve_once()
            for platform in self.transports:
                busy = await dispatcher.run_once(platform) or busy
            if not busy:
                return
        raise AssertionError("outbox still busy")

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))
