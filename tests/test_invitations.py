"""Issue 17: référents, invitation links, QR codes and posters, vetted communities."""

from __future__ import annotations

import dataclasses
import io
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import segno
import zxingcpp
from PIL import Image

from bot.config import ReferentConfig
from bot.domain import Attachment
from bot.i18n import Catalog, Translator
from bot.invitation_poster import QR_BORDER, PosterText, poster_png, qr_png
from bot.invitations import (
    GuessGuard,
    InvitationSyntax,
    looks_like_token,
    new_token,
    parse_invitation,
    token_hash,
)
from tests.harness import START, TestBot, test_config

REFERENT = "telegram:700"  # the mayors' association: élus
ARTISANS = "telegram:701"  # the chamber of trades: artisans
ADMIN = "telegram:900"
ALICE, BOB, CAROL = "telegram:1", "telegram:2", "telegram:3"
TOKEN_IN = re.compile(r"start=([A-Za-z0-9_-]{32})")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[TestBot]:
    config = test_config(tmp_path / "bot.sqlite3")
    referents = {REFERENT: ReferentConfig("Association des maires", ["elu"]),
                 ARTISANS: ReferentConfig("Chambre de Métiers", ["artisan"])}
    config = dataclasses.replace(config, roles=dataclasses.replace(config.roles,
                                                                    referents=referents))
    running = await TestBot(config).start()
    yield running
    await running.stop()


def files(bot: TestBot, who: str) -> list[Attachment]:
    chat = who.split(":", 1)[1]
    found = [p.message.attachment for p in bot.transports["telegram"].posted[chat]]
    return [a for a in found if a is not None]


async def invite(bot: TestBot, who: str, args: str) -> tuple[int, str, str]:
    """The invitation's number, its token and the whole answer."""
    reply = await bot.say(who, f"/invitation {args}")
    number = re.search(r"Invitation n°(\d+)", reply)
    token = TOKEN_IN.search(reply)
    assert number is not None and token is not None, reply
    return int(number.group(1)), token.group(1), reply


async def enroll_with(bot: TestBot, who: str, token: str) -> str:
    welcome = await bot.say(who, f"/start {token}")
    assert "Acceptez-vous" in welcome, welcome
    await bot.press(who, "accepte")
    if "Communes retenues" not in await bot.say(who, "valider"):  # none pre-selected
        await bot.say(who, "Vesoul")
    await bot.say(who, "terminer")
    return await bot.say(who, "oui")


async def communities_of(bot: TestBot, who: str) -> list[str]:
    platform, user = who.split(":", 1)
    subscriber = await bot.core.services.stores.subscribers.get(platform, user)
    assert subscriber is not None
    return (await bot.core.services.stores.subscribers.profile(subscriber)).communities


# -- tokens and the command's grammar ------------------------------------------------------


def test_tokens_are_unguessable_and_fit_a_telegram_start_payload() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert looks_like_token(token) and len(token) <= 64  # 32 chars: 24 bytes, 192 bits
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert token_hash("x" * 32) != token_hash("y" * 32) and len(token_hash("x")) == 64


def test_invitation_grammar() -> None:
    today = date(2026, 11, 24)
    wanted = parse_invitation("elu Vesoul, Gray jusqu'au 15/01 max 30", today)
    assert (wanted.community, wanted.places, wanted.until, wanted.max_uses) == (
        "elu", "Vesoul, Gray", date(2027, 1, 15), 30)  # the next 15/01
    assert parse_invitation("artisan : CMA 48", today).partner == "CMA 48"
    assert parse_invitation("artisan jusqu’au 31/12", today).until == date(2026, 12, 31)
    for bad, key in (("elu max 0", "invite.bad_max"), ("elu jusqu'au 31/02", "invite.bad_date"),
                     ("elu jusqu'au 01/01/2020", "invite.past_date"), ("", "invite.usage")):
        with pytest.raises(InvitationSyntax) as refused:
            parse_invitation(bad, today)
        assert refused.value.key == key


def test_guess_guard_blocks_after_five_and_forgets_after_an_hour() -> None:
    guard = GuessGuard()
    for _ in range(5):
        assert not guard.blocked("telegram:9", START)
        guard.refused("telegram:9", START)
    assert guard.blocked("telegram:9", START) and not guard.blocked("telegram:8", START)
    later = START.replace(hour=START.hour + 1)
    assert not guard.blocked("telegram:9", later)


