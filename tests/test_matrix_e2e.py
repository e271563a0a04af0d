"""The bot on the Matrix transport, end to end, against a real Synapse.

People are real accounts driven through the Client-Server API (tests/synapse/client.py);
the bot is the real core and dispatcher on ``MatrixTransport``. Every test registers
its own accounts (a fresh prefix), so tests sharing the session's homeserver never
see each other's rooms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp, build_services
from bot.clock import Clock
from bot.config import Config, MatrixConfig, RolesConfig
from bot.domain import ChatKind, ChatRef, Identity, Incoming, Outgoing
from bot.storage.transport_state import TransportState
from bot.transports.base import RateLimited, RecipientGone, TransientError, Transport
from bot.transports.matrix import MatrixTransport
from bot.transports.memory import MemoryTransport
from tests.harness import ROOT, shared_layer
from tests.synapse import client as mx
from tests.synapse.admin import MatrixUser, http_json
from tests.synapse.server import SynapseServer

pytestmark = pytest.mark.synapse

JsonDict = dict[str, Any]
ALERT = "!alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée rue Carnot"
OPERATOR_NAME, OFFICER_NAME = "Adjudant Durand", "Capitaine Martin"
OFFICER2_NAME = "Lieutenant Petit"
VESOUL = "70550"  # INSEE code
_prefixes = itertools.count(1)


# -- people and the bot ------------------------------------------------------------------


@dataclass
class Cast:
    """Accounts for one test; the officers' room holds officers, the operator and a clerk."""

    server: SynapseServer
    bot: MatrixUser
    admin: MatrixUser
    operator: MatrixUser  # also an officer: may approve others' alerts, never their own
    officer: MatrixUser
    officer2: MatrixUser
    clerk: MatrixUser  # sits in the officers' room without any role
    citizen: MatrixUser
    neighbour: MatrixUser
    stranger: MatrixUser
    officers_room: str = ""

    def roles(self) -> RolesConfig:
        def ids(*users: MatrixUser) -> list[str]:
            return [f"matrix:{user.user_id}" for user in users]

        return RolesConfig(admins=ids(self.admin), operators=ids(self.operator),
                           officers=ids(self.officer, self.officer2, self.operator))


async def register_cast(server: SynapseServer) -> Cast:
    prefix = f"e2e{next(_prefixes)}"
    names = [f.name for f in dataclasses.fields(Cast) if f.type == "MatrixUser"]
    users = await asyncio.gather(*(server.register(f"{prefix}-{name}") for name in names))
    accounts: dict[str, Any] = dict(zip(names, users, strict=True))
    cast = Cast(server, **accounts)
    await server.exempt(cast.bot)
    # Staff read each other by these names (their memberships carry them), never by id.
    await asyncio.gather(*(mx.set_display_name(user, name) for user, name in (
        (cast.officer, OFFICER_NAME), (cast.officer2, OFFICER2_NAME),
        (cast.operator, OPERATOR_NAME))))
    return cast


@pytest.fixture
async def cast(synapse: SynapseServer) -> Cast:
    cast = await register_cast(synapse)
    members = [cast.officer2, cast.operator, cast.clerk]
    cast.officers_room = await mx.create_room(
        cast.officer, invite=[cast.bot.user_id, *(m.user_id for m in members)], name="Officiers")
    await asyncio.gather(*(mx.join(member, cast.officers_room) for member in members))
    return cast


class RunningBot:
    """BotApp + MatrixTransport on a database file, as production wires them."""

    def __init__(self, cast: Cast, database: Path, officers_room: str = "",
                 extra: dict[str, Transport] | None = None,
                 roles: RolesConfig | None = None) -> None:
        matrix = MatrixConfig(enabled=True, homeserver=cast.server.base_url,
                              user_id=cast.bot.user_id, access_token=cast.bot.access_token,
                              device_id=cast.bot.device_id, officers_room=officers_room)
        self.config = Config(database=str(database), roles=roles or cast.roles(),
                             matrix=matrix, base_dir=str(ROOT))
        self.extra = extra or {}
        self.app: BotApp | None = None
        self.transport: MatrixTransport | None = None

    async def start(self) -> RunningBot:
        platforms = frozenset({"matrix", *self.extra})
        services = await build_services(self.config, Clock(), shared_layer(), platforms)
        admins = set(self.config.roles.admins)
        self.transport = MatrixTransport(self.config.matrix, TransportState(services.db, "matrix"),
                                         is_admin=lambda identity: str(identity) in admins)
        self.app = BotApp(services, {"matrix": self.transport, **self.extra})
        await self.app.start()
        await asyncio.wait_for(self.transport.ready.wait(), 15)
        assert self.transport.connected  # what /healthz reads
        return self

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()
            self.app = None

    @property
    def services(self) -> Any:
        assert self.app is not None
        return self.app.services


