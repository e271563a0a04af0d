"""End to end on Telegram: BotApp and the real TelegramTransport against the Bot API double.

Everything goes over loopback HTTP exactly as with api.telegram.org: people write, press
buttons and share locations in the double; the bot long-polls, answers, broadcasts in the
background (real clock), and the tests read what the double received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.app import BotApp, build_services
from bot.clock import Clock
from bot.config import Config, RolesConfig, TelegramConfig, ThrottleConfig
from bot.context import Services, Stores
from bot.transports.telegram import TelegramTransport
from tests.harness import ROOT, shared_layer
from tests.telegram_double import RateLimits, Record, TelegramDouble

# PTB's own RetryAfter constructor reads the deprecated int attribute; nothing to fix here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:e2e-token"
BOT_NAME = "alerte_test_bot"
OPERATOR, OFFICER, OFFICER2, ADMIN = 100, 200, 201, 900  # OPERATOR is an officer too
MEMBER = 300  # in both groups, no role
ALICE, BOB = 1, 2  # subscribers-to-be
OFFICERS = -1001000  # the officers' supergroup
TOWN = -400  # a merchants' group, a basic group (so that it can be upgraded)
UNKNOWN_PERSON = 555  # has a role but never wrote to the bot: its menu is refused
LOOSE = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)
ALERT = "/alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée rue Carnot"


def e2e_config(database: Path, double: TelegramDouble) -> Config:
    roles = RolesConfig(
        admins=[f"telegram:{ADMIN}"],
        operators=[f"telegram:{OPERATOR}", "matrix:@op:test", f"telegram:{UNKNOWN_PERSON}"],
        officers=[f"telegram:{OFFICER}", f"telegram:{OFFICER2}", f"telegram:{OPERATOR}"])
    telegram = TelegramConfig(enabled=True, token=TOKEN, base_url=double.base_url,
                              base_file_url=double.base_file_url, officers_chat_id=OFFICERS,
                              poll_timeout=1)
    # Tests type faster than people: the per-person flood guard would get in the way.
    throttle = ThrottleConfig(messages_per_minute=10_000, burst=10_000)
    return Config(database=str(database), roles=roles, telegram=telegram, throttle=throttle,
                  base_dir=str(ROOT))


def populate(double: TelegramDouble) -> None:
    for user_id, name in ((OPERATOR, "Opérateur"), (OFFICER2, "Officière"), (ADMIN, "Admin"),
                          (MEMBER, "Membre"), (ALICE, "Alice"), (BOB, "Bob")):
        double.user(user_id, name)
    # Staff are shown by their Telegram first and last name, never their id.
    double.user(OFFICER, "Capitaine", last_name="Martin")
    double.group(OFFICERS, "Officiers de permanence", kind="supergroup",
                 members=[OPERATOR, OFFICER, OFFICER2, MEMBER])
    double.group(TOWN, "Commerçants de Vesoul", members=[ADMIN, MEMBER, ALICE])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Telegram:
    """The double and the bot running on it; one-liners play people and wait for the bot."""

    def __init__(self, double: TelegramDouble, config: Config) -> None:
        self.double = double
        self.config = config
        self.transport = TelegramTransport(config.telegram)
        self.app: BotApp | None = None
        self.services: Services | None = None

    async def build(self) -> Services:
        """The services alone, to seed the database before the bot starts."""
        self.services = await build_services(self.config, Clock(), shared_layer(),
                                             frozenset({"telegram"}))
        return self.services

    async def start(self) -> Telegram:
        services = self.services or await self.build()
        self.app = BotApp(services, {"telegram": self.transport})
        await self.app.start()
        return self

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()

    @property
    def stores(self) -> Stores:
        assert self.services is not None
        return self.services.stores

    # -- what people do -----------------------------------------------------------------

    async def say(self, user: int, text: str, chat: int | None = None, expect: str = "") -> str:
        """``user`` writes; returns the first new bot message in that chat containing ``expect``."""
        sent = await self.double.send_text(user, text, chat)
        return await self.next_text(chat or user, expect, after=sent["message_id"])

    async def press(self, user: int, label: str, chat: int | None = None,
                    expect: str = "") -> str:
        """Press the newest button whose label contains ``label``; the press is answered."""
        where = chat or user
        record, data = self.button(where, label)
        return await self.press_data(user, where, record["message_id"], data, expect)

    async def press_data(self, user: int, chat: int, message_id: int, data: str,
                         expect: str = "", forged: bool = False) -> str:
        after = self.mark(chat)
        query = await self.double.press(user, chat, message_id, data, forged=forged)
        await self.answered(query)
        return await self.next_text(chat, expect, after)

    # -- what the bot did ---------------------------------------------------------------

    def mark(self, chat: int) -> int:
        """The id of the chat's newest message: whatever the bot posts next is above it."""
        return self.double.world.chat(chat).next_message_id - 1

    async def next_text(self, chat: int, expect: str = "", after: int = 0) -> str:
        record = await self.next_record(chat, expect, after)
        return str(record["text"])

    async def next_record(self, chat: int, expect: str = "", after: int = 0,
                          timeout: float = 5.0) -> Record:
        try:
            return await self.double.wait_for_message(
                chat, lambda r: expect in (r["text"] or ""), timeout=timeout, after=after)
        except TimeoutError:
            seen = [r["text"] for r in self.double.messages(chat) if r["message_id"] > after]
            raise AssertionError(f"no {expect!r} in chat {chat}; the bot posted {seen}") from None

    def button(self, chat: int, label: str) -> tuple[Record, str]:
        """The newest message with a button labelled ``label`` (else containing it)."""
        for record in reversed(self.double.messages(chat)):
            rows = (record["reply_markup"] or {}).get("inline_keyboard", [])
            buttons = [button for row in rows for button in row]
            exact = [b for b in buttons if b["text"] == label]
            partial = [b for b in buttons if label in b["text"]]
            if exact or partial:
                return record, (exact or partial)[0]["callback_data"]
        raise AssertionError(f"no button {label!r} in chat {chat}")

    async def answered(self, query_id: str) -> Record:
        async def done() -> bool:
            return any(a["callback_query_id"] == query_id for a in self.double.callback_answers)
        await eventually(done)
        return next(a for a in self.double.callback_answers if a["callback_query_id"] == query_id)

    async def since(self, user: int, mark: int, chat: int | None = None) -> list[str]:
        """What the bot posted in the chat after ``mark``, known to be complete: a /aide probe
        is answered only after everything sent before it (updates are handled in order)."""
        where = chat or user
        probe = "/aide" if chat is None else f"/aide@{BOT_NAME}"
        help_reply = await self.double.wait_for_message(
            where, lambda r: "Commandes disponibles" in (r["text"] or ""),
            after=(await self.double.send_text(user, probe, chat))["message_id"])
        return [str(r["text"]) for r in self.double.messages(where)
                if mark < r["message_id"] < help_reply["message_id"]]

    def delivered(self, chat: int, needle: str) -> list[Record]:
        """Alert copies (HTML; previews and requests quoting the text are plain or tracked)."""
        return [r for r in self.double.messages(chat)
                if r["parse_mode"] == "HTML" and needle in (r["text"] or "")
                and "Demande de diffusion" not in (r["text"] or "")]

    # -- shortcuts ----------------------------------------------------------------------

    async def enroll(self, user: int, communities: str = "commercant",
                     communes: str = "Vesoul") -> None:
        """Typed enrollment, fired at once: the bot handles updates strictly in order."""
        for text in ("/start", "oui", communities, "valider", communes, "terminer"):
            await self.double.send_text(user, text)
        assert "C'est fait" in await self.say(user, "oui", expect="C'est fait")

    async def request(self, text: str = ALERT) -> Record:
        """The operator files an alert; returns the request posted to the officers."""
        mark = self.mark(OFFICERS)
        await self.say(OPERATOR, text, expect="aperçu")
        return await self.next_record(OFFICERS, "Demande de diffusion", after=mark)

    async def approve(self, request: Record, officer: int = OFFICER, expect: str = "") -> str:
        data = self.button(OFFICERS, "Valider")[1]
        return await self.press_data(officer, OFFICERS, request["message_id"], data, expect)

    async def report(self, number: int = 1, timeout: float = 5.0) -> str:
        record = await self.next_record(OFFICERS, f"Rapport alerte n°{number}", timeout=timeout)
        return str(record["text"])

    async def profile(self, user: int) -> tuple[list[str], list[str], str]:
        subscriber = await self.stores.subscribers.get("telegram", str(user))
        assert subscriber is not None
        profile = await self.stores.subscribers.profile(subscriber)
        return profile.communes, profile.communities, subscriber.status