# -- QR code and poster --------------------------------------------------------------------


def modules_of(png: bytes, size: int) -> list[list[bool]]:
    """The dark modules read back from a QR PNG (quiet zone off), by sampling centres."""
    image = Image.open(io.BytesIO(png)).convert("L")
    total = size + 2 * QR_BORDER
    scale = image.width / total
    return [[image.getpixel((int((x + QR_BORDER + 0.5) * scale),
                             int((y + QR_BORDER + 0.5) * scale))) < 128  # type: ignore[operator]
             for x in range(size)] for y in range(size)]


def test_qr_png_is_the_link_module_for_module_and_decodes_back() -> None:
    link = f"https://t.me/alerte_test_bot?start={new_token()}"
    png = qr_png(link)
    expected = [[bool(m) for m in row] for row in segno.make(link, error="m").matrix]
    assert modules_of(png, len(expected)) == expected
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [d.text for d in decoded] == [link]


def test_poster_is_a4_and_its_qr_code_opens_the_link() -> None:
    link = f"https://t.me/alerte_test_bot?start={new_token()}"
    t = Translator(Catalog.load(), "fr")
    png = poster_png(PosterText("Gendarmerie de la Haute-Saône", "Association des maires",
                                "Élus", link, "Sur Matrix : …", "Invitation n°1"), t)
    poster = Image.open(io.BytesIO(png))
    assert poster.size == (1240, 1754)  # A4 at 150 dpi
    assert abs(poster.size[1] / poster.size[0] - 297 / 210) < 0.002
    assert [d.text for d in zxingcpp.read_barcodes(poster)] == [link]


# -- creating, listing, revoking -----------------------------------------------------------


@pytest.mark.sqlite_only  # reads the stored hash with sqlite3 (the file's dump)
async def test_referent_creates_an_invitation_with_links_qr_and_poster(bot: TestBot) -> None:
    _number, token, reply = await invite(bot, REFERENT, "elu Vesoul jusqu'au 31/12 max 5")
    assert "Invitation n°1 — Élus — Association des maires" in reply
    assert f"Telegram : https://t.me/memory_bot?start={token}" in reply
    assert f"Matrix : ouvrez https://matrix.to/#/@bot:test puis envoyez « !start {token} »" in reply
    assert "Vesoul — 70000" in reply and "31/12/2026" in reply and "5 inscriptions au plus" in reply
    qr, poster = files(bot, REFERENT)[-2:]
    assert qr.mime_type == poster.mime_type == "image/png"
    link = f"https://t.me/memory_bot?start={token}"
    assert [d.text for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.data)))] == [link]
    assert [d.text for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(poster.data)))] == [link]
    # Only the token's hash is kept; once sent, no reply row holds the token either.
    with sqlite3.connect(bot.config.database) as db:
        assert db.execute("SELECT token_hash FROM invitations").fetchall() == [
            (token_hash(token),)]
        dump = "\n".join(db.iterdump())
    assert token not in dump


async def test_referents_work_only_for_their_communities(bot: TestBot) -> None:
    assert "pas référent de la communauté Artisans" in await bot.say(
        REFERENT, "/invitation artisan")
    assert "seul un administrateur" in await bot.say(REFERENT, "/invitation elu : Autre nom")
    assert "réservée" in await bot.say(ALICE, "/invitation elu")  # the public
    number, _, _ = await invite(bot, ARTISANS, "artisan")
    assert "Pas d'invitation n°1" in await bot.say(REFERENT, f"/invitation revoquer {number}")
    assert "Aucune invitation" in await bot.say(REFERENT, "/invitations")
    _, _, reply = await invite(bot, ADMIN, "elu : Préfecture")  # admins: any, any partner
    assert "Préfecture" in reply


