"""An alert's photo on Telegram, end to end against the Bot API double (issue 15, item 2).

The operator sends a photo whose caption is the ``/alerte …`` line (or sends it during the
guided alert); the bot fetches it (getFile), the officers see it under the request, the
copies carry it (caption when the text fits, photo then text otherwise, uploaded once and
re-sent by file_id), and a missing person's photo is deleted from every chat at the end.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.config import PlatformRateLimits, RateLimitsConfig
from bot.domain import Attachment, Outgoing
from bot.photos import check_photo
from bot.transports.base import TransientError
from tests.telegram_double import RateLimits, Record, TelegramDouble
from tests.test_telegram_e2e import (
    ADMIN,
    ALICE,
    BOB,
    BOT_NAME,
    LOOSE,
    MEMBER,
    OFFICER,
    OFFICER2,
    OFFICERS,
    OPERATOR,
    TOKEN,
    Telegram,
    e2e_config,
    eventually,
    keyboard_rows,
    populate,
    seed,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

RECEIPT_BUTTONS = [["✅ Reçu"], ["ℹ️ J'ai une information"]]
MISSING = "/alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge, vue vers la gare"


def jpeg(size: tuple[int, int] = (1600, 1200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 90, 160)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
async def tg(tmp_path: Path) -> AsyncIterator[Telegram]:
    async with TelegramDouble(TOKEN, BOT_NAME, limits=LOOSE) as double:
        populate(double)
        running = await Telegram(double, e2e_config(tmp_path / "bot.sqlite3", double)).start()
        try:
            yield running
        finally:
            await running.stop()


def photos(tg: Telegram, chat: int) -> list[Record]:
    return [r for r in tg.double.messages(chat) if r["kind"] == "photo"]


def officers_photo(tg: Telegram, number: int) -> Record:
    return next(r for r in photos(tg, OFFICERS)
                if f"Photo jointe à la demande n°{number}" in (r["caption"] or ""))


async def file_operator(tg: Telegram, caption: str, data: bytes) -> str:
    """The operator sends a photo whose caption is the command; returns the preview."""
    sent = await tg.double.send_photo(OPERATOR, caption=caption, data=data)
    return await tg.next_text(OPERATOR, "aperçu", after=sent["message_id"])


async def test_missing_person_photo_from_caption_to_removal(tg: Telegram) -> None:
    for person in (ALICE, BOB):
        await tg.enroll(person, "citoyen")
    picture = jpeg()
    preview = await file_operator(tg, MISSING, picture)
    assert "Photo jointe : JPEG" in preview and "(1600 × 1200)" in preview
    assert tg.double.stats.requests["getfile"] == 1  # fetched once, for the operator
    request = await tg.next_record(OFFICERS, "Demande de diffusion n°1")
    assert "Photo jointe : JPEG" in request["text"]
    await eventually(lambda: _true(any("Photo jointe à la demande n°1" in (r["caption"] or "")
                                       for r in photos(tg, OFFICERS))))
    posted = officers_photo(tg, 1)
    assert posted["api"]["photo"][-1]["width"] == 1600  # the photo as sent, its sizes first
    assert [s["width"] for s in posted["api"]["photo"]] == [90, 320, 800, 1280, 1600]
    await tg.say(OFFICER, "/valider 1 parquet PR-2026-0042", OFFICERS, expect="(1/2)")
    await tg.approve(request, OFFICER2, expect="validée")
    assert "2 envoyés" in await tg.report(1)
    texts = {}
    for person in (ALICE, BOB):
        [photo] = photos(tg, person)
        [text] = texts[person] = tg.delivered(person, "Jeanne, 84 ans")
        # Protected: never a caption (the photo goes alone at the end), no forwarding.
        assert not photo["caption"] and photo["protect_content"] is True
        assert photo["message_id"] < text["message_id"] and text["protect_content"] is True
        assert keyboard_rows(text) == RECEIPT_BUTTONS
        assert photo["file_id"] == posted["file_id"]
    # Uploaded once (the officers' post), then named by its file_id for each copy; the
    # other upload is the request's map.
    assert tg.double.stats.photo_uploads == 2 and tg.double.stats.photos_by_file_id == 2
    ended = await tg.say(OPERATOR, "/fin 1", expect="levée")
    assert "n°1" in ended

    async def removed() -> bool:
        return (all(photos(tg, p)[0]["deleted"] and texts[p][0]["edits"] for p in texts)
                and posted["deleted"])

    await eventually(removed)
    for [text] in texts.values():  # the text stays, edited: the person is not in it
        assert not text["deleted"] and "Jeanne" not in text["text"]
        assert "informations sur la personne" in text["text"]
    assert await tg.stores.photos.get(1) is None


async def _true(value: bool) -> bool:
    return value


async def test_short_copy_rides_in_the_caption_and_is_edited_there(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    await file_operator(tg, "/alerte cambriolage Vesoul pour commercant : Fourgon blanc",
                        jpeg((640, 480)))
    await tg.approve(await tg.next_record(OFFICERS, "Demande de diffusion n°1"),
                     expect="validée")
    await tg.report(1)
    [copy] = photos(tg, ALICE)
    assert "Fourgon blanc" in copy["caption"] and copy["parse_mode"] == "HTML"
    assert keyboard_rows(copy) == RECEIPT_BUTTONS
    assert tg.delivered(ALICE, "Fourgon blanc") == []  # no text message apart
    await tg.say(OPERATOR, "/fin 1", expect="levée")

    async def lifted() -> bool:
        return (copy["caption"] or "").startswith("LEVÉE")

    await eventually(lifted)
    assert not copy["deleted"] and copy["reply_markup"] is None


async def test_long_copy_goes_photo_then_text(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    body = "Témoins recherchés. " * 60  # 1,200 characters: more than a caption
    await file_operator(tg, f"/alerte cambriolage Vesoul pour commercant : {body}", jpeg())
    await tg.approve(await tg.next_record(OFFICERS, "Demande de diffusion n°1"),
                     expect="validée")
    await tg.report(1)
    [photo] = photos(tg, ALICE)
    [text] = tg.delivered(ALICE, "Témoins recherchés")
    assert not photo["caption"] and photo["message_id"] + 1 == text["message_id"]
    assert keyboard_rows(text) == RECEIPT_BUTTONS
    await tg.say(OPERATOR, "/retirer 1", expect="")

    async def recalled() -> bool:
        return photo["deleted"] and text["deleted"]

    await eventually(recalled)


async def test_photo_during_the_guided_alert_and_refusals(tg: Telegram) -> None:
    await tg.say(OPERATOR, "/alerte", expect="catégorie")
    mark = tg.mark(OPERATOR)
    await tg.double.send_photo(OPERATOR, data=jpeg((800, 600)))
    assert "sera jointe à l'alerte" in await tg.next_text(OPERATOR, "Photo reçue", after=mark)
    await tg.press(OPERATOR, "Escroquerie", expect="périmètre")
    await tg.say(OPERATOR, "Gray+2km", expect="communautés")
    await tg.press(OPERATOR, "Tout le monde", expect="Depuis quand")
    await tg.press(OPERATOR, "Maintenant", expect="Texte")
    confirm = await tg.say(OPERATOR, "Faux billets de 50 €", expect="Vérifiez")
    assert "📷 Photo jointe" in confirm
    assert "Photo jointe : JPEG" in await tg.press(OPERATOR, "Soumettre", expect="aperçu")
    # A file that is not a photo, sent as a document: refused with the rules, never fetched
    # beyond what it takes to see it.
    mark = tg.mark(OPERATOR)
    await tg.double.send_document(OPERATOR, b"GIF89a" + bytes(64), "photo.jpg", "image/jpeg")
    refused = await tg.next_text(OPERATOR, "JPEG", after=mark)
    assert "n'est pas une photo" in refused and "5 Mo au plus" in refused
    # An uncompressed image above 5 MB: refused without being downloaded.
    before = tg.double.stats.requests["getfile"]
    mark = tg.mark(OPERATOR)
    await tg.double.send_document(OPERATOR, jpeg() + bytes(6 * 1024 * 1024), "grand.jpg",
                                  "image/jpeg")
    assert "dépasse 5 Mo" in await tg.next_text(OPERATOR, "dépasse", after=mark)
    assert tg.double.stats.requests["getfile"] == before


async def test_a_members_photo_is_never_fetched(tg: Telegram) -> None:
    await tg.enroll(ALICE)
    mark = tg.mark(ALICE)
    await tg.double.send_photo(ALICE, caption="/aide", data=jpeg((64, 64)))
    assert "que du texte" in await tg.next_text(ALICE, after=mark)
    await tg.double.send_photo(MEMBER, OFFICERS, caption="regardez")
    assert tg.double.stats.requests["getfile"] == 0


async def test_two_thousand_recipients_one_upload(tmp_path: Path) -> None:
    """The upload is made once per platform, whatever the number of recipients: here
    2,000 (tests/test_photos.py says the same of 20,000 sends without the network)."""
    people = list(range(10_000, 12_000))
    async with TelegramDouble(TOKEN, BOT_NAME, limits=RateLimits(enabled=False)) as double:
        populate(double)
        for user_id in people:
            double.user(user_id, f"Abonné {user_id}")
        double.group(-1001777, "Artisans", kind="supergroup", members=[ADMIN])  # seeded too
        fast = PlatformRateLimits(1000.0, 10.0, 1000.0)
        config = dataclasses.replace(e2e_config(tmp_path / "bot.sqlite3", double),
                                     rate_limits=RateLimitsConfig(telegram=fast))
        tg = Telegram(double, config)
        await seed(await tg.build(), people)
        await tg.start()
        try:
            await file_operator(tg, "/alerte cambriolage Vesoul pour commercant : Fourgon",
                                jpeg())
            request = await tg.next_record(OFFICERS, "Demande de diffusion n°1")
            await tg.approve(request, expect="validée")
            report = await tg.report(1, timeout=60)
        finally:
            await tg.stop()
    copies = double.stats.photos_by_file_id
    print(f"\n{len(people)} + 2 groups: {double.stats.photo_uploads} uploads (the photo and "
          f"the request's map), {copies} photos sent by file_id")
    assert "2\u202f002 envoyés, 0 échec" in report
    assert double.stats.photo_uploads == 2 and copies == len(people) + 2


async def test_a_text_that_fails_after_its_photo_takes_the_photo_back(tg: Telegram) -> None:
    """Sent again whole later, the copy must not leave a first photo behind."""
    photo = check_photo(Attachment("p.jpg", "image/jpeg", jpeg((300, 200))))
    copy = Outgoing("x" * 1500, attachment=photo.attachment(7))  # longer than a caption
    tg.double.fail_next(1, methods={"sendmessage"})
    with pytest.raises(TransientError):
        await tg.transport.send(str(ALICE), copy)
    [first] = photos(tg, ALICE)
    assert first["deleted"]
    sent = await tg.transport.send(str(ALICE), copy)
    second = photos(tg, ALICE)[-1]
    assert sent == f"file:{second['message_id']} {second['message_id'] + 1}"
    assert not second["deleted"] and second["file_id"] == first["file_id"]  # uploaded once
