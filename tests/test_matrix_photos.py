# ruff: noqa: F811  # tests/test_matrix_e2e.py's fixtures ``cast`` and ``bot`` are parameters
"""An alert's photo on Matrix, end to end against a real Synapse (issue 15, item 2).

Element sends an image as an event of its own: the operator's image just before (or just
after) the command goes with the alert. The bot fetches it through the authenticated media
API, shows it under the request, uploads it once to the media repository for every
recipient (``m.image`` naming the same ``mxc://``, then the text), and redacts it from
every room when a missing person's alert ends.
"""

from __future__ import annotations

import io
from functools import partial

import pytest
from PIL import Image

from tests.synapse import client as mx
from tests.test_matrix_e2e import (  # noqa: F401  # fixtures: parameters below
    Cast,
    RunningBot,
    _containing,
    body_of,
    bot,
    bot_posts,
    cast,
    enroll_quickly,
    is_edit,
    open_dm,
    react,
    reply_to,
    request_event,
    say,
    until,
)

pytestmark = pytest.mark.synapse

JsonDict = dict[str, object]
MISSING = "!alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge"


def jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


def images(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if isinstance(e.get("content"), dict)
            and e["content"].get("msgtype") == "m.image"]  # type: ignore[union-attr]


def redacted(event: dict[str, object]) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and "redacted_because" in unsigned


async def all_events(cast: Cast, user: object, room: str) -> list[dict[str, object]]:
    return [e for e in await mx.messages(user, room, limit=200)  # type: ignore[arg-type]
            if e["sender"] == cast.bot.user_id and e["type"] == "m.room.message"]


async def test_image_before_the_command_through_approval_to_redaction(
        cast: Cast, bot: RunningBot) -> None:
    shop = await open_dm(cast, cast.citizen)
    await enroll_quickly(bot, cast.citizen, shop)
    desk = await open_dm(cast, cast.operator)
    picture = jpeg()
    sent = await mx.send_image(cast.operator, desk, picture, "image/jpeg", "IMG_2041.jpg")
    kept = await reply_to(cast, cast.operator, desk, sent, "Photo reçue")
    assert "prochaine alerte envoyée ici dans les 10 minutes" in kept
    preview = await say(cast, cast.operator, desk, MISSING, "aperçu")
    assert "Photo jointe : JPEG" in preview and "(800 × 600)" in preview
    request = await request_event(cast, 1)
    assert "Photo jointe : JPEG" in body_of(request)
    room = cast.officers_room
    caption = await until(lambda: _containing(cast, cast.officer, room,
                                              "Photo jointe à la demande n°1"))
    posted = await until(partial(_image_named, cast, cast.officer, room, "photo-alerte-1.jpg"))
    assert await mx.download(cast.officer, posted["content"]["url"]) == picture
    await say(cast, cast.officer, room, "!valider 1 parquet PR-2026-0042", "(1/2)")
    await react(cast, cast.officer2, request["event_id"], "✅", "diffusion à 1")
    copy = await until(partial(_image_named, cast, cast.citizen, shop, "photo-alerte-1.jpg"))
    text = await until(lambda: _containing(cast, cast.citizen, shop, "Jeanne, 84 ans"))
    events = [e["event_id"] for e in await all_events(cast, cast.citizen, shop)]
    assert events.index(copy["event_id"]) < events.index(text["event_id"])  # image, then text
    assert copy["content"]["url"] == posted["content"]["url"]  # one upload for all
    assert await mx.download(cast.citizen, copy["content"]["url"]) == picture
    uploads = [m for m in await cast.server.media_of(cast.bot)
               if m.get("upload_name") == "photo-alerte-1.jpg"]
    assert len(uploads) == 1
    await until(lambda: _containing(cast, cast.officer, room, "Rapport alerte n°1"))
    await say(cast, cast.operator, desk, "!fin 1", "levée")

    async def cleaned() -> bool:
        mine = {e["event_id"]: e for e in await all_events(cast, cast.citizen, shop)}
        theirs = {e["event_id"]: e for e in await all_events(cast, cast.officer, room)}
        edits = [e for e in await bot_posts(cast, cast.citizen, shop, edits=True)
                 if mx.relates_to(text["event_id"], "m.replace")(e)]
        return (redacted(mine[copy["event_id"]]) and redacted(theirs[posted["event_id"]])
                and bool(edits))

    await until(cleaned, timeout=20)
    [edit] = [e for e in await bot_posts(cast, cast.citizen, shop, edits=True)
              if mx.relates_to(text["event_id"], "m.replace")(e)]
    assert "Jeanne" not in edit["content"]["m.new_content"]["body"]
    assert "informations sur la personne" in edit["content"]["m.new_content"]["body"]
    assert caption["event_id"]  # the officers' line stays: it names no one
    assert await bot.services.stores.photos.get(1) is None


async def _image_named(cast: Cast, user: object, room: str, name: str) -> JsonDict | None:
    return next((e for e in images(await all_events(cast, user, room))
                 if e["content"].get("body") == name), None)  # type: ignore[union-attr]


async def test_image_after_the_command_a_captioned_one_and_a_citizens(
        cast: Cast, bot: RunningBot) -> None:
    desk = await open_dm(cast, cast.operator)
    await say(cast, cast.operator, desk, "!alerte vol Gray : Vol de gasoil", "aperçu")
    request = await request_event(cast, 1)
    sent = await mx.send_image(cast.operator, desk, jpeg(), "image/jpeg", "cuve.jpg")
    assert "Photo jointe à la demande n°1" in await reply_to(
        cast, cast.operator, desk, sent, "Photo jointe")

    async def edited() -> bool:
        return any(mx.relates_to(request["event_id"], "m.replace")(e)
                   and "Photo jointe : JPEG" in str(e["content"]["m.new_content"]["body"])
                   for e in await bot_posts(cast, cast.officer, cast.officers_room, edits=True))

    await until(edited)
    # Matrix 1.10's captioned image: the caption is the command.
    sent = await mx.send_image(cast.operator, desk, jpeg((320, 240)), "image/jpeg", "b.jpg",
                               caption="!alerte vol Gray : Vol de carburant")
    preview = await reply_to(cast, cast.operator, desk, sent, "aperçu")
    assert "Alerte n°2 — aperçu" in preview and "(320 × 240)" in preview
    # A citizen's image is never fetched, and not kept: the usual answer.
    room = await open_dm(cast, cast.citizen)
    sent = await mx.send_image(cast.citizen, room, jpeg(), "image/jpeg", "moi.jpg")
    await reply_to(cast, cast.citizen, room, sent, "que du texte")
    assert await bot.services.db.fetchval("SELECT count(*) FROM photo_drafts") == 0
    assert not any(is_edit(e) for e in await bot_posts(cast, cast.citizen, room))