@pytest.fixture
async def tg(tmp_path: Path) -> AsyncIterator[Telegram]:
    async with TelegramDouble(TOKEN, BOT_NAME, limits=LOOSE) as double:
        populate(double)
        running = await Telegram(double, e2e_config(tmp_path / "bot.sqlite3", double)).start()
        try:
            yield running
        finally:
            await running.stop()


def keyboard_rows(record: Record) -> list[list[str]]:
    rows = (record["reply_markup"] or {}).get("inline_keyboard", [])
    return [[button["text"] for button in row] for row in rows]


# -- subscribers ----------------------------------------------------------------------------


async def test_enrollment_by_buttons(tg: Telegram) -> None:
    assert "Confidentialité" in await tg.say(ALICE, "/start", expect="Acceptez")
    assert "communautés" in await tg.press(ALICE, "J'accepte", expect="communautés")
    communities = tg.double.last_message(ALICE)
    assert communities is not None
    rows = keyboard_rows(communities)
    assert all(len(row) <= 2 for row in rows) and ["Propriétaires d'équidés"] in rows
    await tg.press(ALICE, "Commerçants", expect="Sélection")
    assert "Commerçants, Agriculteurs" in await tg.press(ALICE, "Agriculteurs", expect="Sélection")
    assert "Quelles communes" in await tg.press(ALICE, "Valider ✔", expect="communes")
    # One reply: Vesoul kept, and the one question 70100 raises, with its own buttons.
    question = await tg.say(ALICE, "Vesoul, 70100", expect="Laquelle")
    assert question.startswith("✔ Vesoul — 70000\nLe code postal 70100 couvre")
    assert "Gray — 70100" in await tg.press(ALICE, "Gray — 70100", expect="Communes retenues")
    assert "Récapitulatif" in await tg.press(ALICE, "Terminer ✔", expect="Récapitulatif")
    assert "C'est fait" in await tg.press(ALICE, "Confirmer", expect="C'est fait")
    assert await tg.profile(ALICE) == (["70279", "70550"], ["agriculteur", "commercant"],
                                       "active")
    answers = [a for a in tg.double.callback_answers if a["user_id"] == ALICE]
    assert len(answers) == 7 and all(a["text"] is None for a in answers)


