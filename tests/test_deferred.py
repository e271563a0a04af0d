"""The approval request's map is drawn after commit, outside the core's lock (issue 13)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot import deferred
from bot.domain import Outgoing
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
    submit = asyncio.create_task(core.handle(bot._incoming(
        OPERATOR, None, text="/alerte crue Gray : Le Salon déborde")))  # n°2
    assert await asyncio.to_thread(drawing.wait, 10)
    try:
        assert not core._lock.locked()  # the drawing holds no lock: the officer decides
        decided = asyncio.create_task(core.handle(bot._incoming(OFFICER, None,
                                                                text="/valider 1")))
        for _ in range(200):  # the officer's answer (another chat) goes during the drawing
            if any("n°1" in p.message.text for p in telegram.posted["200"]):
                break
            await asyncio.sleep(0.01)
        assert any("n°1" in p.message.text for p in telegram.posted["200"])
        status = await bot.core.services.db.fetchval("SELECT status FROM alerts WHERE id = 1")
        assert status == "broadcasting"  # committed, the broadcast begun
        maps = [p for p in telegram.posted[OFFICERS] if p.message.attachment]
        assert [m.message.attachment.filename for m in maps  # type: ignore[union-attr]
                ] == ["carte-alerte-1.png"]  # n°2's map waits, and nothing after it there
        assert not submit.done()
    finally:
        release.set()
    await submit
    await decided
    officers = [p.message for p in telegram.posted[OFFICERS]]
    request, picture = officers[-2:]
    assert "n°2" in request.text and picture.attachment is not None
    assert picture.attachment.filename == "carte-alerte-2.png"
    assert picture.attachment.data.startswith(b"\x89PNG") and picture.deferred is None


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

    sender.drain = crash  # type: ignore[method-assign]
    await bot.say(OPERATOR, "/alerte crue Vesoul : La Saône déborde")
    assert not [p for p in bot.transports["telegram"].posted[OFFICERS] if p.message.attachment]
    await bot.restart()
    await bot.core.core.replies.flush()
    maps = [p.message.attachment for p in bot.transports["telegram"].posted[OFFICERS]
            if p.message.attachment]
    assert [m.filename for m in maps] == ["carte-alerte-1.png"]