@pytest.fixture
async def bot(cast: Cast, tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await RunningBot(cast, tmp_path / "bot.sqlite3", cast.officers_room).start()
    await until(lambda: bot_joined(cast, cast.officer, cast.officers_room))
    yield running
    await running.stop()


# -- waiting, talking ----------------------------------------------------------------------


async def until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition still false after {timeout}s")
        await asyncio.sleep(interval)


def body_of(event: JsonDict) -> str:
    return str(event.get("content", {}).get("body", ""))


def is_edit(event: JsonDict) -> bool:
    return bool(event.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace")


async def bot_posts(cast: Cast, user: MatrixUser, room: str, after: str | None = None,
                    edits: bool = False) -> list[JsonDict]:
    """The bot's messages in ``room`` (oldest first), after event ``after`` if given."""
    events = await mx.messages(user, room, limit=200)
    if after is not None:
        ids = [event["event_id"] for event in events]
        events = events[ids.index(after) + 1:] if after in ids else []
    return [e for e in events if e["sender"] == cast.bot.user_id
            and e["type"] == "m.room.message" and is_edit(e) == edits]


async def reply_to(cast: Cast, user: MatrixUser, room: str, after: str, expect: str,
                   timeout: float = 15.0) -> str:
    """Wait for a bot message containing ``expect`` after event ``after``; all replies so far."""
    async def replies() -> str | None:
        bodies = [body_of(e) for e in await bot_posts(cast, user, room, after)]
        return "\n".join(bodies) if any(expect in b for b in bodies) else None

    text: str = await until(replies, timeout)
    return text


async def say(cast: Cast, user: MatrixUser, room: str, text: str, expect: str) -> str:
    event_id = await mx.send_text(user, room, text)
    return await reply_to(cast, user, room, event_id, expect)


async def assert_nothing_answered(cast: Cast, user: MatrixUser, room: str, since: str) -> None:
    """The bot handles events in order: once it answered a later ``!aide``, anything sent
    before would have been answered already."""
    sentinel = await mx.send_text(user, room, "!aide")
    await reply_to(cast, user, room, sentinel, "Commandes disponibles")
    # The map that follows an approval request may land late; it answers nothing.
    posts = [p for p in await bot_posts(cast, user, room, since)
             if p["content"].get("msgtype") != "m.image"]
    assert [body_of(p).splitlines()[0] for p in posts] == ["Commandes disponibles :"], posts


def number_of(body: str, label: str) -> str:
    """The number a person types to pick ``label`` in a numbered list."""
    for number, text in re.findall(r"^\s*(\d+)\. (.*)$", body, re.MULTILINE):
        if label in text:
            return str(number)
    raise AssertionError(f"no choice {label!r} in {body!r}")


async def bot_joined(cast: Cast, member: MatrixUser, room: str) -> bool:
    return cast.bot.user_id in await mx.joined_members(member, room)


async def open_dm(cast: Cast, user: MatrixUser, encrypted: bool = False) -> str:
    room = await mx.create_room(user, invite=[cast.bot.user_id], is_direct=True,
                                encrypted=encrypted)
    await until(lambda: bot_joined(cast, user, room))
    return room


async def open_group(cast: Cast, owner: MatrixUser, name: str) -> str:
    room = await mx.create_room(owner, invite=[cast.bot.user_id], name=name)
    await until(lambda: bot_joined(cast, owner, room))
    return room


async def enroll(cast: Cast, user: MatrixUser, room: str, community: str, commune: str) -> None:
    """The whole /start conversation, answering choices by their number."""
    welcome = await say(cast, user, room, "!start", "Acceptez-vous")
    await say(cast, user, room, number_of(welcome, "J'accepte"), "Quelles communautés")
    await say(cast, user, room, community, "Sélection")
    await say(cast, user, room, "valider", "Quelles communes")
    await say(cast, user, room, commune, "Communes retenues")
    summary = await say(cast, user, room, "terminer", "Confirmez-vous")
    await say(cast, user, room, number_of(summary, "Confirmer"), "C'est fait")


async def enroll_quickly(running: RunningBot, user: MatrixUser, room: str) -> None:
    """Straight into the database: a commercant of Vesoul, when the dialogue is not the point."""
    await running.services.stores.subscribers.enroll(
        "matrix", user.user_id, room, "fr", running.config.consent_version, Clock().now(),
        [VESOUL], ["commercant"])


async def request_event(cast: Cast, number: int) -> JsonDict:
    def is_request(event: JsonDict) -> bool:
        return (event["sender"] == cast.bot.user_id and not is_edit(event)
                and f"Demande de diffusion n°{number}" in body_of(event))

    return await mx.wait_for_event(cast.officer, cast.officers_room, is_request,
                                   timeout=15, interval=0.1)


async def request_edited(cast: Cast, request_id: str, expect: str) -> JsonDict:
    def edited(event: JsonDict) -> bool:
        new = event.get("content", {}).get("m.new_content", {})
        return (mx.relates_to(request_id, "m.replace")(event)
                and expect in str(new.get("body", "")))

    return await mx.wait_for_event(cast.officer, cast.officers_room, edited, timeout=15,
                                   interval=0.1)


async def react(cast: Cast, user: MatrixUser, event_id: str, key: str, expect: str) -> str:
    reaction = await mx.send_reaction(user, cast.officers_room, event_id, key)
    return await reply_to(cast, user, cast.officers_room, reaction, expect)


async def alert_status(running: RunningBot, alert_id: int = 1) -> str:
    alert = await running.services.stores.alerts.get(alert_id)
    assert alert is not None
    return str(alert.status)


# -- subscribers ---------------------------------------------------------------------------


async def test_dm_enrollment_with_numbered_answers(cast: Cast, bot: RunningBot) -> None:
    room = await open_dm(cast, cast.citizen)
    await until(lambda: _in_direct_rooms(cast, room))
    assert await bot_posts(cast, cast.citizen, room) == []  # the bot waits to be spoken to
    start = await mx.send_text(cast.citizen, room, "/start")
    await reply_to(cast, cast.citizen, room, start, "Acceptez-vous")
    (post,) = await bot_posts(cast, cast.citizen, room, start)
    assert post["content"]["msgtype"] == "m.text"
    assert post["content"]["body"].endswith("  1. J'accepte\n  2. Je refuse")
    assert post["content"]["formatted_body"].endswith(
        "<ol><li>J'accepte</li><li>Je refuse</li></ol>")
    await say(cast, cast.citizen, room, "!annuler", "annulé")
    await enroll(cast, cast.citizen, room, "commercant", "Vesoul")
    subscriber = await bot.services.stores.subscribers.get("matrix", cast.citizen.user_id)
    assert subscriber is not None and subscriber.chat_id == room
    assert subscriber.status == "active"


async def test_vesouk_flow_answered_by_typed_numbers(cast: Cast, bot: RunningBot) -> None:
    """« Vesouk, 70000, Saint-Loup »: three short questions, one at a time, each with its
    own numbered choices, answered by typing a number as Element users do."""
    room = await open_dm(cast, cast.citizen)
    welcome = await say(cast, cast.citizen, room, "!start", "Acceptez-vous")
    assert "désinscrire à tout moment avec !stop" in welcome
    communities = await say(cast, cast.citizen, room, "J’accepte", "Quelles communautés")
    assert "Répondez par leur numéro" in communities and "Touchez" not in communities
    selection = await say(cast, cast.citizen, room, number_of(communities, "Commerçants"),
                          "Sélection")
    await say(cast, cast.citizen, room, number_of(selection, "Valider"), "Quelles communes")
    first = await say(cast, cast.citizen, room, "Vesouk, 70000, Saint-Loup", "Vouliez-vous")
    assert first == ("« Vesouk » : commune introuvable. Vouliez-vous dire :\n"
                     "(Encore 2 après celle-ci.)\n\n"
                     "  1. Vesoul — 70000\n  2. Aucune de celles-ci")
    second = await say(cast, cast.citizen, room, "1", "Le code postal 70000")
    assert second.startswith("✔ Vesoul — 70000\nLe code postal 70000 couvre")
    assert ". Vesoul — 70000\n" not in second  # chosen already: not offered again
    third = await say(cast, cast.citizen, room, number_of(second, "Noidans-lès-Vesoul"),
                      "Saint-Loup")
    assert third.startswith("✔ Noidans-lès-Vesoul — 70000\n« Saint-Loup » : commune")
    assert "— 48" not in third  # no Lozère village for a Haute-Saône subscriber
    done = await say(cast, cast.citizen, room, number_of(third, "Saint-Loup-sur-Semouse"),
                     "Communes retenues")
    summary = await say(cast, cast.citizen, room, number_of(done, "Terminer"),
                        "Confirmez-vous")
    assert "Vesoul — 70000, Noidans-lès-Vesoul — 70000, Saint-Loup-sur-Semouse — 70800" \
        in summary
    await say(cast, cast.citizen, room, "oui", "C'est fait")
    subscriber = await bot.services.stores.subscribers.get("matrix", cast.citizen.user_id)
    assert subscriber is not None
    profile = await bot.services.stores.subscribers.profile(subscriber)
    assert set(profile.communes) == {VESOUL, "70388", "70467"}


async def _in_direct_rooms(cast: Cast, room: str) -> bool:
    """The bot recorded the DM in its m.direct account data, under the person."""
    return room in (await mx.direct_rooms(cast.bot)).get(cast.citizen.user_id, [])


async def test_commands_chatter_and_unreadable_content_in_a_dm(cast: Cast,
                                                               bot: RunningBot) -> None:
    room = await open_dm(cast, cast.citizen)
    help_text = await say(cast, cast.citizen, room, "!aide", "Commandes disponibles")
    assert "valider" not in help_text
    assert "!stop — " in help_text and "/stop" not in help_text  # as Element users type it
    await say(cast, cast.citizen, room, "/aide", "Commandes disponibles")
    await say(cast, cast.citizen, room, "!inconnue", "Commande inconnue : !inconnue")
    await say(cast, cast.citizen, room, "bonjour", "Je n'ai pas compris")
    image = await mx.send_event(cast.citizen, room, "m.room.message",
                                {"msgtype": "m.image", "body": "photo.jpg", "url": "mxc://x/y"})
    await reply_to(cast, cast.citizen, room, image, "que du texte")
    # Edits and redactions of a command are ignored by design: nothing runs twice.
    command = await mx.send_text(cast.citizen, room, "!profil")
    await reply_to(cast, cast.citizen, room, command, "pas encore inscrit")
    await mx.edit(cast.citizen, room, command, "!stop")
    await mx.redact(cast.citizen, room, command)
    before = (await bot_posts(cast, cast.citizen, room))[-1]["event_id"]
    await assert_nothing_answered(cast, cast.citizen, room, before)


async def test_encrypted_dm_is_answered_in_clear(cast: Cast, bot: RunningBot) -> None:
    room = await open_dm(cast, cast.citizen, encrypted=True)
    ciphertext = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEp…",
                  "sender_key": "k", "session_id": "s", "device_id": "D"}
    event = await mx.send_event(cast.citizen, room, "m.room.encrypted", ciphertext)
    await reply_to(cast, cast.citizen, room, event, "Je ne peux pas lire les messages chiffrés")
    (reply,) = await bot_posts(cast, cast.citizen, room, event)
    assert reply["type"] == "m.room.message"  # sent in clear: the bot has no keys


# -- alerts and approvals ---------------------------------------------------------------------


async def test_alert_approved_by_reaction_reaches_dms_and_a_group(cast: Cast,
                                                                 bot: RunningBot) -> None:
    shop = await open_dm(cast, cast.citizen)
    await enroll(cast, cast.citizen, shop, "commercant", "Vesoul")
    farm = await open_dm(cast, cast.neighbour)
    await enroll(cast, cast.neighbour, farm, "agriculteur", "Vesoul")
    shop2 = await open_dm(cast, cast.stranger)
    await enroll_quickly(bot, cast.stranger, shop2)
    group = await open_group(cast, cast.admin, "Commerçants de Vesoul")
    await say(cast, cast.admin, group, "!groupe Vesoul+10km pour commercant", "Groupe inscrit")
    desk = await open_dm(cast, cast.operator)
    preview = await say(cast, cast.operator, desk, ALERT, "aperçu")
    assert "Portée : 2 abonnés, 1 groupe," in preview
    request = await request_event(cast, 1)
    assert request["content"]["body"].endswith("  1. ✅ Valider\n  2. ❌ Refuser")
    # Officers approve with a reaction; others are refused, the requester too. The
    # clerk typed no command: nothing is said about their ✅ before the whole room.
    await until(lambda: _containing(cast, cast.officer, cast.officers_room, "Carte de l'alerte"))
    clerk = await mx.send_reaction(cast.clerk, cast.officers_room, request["event_id"], "✅")
    await assert_nothing_answered(cast, cast.clerk, cast.officers_room, clerk)
    await react(cast, cast.operator, request["event_id"], "✅", "un autre officier")
    assert await alert_status(bot) == "pending"
    ack = await react(cast, cast.officer, request["event_id"], "✅️", "diffusion à 3")
    assert "n°1" in ack
    assert body_of(request).startswith(f"Demande de diffusion n°1 — par {OPERATOR_NAME}, le ")
    assert body_of(request).count("!valider 1 · !refuser 1 <motif>") == 1
    edit = await request_edited(cast, request["event_id"], f"Validée par {OFFICER_NAME}")
    decided = edit["content"]["m.new_content"]["body"]
    assert "matrix:" not in body_of(request) + decided
    assert "Valider" not in decided  # no choices any more
    assert "!valider" not in decided and "!refuser" not in decided  # nor commands
    for user, room in ((cast.citizen, shop), (cast.stranger, shop2)):
        await until(partial(_containing, cast, user, room, "Vitrine forcée rue Carnot"))
    group_alert = await until(lambda: _containing(cast, cast.admin, group, "Vitrine forcée"))
    assert group_alert["content"]["format"] == "org.matrix.custom.html"
    report = await until(lambda: _containing(cast, cast.officer, cast.officers_room, "Rapport"))
    assert "Rapport alerte n°1 : 3 envoyés, 0 échec, 0 bloqué sur 3" in body_of(report)
    await until(lambda: _containing(cast, cast.operator, desk, "Rapport alerte n°1"))
    assert not await _containing(cast, cast.neighbour, farm, "Vitrine forcée")
    await until(lambda: _status_is(bot, 1, "done"))


async def _status_is(running: RunningBot, alert_id: int, status: str) -> bool:
    return await alert_status(running, alert_id) == status


async def _containing(cast: Cast, user: MatrixUser, room: str, text: str) -> JsonDict | None:
    return next((p for p in await bot_posts(cast, user, room) if text in body_of(p)), None)


async def test_approval_by_command_rejection_by_reaction_and_ignored_reactions(
        cast: Cast, bot: RunningBot) -> None:
    desk = await open_dm(cast, cast.operator)
    await say(cast, cast.operator, desk, ALERT, "aperçu")
    await say(cast, cast.operator, desk, "!alerte vol Gray : Vol de gasoil", "aperçu")
    first, second = await request_event(cast, 1), await request_event(cast, 2)
    room = cast.officers_room
    # The maps are drawn after commit: n°2's follows its request a moment later.
    await until(lambda: _containing(cast, cast.officer, room, "Carte de l'alerte n°2"))
    # Other keys, unrelated events and a bare number are none of the bot's business.
    chatter = await mx.send_text(cast.officer, room, "je regarde la n°1")
    await mx.send_reaction(cast.officer, room, first["event_id"], "👍")
    await mx.send_reaction(cast.officer, room, chatter, "✅")
    await mx.send_text(cast.officer, room, "1")
    await assert_nothing_answered(cast, cast.officer, room, chatter)
    # Commands work in the officers' room, under the same checks as reactions.
    await say(cast, cast.clerk, room, "!valider 1", "réservée")
    await say(cast, cast.operator, room, "!valider 1", "un autre officier")
    await say(cast, cast.officer2, room, "!valider 1", "diffusion à 0")
    await request_edited(cast, first["event_id"], f"Validée par {OFFICER2_NAME}")
    await react(cast, cast.officer, second["event_id"], "❌", "refusée")
    await request_edited(cast, second["event_id"], f"Refusée par {OFFICER_NAME}")
    await until(lambda: _status_is(bot, 1, "done"))
    assert await alert_status(bot, 2) == "rejected"
    await until(lambda: _containing(cast, cast.operator, desk, "n°2 a été refusée"))
    # A late ✅ on a decided request is told so, not silently dropped.
    await react(cast, cast.officer2, second["event_id"], "✅", "n'est plus en attente")


# -- rooms ----------------------------------------------------------------------------------


async def test_invitations_groups_and_departures(cast: Cast, bot: RunningBot) -> None:
    stranger_room = await mx.create_room(cast.stranger, invite=[cast.bot.user_id], name="Club")
    await until(lambda: _membership(cast.stranger, stranger_room, cast.bot.user_id, "leave"))
    group = await open_group(cast, cast.admin, "Mairie")
    await mx.invite(cast.admin, group, cast.citizen.user_id)
    await mx.join(cast.citizen, group)
    start = await mx.send_text(cast.citizen, group, "bonjour à tous")
    await mx.send_text(cast.citizen, group, "!inconnue")
    await say(cast, cast.citizen, group, "!start", "s'utilise en conversation privée")
    posts = await bot_posts(cast, cast.citizen, group, start)
    assert [body_of(p) for p in posts] == [
        "La commande !start s'utilise en conversation privée avec le bot."]
    await say(cast, cast.citizen, group, "!groupe Vesoul", "réservée")
    await say(cast, cast.admin, group, "!groupe Vesoul", "Groupe inscrit")
    groups = bot.services.stores.groups
    assert (await groups.get("matrix", group)).title == "Mairie"
    # Kicked from the group: it stops being a target.
    await mx.request(cast.admin, "POST", f"/_matrix/client/v3/rooms/{_q(group)}/kick",
                     {"user_id": cast.bot.user_id})
    await until(lambda: _group_status(bot, group, "blocked"))
    await mx.invite(cast.admin, group, cast.bot.user_id)  # invited back: active again
    await until(lambda: _group_status(bot, group, "active"))
    # The DM partner leaves: the subscriber is blocked and the bot leaves the dead room.
    dm = await open_dm(cast, cast.citizen)
    await enroll_quickly(bot, cast.citizen, dm)
    await mx.leave(cast.citizen, dm)
    await until(lambda: _subscriber_status(bot, cast.citizen, "blocked"))


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


async def _membership(viewer: MatrixUser, room: str, user_id: str, expected: str) -> bool:
    path = f"/_matrix/client/v3/rooms/{_q(room)}/state/m.room.member/{_q(user_id)}"
    return bool((await mx.request(viewer, "GET", path)).get("membership") == expected)


async def _group_status(running: RunningBot, room: str, status: str) -> bool:
    group = await running.services.stores.groups.get("matrix", room)
    return group is not None and group.status == status


async def _subscriber_status(running: RunningBot, user: MatrixUser, status: str) -> bool:
    subscriber = await running.services.stores.subscribers.get("matrix", user.user_id)
    return subscriber is not None and subscriber.status == status


# -- restarts ---------------------------------------------------------------------------------


async def test_restart_neither_replays_nor_misses(cast: Cast, tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    first = await RunningBot(cast, database).start()
    room = await open_dm(cast, cast.citizen)
    await say(cast, cast.citizen, room, "!aide", "Commandes disponibles")
    await first.stop()
    while_down = await mx.send_text(cast.citizen, room, "!inconnue")
    second = await RunningBot(cast, database).start()
    try:
        await reply_to(cast, cast.citizen, room, while_down, "Commande inconnue")
        answer = (await bot_posts(cast, cast.citizen, room, while_down))[0]
        await assert_nothing_answered(cast, cast.citizen, room, answer["event_id"])
        bodies = [body_of(p) for p in await bot_posts(cast, cast.citizen, room)]
        assert sum("Commande inconnue" in b for b in bodies) == 1
        assert sum(b.startswith("Commandes disponibles") for b in bodies) == 2
    finally:
        await second.stop()
    # A new database (no token): nothing said before this start is a command.
    fresh = await RunningBot(cast, tmp_path / "other.sqlite3").start()
    try:
        count = len(await bot_posts(cast, cast.citizen, room))
        await say(cast, cast.citizen, room, "!aide", "Commandes disponibles")
        assert len(await bot_posts(cast, cast.citizen, room)) == count + 1
    finally:
        await fresh.stop()


# -- the transport's own contract ---------------------------------------------------------------


async def test_big_messages_split_and_errors_are_typed(cast: Cast, bot: RunningBot) -> None:
    transport = bot.transport
    assert transport is not None
    room = await open_dm(cast, cast.citizen)
    long_text = "\n".join(f"ligne {i} " + "é" * 300 for i in range(400))  # ~250 KB
    message_id = await transport.send(room, Outgoing(long_text))
    first_id = message_id.split()[0]
    parts = await until(lambda: _parts(cast, room, first_id, long_text))
    assert len(parts) >= 4 and message_id.split() == [p["event_id"] for p in parts]
    await transport.edit(room, message_id, Outgoing("x" * 90_000))
    edit = await mx.wait_for_event(cast.citizen, room, mx.relates_to(first_id, "m.replace"))
    assert edit["content"]["m.new_content"]["body"].endswith("[…]")
    await transport.delete(room, message_id)  # a recall is a redaction, of every part
    for part in parts:
        assert (await mx.get_event(cast.citizen, room, part["event_id"]))["content"] == {}
    await mx.leave(cast.citizen, room)  # the bot leaves the dead DM in turn
    await until(lambda: room not in transport.rooms.joined)
    with pytest.raises(RecipientGone):
        await transport.send(room, Outgoing("encore là ?"))
    with pytest.raises(RecipientGone):
        await transport.send("!nulle-part:test.local", Outgoing("?"))


async def _parts(cast: Cast, room: str, first_id: str, text: str) -> list[JsonDict] | None:
    posts = await bot_posts(cast, cast.citizen, room)
    ids = [p["event_id"] for p in posts]
    parts = posts[ids.index(first_id):] if first_id in ids else []
    return parts if "\n".join(body_of(p) for p in parts) == text else None


async def test_sync_loop_survives_an_unreachable_homeserver(tmp_path: Path) -> None:
    services = await build_services(Config(database=str(tmp_path / "x.sqlite3"),
                                           base_dir=str(ROOT)), Clock(), shared_layer())
    dead = MatrixConfig(enabled=True, homeserver="http://127.0.0.1:9",  # nothing listens
                        user_id="@alertes:test.local", access_token="t", device_id="D")
    transport = MatrixTransport(dead, TransportState(services.db, "matrix"), lambda _: False)

    async def ignore(_: Incoming) -> None:
        return None

    await transport.start(ignore)
    try:
        with pytest.raises(TransientError):
            await transport.send("!room:test.local", Outgoing("?"))
        await asyncio.sleep(0.3)
        assert transport._sync_task is not None and not transport._sync_task.done()
        assert not transport.ready.is_set()
        assert not transport.connected
    finally:
        started = time.monotonic()
        await transport.stop()
        await services.close()
    assert time.monotonic() - started < 2


async def test_password_login_when_no_token_is_configured(cast: Cast, tmp_path: Path) -> None:
    running = RunningBot(cast, tmp_path / "bot.sqlite3")
    running.config = dataclasses.replace(running.config, matrix=dataclasses.replace(
        running.config.matrix, access_token="", device_id="", password=cast.bot.password))
    await running.start()
    try:
        room = await open_dm(cast, cast.citizen)
        await say(cast, cast.citizen, room, "!aide", "Commandes disponibles")
    finally:
        await running.stop()


# -- Synapse's default rate limits ---------------------------------------------------------------

BURST = 15


async def test_burst_of_deliveries_through_default_rate_limits(
        synapse_default_limits: SynapseServer, tmp_path: Path) -> None:
    """The bot is not exempted: Synapse allows 10 messages, then one every 5 s. Every
    subscriber is served once, through M_LIMIT_EXCEEDED pauses, and the report is exact.

    The operator and the officers sit on a memory transport (the "console"): the core
    does not retry its own replies and reports when rate limited, and here every Matrix
    message the bot may send goes to the broadcast.
    """
    server = synapse_default_limits
    cast = await register_cast(server)  # the bot starts exempted: see below
    people = await asyncio.gather(*(server.register(f"{cast.bot.localpart}-{n}")
                                    for n in range(BURST)))
    desk = MemoryTransport("console", "officers")
    roles = RolesConfig(operators=["console:op"], officers=["console:off"])
    running = RunningBot(cast, tmp_path / "bot.sqlite3", extra={"console": desk}, roles=roles)
    await running.start()
    try:
        # Joining 15 DMs draws on the same budget as messages (5 s per join once the
        # burst is spent): join while exempted, then lift the exemption.
        rooms = await asyncio.gather(*(open_dm(cast, person) for person in people))
        await asyncio.to_thread(_remove_ratelimit_override, server, cast.bot)
        limited = _count_rate_limits(running)
        for person, room in zip(people, rooms, strict=True):
            await enroll_quickly(running, person, room)
        started = time.monotonic()
        await _console(running, "op", "op", ChatKind.PRIVATE, text=ALERT)
        await _console(running, "off", "officers", ChatKind.OFFICERS, choice="ap:1:ok")
        report = await until(lambda: next(
            (t for t in desk.texts("officers") if t.startswith("Rapport")), None), timeout=90)
        elapsed = time.monotonic() - started
        assert f"{BURST} envoyés, 0 échec, 0 bloqué sur {BURST}" in report
        received = await asyncio.gather(*(bot_posts(cast, p, r) for p, r in zip(
            people, rooms, strict=True)))
        assert [len(posts) for posts in received] == [1] * BURST
        assert all("Vitrine forcée" in body_of(posts[0]) for posts in received)
        assert limited[0] > 0, "expected M_LIMIT_EXCEEDED with Synapse's default rc_message"
        print(f"\n{BURST} DMs in {elapsed:.1f}s through {limited[0]} M_LIMIT_EXCEEDED")
    finally:
        await running.stop()


def _remove_ratelimit_override(server: SynapseServer, user: MatrixUser) -> None:
    url = f"{server.base_url}/_synapse/admin/v1/users/{_q(user.user_id)}/override_ratelimit"
    http_json("DELETE", url, token=server.admin.access_token)


def _count_rate_limits(running: RunningBot) -> list[int]:
    """Count the RateLimited errors the engine meets (one-element list: a shared counter)."""
    transport = running.transport
    assert transport is not None
    original, count = transport.send, [0]

    async def send(chat_id: str, message: Outgoing) -> str:
        try:
            return await original(chat_id, message)
        except RateLimited:
            count[0] += 1
            raise

    transport.send = send  # type: ignore[method-assign]
    return count


async def _console(running: RunningBot, who: str, chat: str, kind: ChatKind,
                   **content: Any) -> None:
    assert running.app is not None
    await running.app.core.handle(Incoming(sender=Identity("console", who),
                                           chat=ChatRef("console", chat), chat_kind=kind,
                                           **content))


async def test_data_export_arrives_as_a_file(cast: Cast, bot: RunningBot) -> None:
    room = await open_dm(cast, cast.citizen)
    await enroll_quickly(bot, cast.citizen, room)
    sent = await mx.send_text(cast.citizen, room, "!mesdonnees")

    async def file_event() -> JsonDict | None:
        events = await bot_posts(cast, cast.citizen, room, sent)
        return next((e for e in events if e["content"].get("msgtype") == "m.file"), None)

    event = await until(file_event)
    assert event["content"]["body"] == "mes-donnees.json"
    assert event["content"]["url"].startswith("mxc://")
    assert event["content"]["info"]["mimetype"] == "application/json"