async def test_enrollment_by_typed_text_and_shared_location(tg: Telegram) -> None:
    await tg.say(ALICE, "/start", expect="Acceptez")
    await tg.say(ALICE, "oui", expect="communautés")
    assert "Vigilance citoyenne" in await tg.say(ALICE, "citoyen, equide", expect="Sélection")
    await tg.say(ALICE, "valider", expect="Quelles communes")
    mark = tg.mark(ALICE)
    await tg.double.send_location(ALICE, 47.6236, 6.1550)  # the centre of Vesoul
    assert "Vesoul — 70000" in await tg.next_text(ALICE, "Communes retenues", after=mark)
    await tg.say(ALICE, "terminer", expect="Récapitulatif")
    await tg.say(ALICE, "oui", expect="C'est fait")
    assert await tg.profile(ALICE) == (["70550"], ["citoyen", "equide"], "active")


async def test_direct_commands(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    assert "Vesoul — 70000" in await tg.say(ALICE, "/communes", expect="Vos communes")
    assert "Gray" in await tg.say(ALICE, "/communes +Gray", expect="Vos communes")
    reply = await tg.say(ALICE, "/communes Vesoul", expect="Vos communes")
    assert "Gray" not in reply
    assert "Commerçants" in await tg.say(ALICE, "/profil", expect="Commerçants")
    help_text = await tg.say(ALICE, "/aide", expect="Commandes disponibles")
    assert "/communes" in help_text and "/alerte" not in help_text
    assert "Commande inconnue" in await tg.say(ALICE, "/volez", expect="Commande inconnue")
    assert (await tg.profile(ALICE))[0] == ["70550"]


async def test_unreadable_content_gets_a_reply_in_private_only(tg: Telegram) -> None:
    for send in (tg.double.send_sticker, tg.double.send_photo, tg.double.send_voice):
        mark = tg.mark(ALICE)
        await send(ALICE)
        assert "que du texte" in await tg.next_text(ALICE, after=mark)
    mark = tg.mark(TOWN)
    await tg.double.send_sticker(ALICE, TOWN)
    await tg.double.send_photo(ALICE, TOWN, caption="/groupe Vesoul")
    await tg.double.send_location(ALICE, 47.62, 6.15, TOWN)
    assert await tg.since(ALICE, mark, TOWN) == []


async def test_edited_message_is_not_run_again(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    sent = await tg.double.send_text(ALICE, "/communes +Gray")
    await tg.next_text(ALICE, "Vos communes", after=sent["message_id"])
    mark = tg.mark(ALICE)
    await tg.double.edit_text(ALICE, sent["message_id"], "/communes Lure")
    assert await tg.since(ALICE, mark) == []
    assert (await tg.profile(ALICE))[0] == ["70279", "70550"]
    assert tg.double.stats.dropped_updates >= 1  # not even asked for (allowed_updates)


async def test_blocking_and_unblocking_the_bot(tg: Telegram) -> None:
    await tg.enroll(ALICE)

    async def status_is(expected: str) -> bool:
        return (await tg.profile(ALICE))[2] == expected

    tg.double.block(ALICE)
    await eventually(lambda: status_is("blocked"))
    tg.double.unblock(ALICE)
    await eventually(lambda: status_is("active"))


async def test_commands_addressed_to_other_bots_and_chatter_are_ignored(tg: Telegram) -> None:
    mark = tg.mark(ALICE)
    await tg.double.send_text(ALICE, "/start@OtherBot")
    assert await tg.since(ALICE, mark) == []
    mark = tg.mark(TOWN)
    await tg.double.send_text(ADMIN, "/groupe@OtherBot Vesoul", TOWN)
    await tg.double.send_text(ADMIN, "bonjour à tous, qui a vu le bot ?", TOWN)
    assert await tg.since(ADMIN, mark, TOWN) == []
    assert await tg.stores.groups.get("telegram", str(TOWN)) is None
    mark = tg.mark(OFFICERS)
    await tg.double.send_text(OFFICER, "/valider@OtherBot 1", OFFICERS)
    await tg.double.send_text(OFFICER, "je prends la permanence", OFFICERS)
    assert await tg.since(OFFICER, mark, OFFICERS) == []


async def test_command_menus_per_scope(tg: Telegram) -> None:
    def names(scope: str, chat: int | None = None) -> set[str]:
        return {command["command"] for command in tg.double.commands_for(scope, chat)}

    everyone = names("all_private_chats")
    assert {"start", "communes", "aide"} <= everyone and "alerte" not in everyone
    officers = names("chat", OFFICERS)
    assert "valider" in officers and "start" not in officers
    assert {"alerte", "valider", "start"} <= names("chat", OPERATOR)
    assert "groupe" not in names("chat", ADMIN)  # a group command, not for private menus
    assert names("default") == set()
    # matrix:@op:test was skipped; telegram:555 was refused (chat not found) and logged.
    assert names("chat", UNKNOWN_PERSON) == set()
    assert [n for error, n in tg.double.stats.bad_requests.items() if "chat not found" in error] \
        == [1]


# -- alerts and approval ------------------------------------------------------------------------


async def test_one_line_alert_approved_by_button_edits_the_request(tg: Telegram) -> None:
    await tg.enroll(ALICE, "commercant")
    await tg.enroll(BOB, "agriculteur")
    request = await tg.request()
    assert keyboard_rows(request) == [["✅ Valider", "❌ Refuser"]]
    assert request["parse_mode"] == "HTML"
    # A member's press: answered (the button stops spinning), never before the channel.
    await tg.double.wait_for_message(OFFICERS, lambda r: r["kind"] == "photo")  # the map
    mark = tg.mark(OFFICERS)
    await tg.answered(await tg.double.press(MEMBER, OFFICERS, request["message_id"],
                                            tg.button(OFFICERS, "Valider")[1]))
    assert await tg.since(MEMBER, mark, OFFICERS) == []
    assert "un autre officier" in await tg.approve(request, OPERATOR, expect="un autre officier")
    # A double tap: both presses leave before the keyboard disappears; one decision only.
    mark, data = tg.mark(OFFICERS), tg.button(OFFICERS, "Valider")[1]
    taps = [await tg.double.press(OFFICER, OFFICERS, request["message_id"], data)
            for _ in range(2)]
    assert "diffusion à 1" in await tg.next_text(OFFICERS, "validée", after=mark)
    assert "n'est plus en attente" in await tg.next_text(OFFICERS, "plus en attente", mark)
    for tap in taps:
        await tg.answered(tap)
    decided = await tg.next_record(OFFICERS, "Validée par Capitaine Martin",
                                   after=request["message_id"] - 1)
    assert str(request["text"]).startswith("Demande de diffusion n°1 — par Opérateur, le ")
    assert "telegram:" not in str(decided["text"]) + str(request["text"])
    assert decided["message_id"] == request["message_id"]  # edited in place
    assert decided["reply_markup"] is None and len(decided["edits"]) == 1
    assert "est validée" in await tg.next_text(OPERATOR, "est validée")
    assert "1 envoyé, 0 échec, 0 bloqué sur 1" in await tg.report()
    assert len(tg.delivered(ALICE, "Vitrine forcée rue Carnot")) == 1
    assert tg.delivered(BOB, "Vitrine") == []
    assert len(tg.double.callback_answers) == 4


async def test_guided_alert(tg: Telegram) -> None:
    assert "catégorie" in await tg.say(OPERATOR, "/alerte", expect="catégorie")
    assert "périmètre" in await tg.press(OPERATOR, "Escroquerie", expect="périmètre")
    assert "« Grai » : commune" in await tg.say(OPERATOR, "Grai+2km", expect="Vouliez")
    assert "communautés" in await tg.press(OPERATOR, "Gray — 70100", expect="communautés")
    await tg.press(OPERATOR, "Artisans", expect="")
    assert "Depuis quand" in await tg.press(OPERATOR, "Valider ✔", expect="Depuis quand")
    assert "Texte" in await tg.press(OPERATOR, "Maintenant", expect="Texte")
    await tg.say(OPERATOR, "Faux billets de 50 € chez les artisans", expect="Vérifiez")
    preview = await tg.press(OPERATOR, "Soumettre", expect="aperçu")
    assert "Alerte n°1 — aperçu" in preview and "Public : Artisans" in preview
    await tg.next_record(OFFICERS, "Demande de diffusion n°1")


async def test_forged_repeated_and_old_buttons_are_refused(tg: Telegram) -> None:
    first = await tg.request()
    reply = await tg.press_data(OFFICER, OFFICERS, first["message_id"], "ap:999:ok",
                                expect="Aucune alerte", forged=True)
    assert "n°999" in reply
    await tg.say(OFFICER, "/refuser 1 doublon", OFFICERS, expect="refusée")
    await tg.request("/alerte vol Gray : Vol de gasoil")
    # The first request lost its buttons; a client that kept them (or a double tap) still
    # sends the old data: the core sees an alert that is no longer pending.
    reply = await tg.press_data(OFFICER2, OFFICERS, first["message_id"], "ap:1:ok",
                                expect="n'est plus en attente", forged=True)
    assert "refusée" in reply
    await tg.say(ALICE, "/start", expect="Acceptez")
    await tg.press(ALICE, "J'accepte", expect="communautés")
    welcome = tg.double.messages(ALICE)[0]
    stale = tg.button(ALICE, "J'accepte")[1]  # the welcome's button, one step behind now
    assert "n'est plus valable" in await tg.press_data(ALICE, ALICE, welcome["message_id"],
                                                       stale, expect="plus valable")
    assert "n'est plus valable" in await tg.press_data(ALICE, ALICE, welcome["message_id"],
                                                       "c:forged:yes", expect="plus valable",
                                                       forged=True)
    assert all(a["text"] is None for a in tg.double.callback_answers)


async def test_group_registration_and_delivery(tg: Telegram) -> None:
    command = f"/groupe@{BOT_NAME} Vesoul pour commercant"
    assert "réservée" in await tg.say(MEMBER, command, TOWN, expect="réservée")
    reply = await tg.say(ADMIN, command, TOWN, expect="Groupe inscrit")
    assert "Commerçants" in reply
    group = await tg.stores.groups.get("telegram", str(TOWN))
    assert group is not None and group.title == "Commerçants de Vesoul"
    await tg.approve(await tg.request(), expect="validée")
    assert "1 envoyé," in await tg.report()
    assert len(tg.delivered(TOWN, "Vitrine forcée")) == 1


async def test_missing_person_is_protected_and_prevention_is_quiet(tg: Telegram) -> None:
    await tg.enroll(ALICE, "citoyen")
    request = await tg.request("/alerte disparition Vesoul : Homme de 82 ans, manteau bleu")
    # Two officers; the first types the prosecutor's reference, the second presses the button.
    assert "(1/2)" in await tg.say(OFFICER, "/valider 1 parquet PR-2026-0042", OFFICERS,
                                   expect="(1/2)")
    await tg.approve(request, OFFICER2, expect="validée")
    await tg.report(1)
    [missing] = tg.delivered(ALICE, "Homme de 82 ans")
    assert missing["protect_content"] is True and missing["disable_notification"] is False
    await tg.approve(await tg.request("/alerte prevention Vesoul : Fermez vos portes"),
                     expect="validée")
    await tg.report(2)
    [prevention] = tg.delivered(ALICE, "Fermez vos portes")
    assert prevention["disable_notification"] is True and prevention["protect_content"] is False


async def test_user_text_is_escaped_in_html(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    body = "Prix <b>cassés</b> & promos <script>x</script> chez « Dupont & fils »"
    request = await tg.request(f"/alerte escroquerie Vesoul : {body}")
    assert body in request["text"]  # the double parsed it: a bad escape would be a 400
    await tg.approve(request, expect="validée")
    await tg.report()
    [delivered] = tg.delivered(ALICE, body)
    bold = [e for e in delivered["entities"] if e["type"] == "bold"]
    assert len(bold) == 1 and bold[0]["offset"] == 0  # the headline only, not « cassés »
    assert not [error for error in tg.double.stats.bad_requests if "parse entities" in error]


async def test_long_texts_are_split_and_edited_part_by_part(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    paragraphs = [f"Paragraphe {n} : " + "témoins recherchés, " * 18 for n in range(11)]
    body = "\n\n".join(paragraphs)[:3990]
    first = await tg.request(f"/alerte vol Vesoul : {body}")
    second = await tg.next_record(OFFICERS, after=first["message_id"])
    preview = [r for r in tg.double.messages(OPERATOR) if "aperçu" in (r["text"] or "")]
    assert len(preview) == 1 and len(tg.double.messages(OPERATOR)) == 2  # also split
    assert first["parse_mode"] is None and len(first["text"]) + len(second["text"]) > 4096
    assert max(len(first["text"]), len(second["text"])) <= 4096
    assert first["text"].endswith("témoins recherchés,")  # cut between paragraphs
    assert keyboard_rows(first) == [["✅ Valider", "❌ Refuser"]] and second["reply_markup"] is None
    await tg.approve(first, expect="validée")
    edited = await tg.next_record(OFFICERS, "Validée par", after=second["message_id"] - 1)
    assert edited["message_id"] == second["message_id"]  # the status line is in the last part
    assert first["reply_markup"] is None and len(first["edits"]) == 1
    await tg.report()
    [delivered] = tg.delivered(ALICE, "Paragraphe 10")  # 4 000 characters fit in one message
    assert "Gendarmerie · alerte n°1" in delivered["text"]
    too_long = await tg.say(OPERATOR, f"/alerte vol Vesoul : {'x' * 4050}", expect="trop long")
    assert "4050" in too_long


# -- broadcast under pressure ---------------------------------------------------------------------


async def test_broadcast_meets_flood_limits_blocked_users_and_a_migrated_group(
        tmp_path: Path) -> None:
    # Telegram's limits, but a private bucket of 1, stricter than the bot's pacing (3 at
    # once): the operator, also a subscriber, gets the "approved" notice and the alert back
    # to back, a genuine per-chat 429.
    async with TelegramDouble(TOKEN, BOT_NAME, limits=RateLimits(private_burst=1)) as double:
        populate(double)
        subscribers = list(range(5000, 5040))
        for user_id in subscribers[:-1]:
            double.user(user_id, f"Abonné {user_id}")
        never_started = subscribers[-1]
        double.user(never_started, "Jamais venu", started=False)
        tg = Telegram(double, e2e_config(tmp_path / "bot.sqlite3", double))
        # The operator first: its row is then in the dispatcher's first batch.
        await seed(await tg.build(), [OPERATOR, *subscribers])
        gone = await simulate_changes_while_the_bot_was_down(double, subscribers)
        gone.append(never_started)
        await tg.start()
        try:
            await broadcast_under_pressure(tg, subscribers, gone)
        finally:
            await tg.stop()


async def seed(services: Services, people: list[int]) -> None:
    """Subscribers and groups written directly: this test is about the broadcast."""
    now, consent = services.clock.now(), services.config.consent_version
    for user_id in people:
        await services.stores.subscribers.enroll("telegram", str(user_id), str(user_id), "fr",
                                                 consent, now, ["70550"], ["commercant"])
    for chat in (TOWN, -1001777):
        await services.stores.groups.register("telegram", str(chat), "Groupe", "Vesoul",
                                              ["70550"], ["commercant"], f"telegram:{ADMIN}", now)


async def simulate_changes_while_the_bot_was_down(double: TelegramDouble,
                                                  subscribers: list[int]) -> list[int]:
    """Blocks, deleted accounts and a group upgrade the bot never heard of."""
    double.group(-1001777, "Artisans", kind="supergroup", members=[ADMIN])
    for user_id in subscribers[1:3]:
        double.deactivate(user_id)
    for user_id in subscribers[3:5]:
        double.world.chat(user_id).blocked = True  # a block whose update was lost
    double.migrate(TOWN, -1000400, by_user_id=ADMIN)
    double.world.updates.clear()  # Telegram forgets updates after 24 h
    return subscribers[1:5]


async def broadcast_under_pressure(tg: Telegram, subscribers: list[int], gone: list[int]) -> None:
    double = tg.double
    request = await tg.request("/alerte cambriolage Vesoul pour commercant : Vitrine forcée")
    double.inject_rate_limits(subscribers[10], retry_after=1, count=2)
    double.inject_rate_limits(subscribers[11], retry_after=1)
    double.inject_rate_limits(-1001777, retry_after=1)
    started = time.monotonic()
    await tg.approve(request, expect="validée")

    async def paused() -> bool:
        return double.stats.rate_limited["injected"] > 0

    # The first 429 paused the dispatcher: only broadcast sends remain, so two whole-bot 429s
    # injected now are met by them (not by a reply or by the report).
    await eventually(paused)
    double.inject_rate_limits(None, retry_after=1, count=2)
    report = await tg.report(timeout=30)
    elapsed = time.monotonic() - started
    reachable = [u for u in subscribers if u not in gone] + [OPERATOR, -1000400, -1001777]
    wrong = {chat: copies for chat in reachable + gone
             if (copies := len(tg.delivered(chat, "Vitrine forcée"))) != (chat not in gone)}
    assert wrong == {}  # every reachable chat served exactly once, the others never
    total = len(subscribers) + 1 + 2
    assert f"{total - len(gone)} envoyés, 0 échec, {len(gone)} bloqués sur {total}" \
        in report
    for user_id in gone:
        assert (await tg.profile(user_id))[2] == "blocked"
    moved = await tg.stores.groups.get("telegram", "-1000400")
    assert moved is not None and moved.status == "active"
    stats, counters = double.stats, tg.transport.counters
    migrations = sum(n for text, n in stats.bad_requests.items() if "upgraded" in text)
    print(f"\nbroadcast to {total} chats in {elapsed:.1f} s: "
          f"429: {stats.count_429} {dict(stats.rate_limited)} → transport said chat-only "
          f"{counters['rate_limited_chat']}, global {counters['rate_limited_global']}; "
          f"403: {stats.count_403} {dict(stats.forbidden)}; migrations: {migrations}")
    assert stats.rate_limited["injected"] == 6 and stats.rate_limited["private"] >= 1
    assert counters["rate_limited_chat"] >= 1 and counters["rate_limited_global"] >= 6
    assert stats.count_403 == len(gone) and migrations == 1


async def test_receipts_pressed_during_a_broadcast_share_its_budget(tmp_path: Path) -> None:
    # Telegram's limits with a global bucket of 5 instead of 30: the broadcast alone fits (the
    # bot sends 3 at once at most, then 30/s), but ~6 acknowledgements a second on top of it
    # would be refused at once if they did not share the broadcast's budget.
    subscribers = list(range(5000, 5060))
    receipts = subscribers[::5]  # 20 % press « Reçu » as soon as their copy arrives
    async with TelegramDouble(TOKEN, BOT_NAME, limits=RateLimits(global_burst=5)) as double:
        populate(double)
        for user_id in subscribers:
            double.user(user_id, f"Abonné {user_id}")
        double.group(-1001777, "Artisans", kind="supergroup", members=[ADMIN])
        tg = Telegram(double, e2e_config(tmp_path / "bot.sqlite3", double))
        await seed(await tg.build(), subscribers)
        await tg.start()
        try:
            request = await tg.request("/alerte cambriolage Vesoul pour commercant : Vitrine")
            pressing = asyncio.create_task(press_receipts_as_copies_arrive(tg, receipts))
            await tg.approve(request, expect="validée")
            pressed = await asyncio.wait_for(pressing, timeout=30)
            for user_id, copy in pressed.items():
                await tg.next_record(user_id, "réception de l'alerte n°1 notée", after=copy,
                                     timeout=10)
            report = await tg.report(timeout=30)
            assert tg.services is not None
            acknowledged = await tg.services.db.fetchval(
                "SELECT count(*) FROM deliveries WHERE acknowledged_at IS NOT NULL")
        finally:
            await tg.stop()
    total = len(subscribers) + 2  # the two registered groups
    assert f"{total} envoyés, 0 échec, 0 bloqué sur {total}" in report
    assert acknowledged == len(receipts)
    assert double.stats.count_429 == 0, dict(double.stats.rate_limited)


async def press_receipts_as_copies_arrive(tg: Telegram, people: list[int]) -> dict[int, int]:
    """Each presses « Reçu » on their copy as soon as it arrives; their copy's id each."""
    pressed: dict[int, int] = {}
    while len(pressed) < len(people):
        for user_id in people:
            copies = tg.delivered(user_id, "Vitrine")
            if user_id not in pressed and copies:
                record, data = tg.button(user_id, "Reçu")
                await tg.double.press(user_id, user_id, record["message_id"], data)
                pressed[user_id] = record["message_id"]
        await asyncio.sleep(0.005)
    return pressed


async def test_files_reach_telegram_as_photo_and_documents(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    await tg.request()
    photo = await tg.double.wait_for_message(OFFICERS, lambda r: r["kind"] == "photo")
    assert "Carte de l'alerte n°1" in (photo["caption"] or "")
    mark = tg.mark(ALICE)
    await tg.double.send_text(ALICE, "/mesdonnees")
    export = await tg.double.wait_for_message(ALICE, lambda r: r["kind"] == "document",
                                              after=mark)
    assert export["file_name"] == "mes-donnees.json"
    assert b'"platform_user_id": "%d"' % ALICE in export["data"]
    await tg.double.send_text(OPERATOR, "/cap 1")
    cap = await tg.double.wait_for_message(OPERATOR, lambda r: r["kind"] == "document")
    assert cap["file_name"] == "alerte-1.cap.xml" and b"urn:oasis" in cap["data"]