async def test_enrollment_through_an_invitation_preselects_and_counts(bot: TestBot) -> None:
    _number, token, _ = await invite(bot, ARTISANS, "artisan Gray")
    welcome = await bot.say(ALICE, f"/start {token}")
    assert "Invitation — Chambre de Métiers" in welcome
    assert "Acceptez-vous" in welcome  # the notice and the consent, as always
    selection = await bot.press(ALICE, "accepte")
    assert "Artisans" in selection
    choices = bot.transports["telegram"].posted["1"][-1].current.choices
    assert [c.label for c in choices if c.label.startswith("✅")] == ["✅ Artisans"]
    assert "Gray — 70100" in await bot.say(ALICE, "valider")  # its communes, shown
    await bot.say(ALICE, "terminer")
    assert "C'est fait" in await bot.say(ALICE, "oui")
    assert await communities_of(bot, ALICE) == ["artisan"]
    listed = await bot.say(ARTISANS, "/invitations")
    assert "n°1 — Artisans — Chambre de Métiers — active — 1 inscrit, 1 toujours abonné" in listed
    assert "telegram:1" not in listed
    await bot.say(ALICE, "/pause")
    assert "1 inscrit, 0 toujours abonné" in await bot.say(ARTISANS, "/invitations")
    stats = await bot.say(ADMIN, "/stats")
    assert "Inscriptions par invitation : n°1 (Chambre de Métiers) 1" in stats
    assert "Inscriptions par partenaire : Chambre de Métiers 1" in stats


async def test_an_enrolled_person_joins_by_invitation_once(bot: TestBot) -> None:
    await bot.enroll(BOB, "commercant", "Vesoul")
    _, token, _ = await invite(bot, REFERENT, "elu Gray")
    assert "aussi les alertes pour Élus" in await bot.say(BOB, f"/start {token}")
    assert await communities_of(bot, BOB) == ["commercant", "elu"]
    assert "déjà utilisé" in await bot.say(BOB, f"/start {token}")
    assert "1 inscrit" in await bot.say(REFERENT, "/invitations")


async def test_revoked_expired_and_exhausted_invitations_are_refused(bot: TestBot) -> None:
    number, revoked, _ = await invite(bot, REFERENT, "elu")
    assert "révoquée" in await bot.say(REFERENT, f"/invitation revoquer {number}")
    assert "a été retirée" in await bot.say(ALICE, f"/start {revoked}")
    _, expiring, _ = await invite(bot, REFERENT, "elu jusqu'au 30/11")
    _, once, _ = await invite(bot, REFERENT, "elu max 1")
    assert "C'est fait" in await enroll_with(bot, BOB, once)
    assert "nombre maximal" in await bot.say(CAROL, f"/start {once}")
    bot.advance(days=7)  # past 30/11
    assert "a expiré" in await bot.say(CAROL, f"/start {expiring}")
    with pytest.raises(AssertionError):  # nothing started: no consent question
        bot.choice_data(CAROL, "accepte")
    listed = await bot.say(REFERENT, "/invitations")
    assert "révoquée" in listed and "expirée" in listed and "épuisée" in listed


async def test_forged_codes_are_refused_then_throttled(bot: TestBot) -> None:
    _, token, _ = await invite(bot, REFERENT, "elu")
    for attempt in range(5):
        forged = new_token()
        reply = await bot.say(ALICE, f"/start {forged}")
        assert "n'est pas reconnu" in reply, attempt
        await bot.say(ALICE, "/annuler")
    # Now even the right code is not looked at: a guesser learns nothing.
    assert "Trop de codes" in await bot.say(ALICE, f"/start {token}")
    assert await bot.core.services.stores.subscribers.get("telegram", "1") is None
    bot.advance(hours=1, minutes=1)
    assert "Invitation — Association des maires" in await bot.say(ALICE, f"/start {token}")


# -- vetted communities --------------------------------------------------------------------


async def test_a_vetted_community_needs_a_referent_and_nothing_arrives_before(
        bot: TestBot) -> None:
    await bot.say(CAROL, "/start")
    listing = await bot.press(CAROL, "accepte")
    assert "Élus — Maires, adjoints et secrétaires de mairie (réservée" in listing
    await bot.say(CAROL, "elu, commercant")
    await bot.say(CAROL, "valider")
    await bot.say(CAROL, "Vesoul")
    await bot.say(CAROL, "terminer")
    saved = await bot.say(CAROL, "oui")
    assert "C'est fait" in saved and "communauté réservée" in saved
    assert await communities_of(bot, CAROL) == ["commercant"]
    filed = await bot.say(CAROL, "Adjointe au maire de Vesoul")
    assert "Demande n°1 envoyée pour Élus" in filed
    # An alert for élus now does not reach her.
    await bot.say("telegram:100", "/alerte cambriolage Vesoul pour elu : Mairie visitée")
    await bot.press("telegram:200", "Valider", chat="officers")
    await bot.drain()
    assert not any("Mairie visitée" in text for text in bot.inbox(CAROL))
    pending = await bot.say(REFERENT, "/demandes")
    assert "Demande n°1 — Élus" in pending and "« Adjointe au maire de Vesoul »" in pending
    assert "telegram:3" not in pending and "3" not in pending.split("Élus")[1].split("«")[0]
    assert "Pas de demande n°1" in await bot.say(ARTISANS, "/accepter 1")  # not theirs
    assert "acceptée" in await bot.say(REFERENT, "/accepter 1")
    assert "Bonne nouvelle" in bot.inbox(CAROL)[-1]
    assert await communities_of(bot, CAROL) == ["commercant", "elu"]


