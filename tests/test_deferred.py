"""Files built after commit, outside the event's transaction and the core's lock (issue 13):
the approval request's map, /cap's CAP document, /mesdonnees' data file."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

import pytest

from bot import deferred
from bot.broadcast.replies import Post, ReplySender, decode, encode
from bot.domain import Attachment, ChatRef, Deferred, Outgoing
from bot.enums import DeferredKind
from tests.harness import OFFICERS, TestBot

OPERATOR, OFFICER, ALICE = "telegram:100", "telegram:200", "telegram:1001"


async def test_the_map_is_drawn_outside_the_lock_and_others_go_on(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")  # n°1, map drawn
    drawing, release = threading.Event(), threading.Event()
    real = deferred.render_map

    def slow_render(*args: object, **kwargs: object) -> bytes:
        drawing.set()
        assert release.wait(10), "never released"
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deferred, "render_map", slow_render)
    core = bot.core.core
    telegram = bot.transports["telegram"]
    # The operator's own handle() returns with its map still being drawn: the sender's
    # loop will send it.
    await asyncio.wait_for(core.handle(bot._incoming(
        OPERATOR, None, text="/alerte crue Gray : Le Salon déborde")), 5)  # n°2
    assert "n°2" in bot.inbox(OPERATOR)[-1]  # its preview went
    assert await asyncio.to_thread(drawing.wait, 10)
    try:
        assert not core._lock.locked()  # the drawing holds no lock: the officer decides
        # ... and the officer's handle() does not wait for the drawing either.
        await asyncio.wait_for(core.handle(bot._incoming(OFFICER, None, text="/valider 1")),
                               5)
        assert any("n°1" in p.message.text for p in telegram.posted["200"])
        status = await bot.core.services.db.fetchval("SELECT status FROM alerts WHERE id = 1")
        assert status == "broadcasting"  # committed, the broadcast begun
        maps = [p for p in telegram.posted[OFFICERS] if p.message.attachment]
        assert [m.message.attachment.filename for m in maps  # type: ignore[union-attr]
                ] == ["carte-alerte-1.png"]  # n°2's map waits, and nothing after it there
        assert "n°2" in telegram.posted[OFFICERS][-1].message.text  # the request went
        # An answer in the officers' channel waits behind the map (order per chat), but
        # the officer's handle() does not.
        await asyncio.wait_for(core.handle(bot._incoming(OFFICER, OFFICERS, text="/aide")), 5)
        assert "n°2" in telegram.posted[OFFICERS][-1].message.text
        waiting = await bot.core.services.db.fetchval(
            "SELECT count(*) FROM replies WHERE status = 'pending'")
        assert waiting >= 1  # the map, and the officers' rows after it
    finally:
        release.set()
    for _ in range(500):  # nobody drains: the sender's loop sends what waited
        if telegram.posted[OFFICERS][-1].message.attachment is None and \
                await bot.core.services.db.fetchval(
                    "SELECT count(*) FROM replies WHERE status = 'pending'") == 0:
            break
        await asyncio.sleep(0.01)
    officers = [p.message for p in telegram.posted[OFFICERS]]
    second = next(i for i, m in enumerate(officers) if "Demande de diffusion n°2" in m.text)
    picture = officers[second + 1]  # in order: the request, its map, then the help
    assert "Commandes" in officers[second + 2].text
    assert picture.attachment is not None
    assert picture.attachment.filename == "carte-alerte-2.png"
    assert picture.attachment.data.startswith(b"\x89PNG") and picture.deferred is None
    assert await bot.core.services.db.fetchval(
        "SELECT count(*) FROM replies WHERE status = 'pending'") == 0


async def test_a_map_that_cannot_be_drawn_holds_nothing_back(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(deferred, "render_map", broken)
    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    posted: list[Outgoing] = [p.message for p in bot.transports["telegram"].posted[OFFICERS]]
    assert not any(m.attachment or m.deferred for m in posted)
    assert "n°1" in posted[-1].text  # the decision's answer, in the same chat, still goes


async def test_a_map_left_pending_by_a_crash_is_drawn_at_restart(bot: TestBot) -> None:
    core = bot.core.core
    sender = core.replies

    async def crash() -> None:  # committed, then the process died before sending
        return None

    sender.drain = sender.flush = crash  # type: ignore[method-assign]
    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")
    assert not [p for p in bot.transports["telegram"].posted[OFFICERS] if p.message.attachment]
    await bot.restart()
    await bot.core.core.replies.flush()
    maps = [p.message.attachment for p in bot.transports["telegram"].posted[OFFICERS]
            if p.message.attachment]
    assert [m.filename for m in maps] == ["carte-alerte-1.png"]


async def test_a_stopped_sender_builds_nothing_more_and_the_next_start_sends_it(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    drawing, release = threading.Event(), threading.Event()
    drawn: list[str] = []
    real = deferred.render_map

    def slow_render(*args: object, **kwargs: object) -> bytes:
        drawn.append("map")
        drawing.set()
        assert release.wait(10), "never released"
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deferred, "render_map", slow_render)
    core = bot.core.core
    for place in ("Vesoul", "Gray"):  # two maps: one being drawn, one queued
        await core.handle(bot._incoming(OPERATOR, None, text=f"/alerte crue {place} : Crue"))
    assert await asyncio.to_thread(drawing.wait, 10)
    stopping = asyncio.create_task(bot.stop())
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    await asyncio.sleep(0.5)
    assert drawn == ["map"]  # the queued map was called off
    monkeypatch.setattr(deferred, "render_map", real)
    await bot.restart()
    await bot.core.core.replies.flush()
    maps = [p.message.attachment.filename for p in bot.transports["telegram"].posted[OFFICERS]
            if p.message.attachment]
    assert maps == ["carte-alerte-1.png", "carte-alerte-2.png"]

async def test_stop_right_after_a_wake_stops(bot: TestBot) -> None:
    """A drawing done (wake) just as the bot stops: the sender's loop still ends (with
    asyncio.wait_for, Python 3.11 lost the cancellation and stop() waited for ever)."""
    hung = []
    for turns in range(6):  # the wake lands at different steps of the loop's wait
        sender = ReplySender(bot.core.services, bot.transports)
        await sender.start()
        await asyncio.sleep(0.1)  # idle: waiting for a wake
        sender.wake()
        for _ in range(turns):
            await asyncio.sleep(0)
        try:
            await asyncio.wait_for(asyncio.shield(sender.stop()), 5)
        except TimeoutError:
            hung.append(turns)
    assert hung == []

# -- documents: /cap and /mesdonnees --------------------------------------------------------


def record_builds(bot: TestBot, monkeypatch: pytest.MonkeyPatch,
                  name: str) -> list[tuple[bool, bool, bool]]:
    """Wrap ``bot.deferred.<name>`` (the CPU half of a file): each call records whether a
    transaction was open, the core's lock held, and whether it ran on the event loop."""
    calls: list[tuple[bool, bool, bool]] = []
    real: Callable[..., bytes] = getattr(deferred, name)
    loop_thread = threading.current_thread()

    def recording(*args: object, **kwargs: object) -> bytes:
        calls.append((bot.core.services.db.in_transaction, bot.core.core._lock.locked(),
                      threading.current_thread() is loop_thread))
        return real(*args, **kwargs)

    monkeypatch.setattr(deferred, name, recording)
    return calls


