"""An alert's photo (issue 15, item 2): checked on its bytes, attached with, before, during or
just after the command, shown to the officers, delivered with the copy, and gone at the end.

On memory transports: the platforms' own shapes (Telegram's caption and file_id, Matrix's
media repository and redactions, the console's ``:photo``) are tested end to end in
tests/test_telegram_e2e.py, tests/test_matrix_e2e.py and tests/test_console_photos.py.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3

import pytest
from PIL import Image

from bot.domain import Attachment, FileProblem, Incoming, Outgoing
from bot.limits import PHOTO_BYTES
from bot.photos import PhotoRefused, PhotoType, check_photo, sniff
from bot.transports.base import file_parts, first_id, text_parts
from bot.transports.memory import MemoryTransport, Posted
from bot.transports.uploads import Uploads
from tests.harness import OFFICERS, TestBot

OPERATOR, OFFICER, OFFICER2 = "telegram:100", "telegram:200", "telegram:201"
ALICE = "telegram:1"
ALERT = "/alerte cambriolage Vesoul pour commercant : Fourgon blanc immatriculé AB-123-CD"
MISSING = "/alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge"


def image(kind: str = "JPEG", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, kind)
    return buffer.getvalue()


def photo(kind: str = "JPEG", name: str = "photo.jpg", mime: str = "image/jpeg",
          size: tuple[int, int] = (64, 48)) -> Attachment:
    return Attachment(name, mime, image(kind, size))


def posts(bot: TestBot, chat: str) -> list[Posted]:
    return bot.transports["telegram"].posted[chat]


def with_photo(bot: TestBot, chat: str) -> list[Posted]:
    return [post for post in posts(bot, chat) if post.message.attachment is not None]


async def stored_photos(bot: TestBot) -> list[int]:
    rows = await bot.core.services.db.fetchall("SELECT alert_id FROM alert_photos")
    return [row[0] for row in rows]


async def approve(bot: TestBot, number: int = 1, *officers: str) -> None:
    for officer in officers or (OFFICER,):
        await bot.say(officer, f"/valider {number}", chat=OFFICERS)
    await bot.drain()


# -- the checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"),
                                            ("WEBP", "image/webp")])
def test_jpeg_png_and_webp_are_recognised_by_their_bytes(kind: str, mime: str) -> None:
    checked = check_photo(Attachment("sans-extension", "application/octet-stream",
                                     image(kind, (120, 80))))
    assert checked.kind.mime_type == mime and (checked.width, checked.height) == (120, 80)
    assert len(checked.digest) == 64


def test_a_name_or_a_mime_type_proves_nothing() -> None:
    for data in (b"GIF89a" + bytes(40), b"%PDF-1.7\n" + bytes(40), image("GIF")):
        with pytest.raises(PhotoRefused) as refused:
            check_photo(Attachment("photo.jpg", "image/jpeg", data))
        assert refused.value.key == "photo.bad_type"
    # JPEG's signature on a PNG's body: Pillow reads a PNG, the bytes said JPEG.
    forged = b"\xff\xd8\xff" + image("PNG")[3:]
    with pytest.raises(PhotoRefused):
        check_photo(Attachment("x.jpg", "image/jpeg", forged))


def test_truncated_oversized_and_odd_shapes_are_refused() -> None:
    png = image("PNG", (300, 200))
    with pytest.raises(PhotoRefused) as refused:
        check_photo(Attachment("cut.png", "image/png", png[:40]))
    assert refused.value.key == "photo.unreadable"
    big = image("PNG") + bytes(PHOTO_BYTES)
    with pytest.raises(PhotoRefused) as refused:
        check_photo(Attachment("big.png", "image/png", big))
    assert refused.value.key == "photo.too_large" and refused.value.params == {"max": "5"}
    with pytest.raises(PhotoRefused) as refused:  # Telegram refuses a ratio above 20
        check_photo(photo(size=(2100, 100)))
    assert refused.value.key == "photo.bad_shape"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBP") is PhotoType.WEBP and sniff(b"") is None


# -- with the command --------------------------------------------------------------------------


async def test_photo_with_the_command_reaches_officers_then_recipients(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    preview = await bot.send_file(OPERATOR, photo(), text=ALERT)
    assert "Photo jointe : JPEG, 1 Ko (64 × 48)" in preview
    request, picture = [p for p in posts(bot, OFFICERS)
                        if "n°1" in p.message.text and "Carte" not in p.message.text]
    assert "Photo jointe : JPEG" in request.message.text
    assert picture.message.text == "📷 Photo jointe à la demande n°1"
    assert picture.message.attachment is not None  # read from the database after commit
    assert picture.message.attachment.data == image()
    await approve(bot)
    [copy] = with_photo(bot, "1")
    assert copy.message.attachment is not None
    assert copy.message.attachment.filename == "photo-alerte-1.jpg"
    assert copy.message.attachment.digest == picture.message.attachment.digest
    assert "Fourgon blanc" in copy.message.text and copy.message.choices  # text and buttons
    sent = await bot.core.services.db.fetchval(
        "SELECT message_id FROM deliveries WHERE alert_id = 1 AND action = 'send'")
    assert file_parts(sent) == [f"file:{copy.message_id}"]
    assert text_parts(sent) == [copy.message_id] and first_id(sent) == copy.message_id
    assert await stored_photos(bot) == [1]
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    assert await stored_photos(bot) == []  # the alert ended: its photo is gone
    assert copy.current.text.startswith("LEVÉE") and not copy.file_deleted  # not protected


async def test_missing_person_photo_is_deleted_everywhere_at_the_end(bot: TestBot) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    await bot.say("telegram:900", "/groupe Vesoul", chat="-9")
    await bot.send_file(OPERATOR, photo(), text=MISSING)
    await bot.say(OFFICER, "/valider 1 parquet PR-2026-7", chat=OFFICERS)
    await approve(bot, 1, OFFICER2)
    copies = with_photo(bot, "1") + with_photo(bot, "-9")
    assert len(copies) == 2 and not any(c.file_deleted for c in copies)
    officers_photo = [p for p in with_photo(bot, OFFICERS) if "Photo jointe" in p.message.text]
    await bot.say(OPERATOR, "/fin 1")
    await bot.drain()
    for copy in copies:
        assert copy.file_deleted and not copy.deleted  # the photo goes, the text is edited
        assert "Jeanne" not in copy.current.text and copy.current.attachment is None
        assert "informations sur la personne" in copy.current.text
    assert [p.deleted for p in officers_photo] == [True]
    assert await stored_photos(bot) == []


async def test_recall_deletes_photo_and_text(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.send_file(OPERATOR, photo(), text=ALERT)
    await approve(bot)
    [copy] = with_photo(bot, "1")
    await bot.say(OPERATOR, "/retirer 1")
    await bot.drain()
    assert copy.deleted and copy.file_deleted
    assert await stored_photos(bot) == []


async def test_a_bad_photo_never_holds_the_alert_back(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    gif = Attachment("photo.jpg", "image/jpeg", image("GIF"))
    reply = await bot.send_file(OPERATOR, gif, text=ALERT)
    assert "Alerte n°1 — aperçu" in reply and "Photo jointe" not in reply
    assert "La photo n'est pas jointe à l'alerte : Ce fichier n'est pas une photo JPEG" in reply
    assert "5 Mo au plus" in reply
    too_big = Incoming(**{**_fields(bot, OPERATOR, ALERT), "file_problem": FileProblem.TOO_LARGE})
    reply = "\n".join(m.text for m in await bot.send(too_big))
    assert "Alerte n°2 — aperçu" in reply and "La photo dépasse 5 Mo" in reply
    await approve(bot, 1)
    assert with_photo(bot, "1") == [] and "Fourgon blanc" in bot.inbox(ALICE)[-1]


def _fields(bot: TestBot, who: str, text: str) -> dict[str, object]:
    incoming = bot._incoming(who, None, text=text)
    return {name: getattr(incoming, name) for name in incoming.__dataclass_fields__}


async def test_a_command_that_cannot_be_read_keeps_its_photo(bot: TestBot) -> None:
    reply = await bot.send_file(OPERATOR, photo(), text="/alerte cambriolage Vesouk : Vitrine")
    assert "Vesouk" in reply and "gardée pour votre /alerte corrigée" in reply
    assert "Photo jointe : JPEG" in await bot.say(OPERATOR, ALERT)


# -- before, during, after ----------------------------------------------------------------------


async def test_photo_before_the_command_is_kept_ten_minutes(bot: TestBot) -> None:
    reply = await bot.send_file(OPERATOR, photo())
    assert "Photo reçue (1 Ko)" in reply and "dans les 10 minutes" in reply
    reply = await bot.send_file(OPERATOR, photo("PNG", "b.png", "image/png"))
    assert "remplace la précédente" in reply
    assert "Photo jointe : PNG" in await bot.say(OPERATOR, ALERT)
    # Used up: the next alert has none.
    assert "Photo jointe" not in await bot.say(OPERATOR, ALERT.replace("Vesoul", "Gray"))
    await bot.send_file(OPERATOR, photo())
    bot.advance(minutes=11)
    assert "Photo jointe" not in await bot.say(OPERATOR, ALERT)
    await bot.send_file(OPERATOR, photo(), chat=OFFICERS)  # another chat keeps nothing
    await bot.core.core.tick()
    count = await bot.core.services.db.fetchval("SELECT count(*) FROM photo_drafts")
    assert count == 0  # the clock deleted the stale one


async def test_photo_just_after_the_command_joins_the_pending_request(bot: TestBot) -> None:
    bot.platform_names[OPERATOR] = "Adjudant Durand"
    await bot.say(OPERATOR, ALERT)
    reply = await bot.send_file(OPERATOR, photo())
    assert "Photo jointe à la demande n°1 (1 Ko)" in reply
    request = next(p for p in posts(bot, OFFICERS)
                   if p.message.text.startswith("Demande de diffusion n°1"))
    assert "Photo jointe : JPEG" in request.current.text and "Photo jointe" not in \
        request.message.text
    assert "une seule photo par alerte" in (await bot.send_file(OPERATOR, photo())).lower()
    await bot.say(OPERATOR, "/alerte disparition Gray : Paul, 9 ans")
    await bot.say(OFFICER, "/valider 2 parquet PR-1", chat=OFFICERS)  # one of two
    assert "déjà reçu une validation" in await bot.send_file(OPERATOR, photo())
    assert await stored_photos(bot) == [1]


async def test_photo_during_the_guided_alert(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte")
    assert "sera jointe à l'alerte" in await bot.send_file(OPERATOR, photo())
    await bot.press(OPERATOR, "Escroquerie")
    await bot.say(OPERATOR, "Gray+2km")
    await bot.press(OPERATOR, "Artisans")
    await bot.press(OPERATOR, "Valider")
    text_prompt = await bot.press(OPERATOR, "Maintenant")
    assert "envoyer une photo" in text_prompt
    confirm = await bot.say(OPERATOR, "Faux billets de 50 €")
    assert "📷 Photo jointe (1 Ko)" in confirm
    assert "Photo jointe : JPEG" in await bot.press(OPERATOR, "Soumettre")
    assert await stored_photos(bot) == [1]


async def test_abandoned_guided_alert_drops_its_photo(bot: TestBot) -> None:
    await bot.send_file(OPERATOR, photo(), text="/alerte")
    await bot.press(OPERATOR, "Escroquerie")
    await bot.say(OPERATOR, "Gray")
    await bot.press(OPERATOR, "Tout le monde")
    await bot.press(OPERATOR, "Maintenant")
    await bot.say(OPERATOR, "Faux billets")
    await bot.press(OPERATOR, "Abandonner")
    assert await bot.core.services.db.fetchval("SELECT count(*) FROM photo_drafts") == 0


async def test_a_subscribers_photo_is_not_taken(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    reply = await bot.send_file(ALICE, photo())
    assert "Photo" not in reply and reply  # the usual « cannot read this » answer
    assert await bot.core.services.db.fetchval("SELECT count(*) FROM photo_drafts") == 0


# -- it lives as long as the alert ---------------------------------------------------------------


async def test_refused_withdrawn_and_unapproved_alerts_lose_their_photo(bot: TestBot) -> None:
    for _ in range(3):
        await bot.send_file(OPERATOR, photo(), text=ALERT)
    assert await stored_photos(bot) == [1, 2, 3]
    await bot.say(OFFICER, "/refuser 1 doublon", chat=OFFICERS)
    await bot.say(OPERATOR, "/retirer 2")
    bot.advance(hours=5)
    await bot.core.core.tick()
    assert await stored_photos(bot) == []


async def test_purge_deletes_what_an_interrupted_end_left(bot: TestBot) -> None:
    await bot.send_file(OPERATOR, photo(), text=ALERT)
    await bot.say(OFFICER, "/refuser 1 doublon", chat=OFFICERS)
    services = bot.core.services
    checked = check_photo(photo())
    await services.stores.photos.attach(1, checked, bot.clock.now())  # as if left behind
    counts = await bot.core.core.purge()
    assert counts["photos"] == 1 and await stored_photos(bot) == []


@pytest.mark.sqlite_only  # written with sqlite3 into the file; the same CHECKs on PostgreSQL
async def test_the_database_refuses_what_the_checks_would(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    with sqlite3.connect(bot.config.database) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO alert_photos VALUES (1, 'image/gif', 3, ?, 1, 1, x'000000',"
                   " 't')", ("0" * 64,))


# -- uploaded once ---------------------------------------------------------------------------


async def test_twenty_thousand_sends_upload_once() -> None:
    """The figure of a 20,000-recipient broadcast: 1 upload, 19,999 reuses of its
    reference, however many sends are in flight when the first upload is slow."""
    uploads = Uploads()
    calls: list[str] = []

    async def by_upload() -> tuple[str, str]:
        calls.append("upload")
        await asyncio.sleep(0.01)
        return "sent", "file-id-1"

    async def by_reference(reference: str) -> str:
        calls.append(reference)
        return "sent"

    results = await asyncio.gather(*(uploads.send("digest", by_reference, by_upload)
                                     for _ in range(20_000)))
    assert results == ["sent"] * 20_000
    assert (uploads.uploaded, uploads.reused) == (1, 19_999)
    assert calls.count("upload") == 1 and calls.count("file-id-1") == 19_999


async def test_a_failed_first_upload_lets_the_next_send_upload() -> None:
    uploads = Uploads()
    attempts = iter([RuntimeError("blocked"), None])

    async def by_upload() -> tuple[str, str]:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return "second", "ref"

    async def by_reference(reference: str) -> str:
        return reference

    first, second, third = await asyncio.gather(
        *(uploads.send("d", by_reference, by_upload) for _ in range(3)), return_exceptions=True)
    assert isinstance(first, RuntimeError) and (second, third) == ("second", "ref")
    assert (uploads.uploaded, uploads.reused) == (1, 1)


async def test_a_file_without_a_digest_is_uploaded_each_time() -> None:
    uploads = Uploads()

    async def by_upload() -> tuple[str, str]:
        return "uploaded", "ref"

    async def by_reference(reference: str) -> str:
        raise AssertionError("a map or an export is not shared")

    for _ in range(3):
        assert await uploads.send("", by_reference, by_upload) == "uploaded"
    assert (uploads.uploaded, uploads.reused) == (3, 0)


async def test_memory_transport_marks_the_file_part() -> None:
    memory = MemoryTransport()
    sent = await memory.send("7", Outgoing("texte", attachment=photo()))
    await memory.delete("7", file_parts(sent)[0])
    assert sent == "file:1 1" and memory.posted["7"][0].file_deleted
    assert not memory.posted["7"][0].deleted