async def test_a_declined_request_is_told_kindly_and_requests_expire(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.enroll(BOB, "commercant", "Vesoul")
    assert "réservée" in await bot.say(ALICE, "/profil commercant, elu")
    assert await communities_of(bot, ALICE) == ["commercant"]
    assert "qui vous êtes" in await bot.say(ALICE, "/rejoindre elu")
    assert "Demande n°1" in await bot.say(ALICE, "/rejoindre elu : conseiller municipal")
    await bot.drain()
    told_referent = bot.inbox(REFERENT)[-1]  # the référent hears of it without asking
    assert told_referent.startswith("Nouvelle demande n°1 pour Élus")
    assert "« conseiller municipal »" in told_referent and "/accepter 1" in told_referent
    assert "telegram:1" not in told_referent
    assert not any("Nouvelle demande" in text for text in bot.inbox(ARTISANS))
    assert "Demande n°2" in await bot.say(BOB, "/rejoindre elu : secrétaire de mairie")
    assert "déclinée" in await bot.say(REFERENT, "/decliner 1")
    told = bot.inbox(ALICE)[-1]
    assert "n'a pas été retenue" in told and "ne dit rien de vous" in told
    bot.advance(days=15)
    await bot.core.core.tick()
    await bot.core.core.replies.flush()
    assert "a expiré" in bot.inbox(BOB)[-1]
    assert "Aucune demande" in await bot.say(REFERENT, "/demandes")
    assert await communities_of(bot, BOB) == ["commercant"]


async def test_an_expired_request_stays_open_if_its_notice_cannot_be_written(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closed and told in one transaction: a failure writing the notice leaves the request
    open, to expire (and be told) at the next tick, never closed in silence."""
    await bot.enroll(BOB, "commercant", "Vesoul")
    assert "Demande n°1" in await bot.say(BOB, "/rejoindre elu : secrétaire de mairie")
    bot.advance(days=15)
    runner = bot.core.core.runner
    real_write = runner.write

    async def broken_write(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")
    monkeypatch.setattr(runner, "write", broken_write)
    with pytest.raises(RuntimeError):
        await bot.core.core.tick()
    assert [r.id for r in await bot.core.core.services.stores.invitations.pending(None)] == [1]
    monkeypatch.setattr(runner, "write", real_write)
    await bot.core.core.tick()
    await bot.core.core.replies.flush()
    assert "a expiré" in bot.inbox(BOB)[-1]
    assert await bot.core.core.services.stores.invitations.pending(None) == []


async def test_an_invitation_of_a_vetted_community_lets_in_at_once(bot: TestBot) -> None:
    _, token, _ = await invite(bot, REFERENT, "elu Vesoul")
    assert "C'est fait" in await enroll_with(bot, ALICE, token)
    assert await communities_of(bot, ALICE) == ["elu"]
    data = await bot.say(ALICE, "/mesdonnees")
    assert "mesdonnees" not in data
    export = files(bot, ALICE)[-1]
    assert b'"invitations_used"' in export.data and b"Association des maires" in export.data


async def test_referent_granted_and_revoked_with_role(bot: TestBot) -> None:
    usage = await bot.say(ADMIN, "/role telegram:702 referent artisan")
    assert "Usage" in usage  # a partner's name is needed: it goes on the posters
    granted = await bot.say(ADMIN, "/role telegram:702 referent artisan, elu : CCI 70")
    assert "référent de artisan, elu pour « CCI 70 »" in granted
    _, _, reply = await invite(bot, "telegram:702", "artisan")
    assert "CCI 70" in reply
    assert "n'est plus référent" in await bot.say(ADMIN, "/role telegram:702 -referent")
    assert "réservée" in await bot.say("telegram:702", "/invitation artisan")
    assert "configuration" in await bot.say(ADMIN, f"/role {REFERENT} -referent")
    await bot.restart()
    assert "réservée" in await bot.say("telegram:702", "/invitations")