def last_attachment(bot: TestBot, chat: str) -> Attachment:
    attachment = bot.transports["telegram"].posted[chat][-1].message.attachment
    assert attachment is not None
    return attachment


async def test_the_cap_document_is_made_after_commit(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await bot.say(OPERATOR, "/alerte crue Vesoul+2km : La Saône déborde")
    calls = record_builds(bot, monkeypatch, "alert_to_cap")
    assert "Alerte n°1 au format CAP 1.2" in await bot.say(OPERATOR, "/cap 1")
    assert calls == [(False, False, False)]  # no transaction, no lock, a worker thread
    document = last_attachment(bot, "100")
    assert (document.filename, document.mime_type) == ("alerte-1.cap.xml", "application/xml")
    assert document.data.startswith(b"<?xml") and b"<msgType>Alert</msgType>" in document.data


async def test_the_data_export_is_made_after_commit(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    calls = record_builds(bot, monkeypatch, "export_json")
    assert "(1 commune, 0 alerte reçue)" in await bot.say(ALICE, "/mesdonnees")
    assert calls == [(False, False, False)]
    export = last_attachment(bot, "1001")
    assert (export.filename, export.mime_type) == ("mes-donnees.json", "application/json")
    assert json.loads(export.data)["platform_user_id"] == "1001"


async def test_an_export_left_pending_by_a_crash_is_made_at_restart(bot: TestBot) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    sender = bot.core.core.replies

    async def crash() -> None:  # committed, then the process died before sending
        return None

    sender.drain = sender.flush = crash  # type: ignore[method-assign]
    await bot.say(ALICE, "/mesdonnees")
    db = bot.core.services.db
    [effect] = await db.fetchall("SELECT effect FROM replies WHERE status = 'pending'")
    stored = decode(effect[0])
    assert isinstance(stored, Post) and stored.message.attachment is None
    assert stored.message.deferred is not None  # a recipe, not the file
    assert stored.message.deferred.kind is DeferredKind.MY_DATA
    read_then = json.loads(stored.message.deferred.recipe)["data"]["exported_at"]
    bot.advance(minutes=10)
    await bot.restart()
    await bot.core.core.replies.flush()
    [post] = bot.transports["telegram"].posted["1001"]
    assert post.message.text.startswith("Voici tout ce que nous conservons sur vous")
    export = last_attachment(bot, "1001")
    assert export.filename == "mes-donnees.json"
    assert json.loads(export.data)["exported_at"] == read_then  # the file of the command
    rows = await bot.core.services.db.fetchall("SELECT status, effect FROM replies")
    assert {tuple(row) for row in rows} == {("sent", None)}


async def test_a_sent_export_is_kept_neither_in_the_outbox_nor_in_memory(
        bot: TestBot) -> None:
    await bot.enroll(ALICE, "citoyen", "Vesoul")
    await bot.say(ALICE, "/mesdonnees")
    assert last_attachment(bot, "1001").filename == "mes-donnees.json"
    left = await bot.core.services.db.fetchval(
        "SELECT count(*) FROM replies WHERE effect IS NOT NULL")
    assert left == 0  # docs/data-register.md: the content goes once sent
    kept = bot.core.core.replies._drawings
    assert not [d for d in kept if d.kind is not DeferredKind.MAP]


async def test_a_document_that_cannot_be_made_gets_the_apology(
        bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> bytes:
        raise ValueError("exported CAP message is not schema-valid")

    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")
    monkeypatch.setattr(deferred, "alert_to_cap", broken)
    reply = await bot.say(OPERATOR, "/cap 1")
    assert reply.startswith("Désolé, une erreur interne")  # as when the handler failed
    assert bot.transports["telegram"].posted["100"][-1].message.attachment is None


def test_a_recipe_survives_the_outbox_round_trip() -> None:
    recipe = deferred.my_data_recipe("fr", {"chat_id": "1001", "communes": []})
    message = Outgoing("texte", deferred=recipe)
    stored = decode(encode(Post(ChatRef("telegram", "1001"), message)))
    assert isinstance(stored, Post) and stored.message == message
    assert stored.message.deferred is not None
    assert stored.message.deferred.kind is DeferredKind.MY_DATA  # the enum, not a string
    assert Deferred(DeferredKind.MY_DATA, "mes-donnees.json", "application/json",
                    recipe.recipe) == stored.message.deferred
