"""The WhatsApp transport against the Cloud API double: limits, the 24-hour window, errors,
throughput, webhooks (handshake, signature, statuses, duplicates)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.broadcast.pacing import Pacer
from bot.clock import Clock, FrozenClock
from bot.config import PlatformRateLimits, WhatsAppConfig
from bot.domain import Choice, Incoming, Outgoing, Summary
from bot.storage.database import Database
from bot.storage.whatsapp import WhatsAppStore
from bot.transports.base import PermanentError, RateLimited, Unreachable
from bot.transports.whatsapp import WhatsAppTransport
from bot.transports.whatsapp_errors import WindowClosed
from bot.transports.whatsapp_render import free_form, one_line, template
from tests.whatsapp_double import APP_SECRET, PHONE_ID, TOKEN, VERIFY_TOKEN, WhatsAppDouble

ALICE, BOB = "33600000001", "33600000002"
COPY = Outgoing("🚨 Cambriolage — Vesoul\n\nTexte de l'alerte", summary=Summary(
    "🚨 Cambriolage", "Vesoul et 5 km alentour (32 communes)", "Faits : hier\nTexte\n\nsignature"),
    choices=(Choice("Reçu", "r:1"), Choice("J'ai une information", "t:1")))


class OffsetClock(Clock):
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Setup:
    double: WhatsAppDouble
    transport: WhatsAppTransport
    received: list[Incoming]
    clock: OffsetClock
    store: WhatsAppStore

    def later(self, hours: float) -> None:
        self.clock.offset += timedelta(hours=hours)
        self.double.clock_offset += hours * 3600


@pytest.fixture
async def wa(tmp_path: Path) -> AsyncIterator[Setup]:
    db = await Database.open(tmp_path / "bot.sqlite3")
    async with WhatsAppDouble(pair_burst=5) as double:
        double.person(ALICE, "Alice")
        double.person(BOB, "Bob")
        clock = OffsetClock()
        config = WhatsAppConfig(enabled=True, phone_number_id=PHONE_ID, access_token=TOKEN,
                                app_secret=APP_SECRET, verify_token=VERIFY_TOKEN,
                                webhook_listen="127.0.0.1:0", base_url=double.base_url)
        store = WhatsAppStore(db)
        transport = WhatsAppTransport(config, store, clock)
        received: list[Incoming] = []

        async def handle(incoming: Incoming) -> None:
            received.append(incoming)

        await transport.start(handle)
        double.webhook_url = f"http://127.0.0.1:{transport.webhook_port}/whatsapp"
        try:
            yield Setup(double, transport, received, clock, store)
        finally:
            await transport.stop()
            await db.close()


async def opened(setup: Setup, wa_id: str) -> None:
    """The person writes: their 24-hour window opens."""
    await setup.double.send_text(wa_id, "bonjour")


# -- rendering limits -------------------------------------------------------------------


def test_three_choices_are_buttons_four_are_a_list() -> None:
    three = free_form(Outgoing("Choisissez", choices=tuple(
        Choice(f"Choix {n}", f"c:{n}") for n in range(3))), "Choisir")
    assert [m.kind for m in three] == ["interactive"] and three[0].body["type"] == "button"
    four = free_form(Outgoing("Choisissez", choices=tuple(
        Choice(f"Choix {n}", f"c:{n}") for n in range(4))), "Choisir")
    assert four[0].body["type"] == "list"
    assert len(four[0].body["action"]["sections"][0]["rows"]) == 4


def test_long_labels_make_a_list_with_the_label_kept_in_the_description() -> None:
    label = "Une étiquette beaucoup trop longue pour un bouton"
    [message] = free_form(Outgoing("?", choices=(Choice(label, "c:1"),)), "Choisir")
    [row] = message.body["action"]["sections"][0]["rows"]
    assert len(row["title"]) <= 24 and row["title"].endswith("…")
    assert row["description"] == label


def test_more_than_ten_choices_take_several_lists_then_buttons() -> None:
    choices = tuple(Choice(f"Commune {n}", f"c:{n}") for n in range(23))
    messages = free_form(Outgoing("Laquelle ?", choices=choices), "Choisir")
    shapes = [(m.body["type"], len(m.body["action"].get("sections", [{"rows": []}])[0]["rows"])
               if m.body["type"] == "list" else len(m.body["action"]["buttons"]))
              for m in messages]
    assert shapes == [("list", 10), ("list", 10), ("button", 3)]
    assert messages[0].body["body"]["text"] == "Laquelle ?"


def test_template_parameters_are_single_lines_within_the_body_limit() -> None:
    long = Summary("🚨 Cambriolage", "Vesoul", "ligne\n\n\tautre     ligne " + "x" * 2000)
    message = template(long, "alerte_info", "fr", COPY.choices)
    body = message.body["components"][0]["parameters"]
    texts = [p["text"] for p in body]
    assert all("\n" not in t and "\t" not in t and "    " not in t for t in texts)
    assert sum(len(t) for t in texts) <= 1024 - 64
    assert [c["parameters"][0]["payload"] for c in message.body["components"][1:]] == \
        ["r:1", "t:1"]
    assert one_line("a\n\nb") == "a · b"


# -- against the double ----------------------------------------------------------------


async def test_the_double_refuses_four_buttons_and_eleven_rows(wa: Setup) -> None:
    """The limits are the platform's: what the renderer avoids, the double refuses."""
    await opened(wa, ALICE)
    api = wa.transport._require().api
    buttons = [{"type": "reply", "reply": {"id": f"b{n}", "title": f"B{n}"}} for n in range(4)]
    rows = [{"id": f"r{n}", "title": f"R{n}"} for n in range(11)]
    for body in ({"type": "button", "body": {"text": "?"}, "action": {"buttons": buttons}},
                 {"type": "list", "body": {"text": "?"},
                  "action": {"button": "Choisir", "sections": [{"rows": rows}]}},
                 {"type": "list", "body": {"text": "?"}, "action": {
                     "button": "Choisir", "sections": [{"rows": [
                         {"id": "r", "title": "x" * 25}]}]}}):
        with pytest.raises(Exception, match="131009"):
            await api.send_message(sender=PHONE_ID, to=ALICE, recipient=None,
                                   recipient_type="individual", typ="interactive", msg=body)
    # The transport's own rendering of 11 choices passes.
    many = Outgoing("?", choices=tuple(Choice(f"C{n}", f"c:{n}") for n in range(11)))
    assert len((await wa.transport.send(ALICE, many)).split()) == 2


async def test_inside_the_window_free_text_outside_only_the_template(wa: Setup) -> None:
    with pytest.raises(WindowClosed):  # never wrote: an answer cannot go
        await wa.transport.send(ALICE, Outgoing("Bonjour"))
    await wa.transport.send(ALICE, COPY)  # an alert's copy goes as the template
    assert wa.double.messages(ALICE)[-1].template == "alerte_info"
    await opened(wa, ALICE)
    await asyncio.sleep(0.05)
    await wa.transport.send(ALICE, COPY)
    inside = wa.double.messages(ALICE)[-1]
    assert inside.type == "interactive" and [b["title"] for b in inside.buttons] == \
        ["Reçu", "J'ai une information"]
    wa.later(23.95)  # the window closes 5 minutes early, to be safe
    await wa.transport.send(ALICE, COPY)
    assert wa.double.messages(ALICE)[-1].template == "alerte_info"
    with pytest.raises(WindowClosed):
        await wa.transport.send(ALICE, Outgoing("Une réponse"))


async def test_131047_in_a_status_puts_the_copy_back_as_the_template(wa: Setup) -> None:
    """Our clock thinks the window open, Meta's does not: the free text fails later (a
    status webhook), the outbox row goes back to pending, and the next send is the
    template."""
    db = wa.store.db
    await opened(wa, ALICE)
    wa.double.people[ALICE].last_message = time.time() - 25 * 3600  # Meta's view
    message_id = await wa.transport.send(ALICE, COPY)
    assert wa.double.messages(ALICE)[-1].type == "interactive"
    row = await _delivery_row(db, message_id)
    await wa.double.flush_statuses()

    async def requeued() -> bool:
        return await db.fetchval("SELECT status FROM deliveries WHERE id = ?", (row,)) == \
            "pending"
    await _eventually(requeued)
    assert await wa.store.status_of(message_id) == ("failed", 131047)
    await wa.transport.send(ALICE, COPY)
    assert wa.double.messages(ALICE)[-1].template == "alerte_info"


async def test_131047_at_once_sends_the_template_instead(wa: Setup) -> None:
    await opened(wa, ALICE)
    wa.double.fail_next(ALICE, 131047)
    await wa.transport.send(ALICE, COPY)
    assert wa.double.messages(ALICE)[-1].template == "alerte_info"
    wa.double.fail_next(ALICE, 131047)
    with pytest.raises(WindowClosed):  # an answer has no template to fall back on
        await wa.transport.send(ALICE, Outgoing("Réponse"))


async def test_pair_rate_limit_delays_only_that_chat(wa: Setup) -> None:
    await opened(wa, ALICE)
    for _ in range(5):  # the double's pair burst
        await wa.transport.send(ALICE, Outgoing("x"))
    with pytest.raises(RateLimited) as limited:
        await wa.transport.send(ALICE, Outgoing("x"))
    assert limited.value.chat_only and limited.value.retry_after == 6.0
    await opened(wa, BOB)
    await wa.transport.send(BOB, Outgoing("y"))  # another person is not held back


async def test_throughput_error_pauses_the_whole_platform(wa: Setup) -> None:
    await opened(wa, ALICE)
    wa.double.fail_next(ALICE, 130429)
    with pytest.raises(RateLimited) as limited:
        await wa.transport.send(ALICE, Outgoing("x"))
    assert not limited.value.chat_only


async def test_131026_marks_the_person_unreachable_until_they_write(wa: Setup) -> None:
    await opened(wa, ALICE)
    wa.double.people[ALICE].reachable = False
    with pytest.raises(Unreachable):
        await wa.transport.send(ALICE, COPY)
    sent = len(wa.double.messages(ALICE))
    with pytest.raises(Unreachable):  # not even asked: the mark answers
        await wa.transport.send(ALICE, COPY)
    assert len(wa.double.messages(ALICE)) == sent
    assert await wa.store.unreachable(ALICE)
    wa.double.people[ALICE].reachable = True
    await opened(wa, ALICE)
    await asyncio.sleep(0.05)
    assert not await wa.store.unreachable(ALICE)
    # Back: the core hears they rejoined (the subscriber is active again), then their words.
    assert [(i.membership, i.text) for i in wa.received[-2:]] == [("joined", ""),
                                                                   (None, "bonjour")]
    await wa.transport.send(ALICE, COPY)


async def test_131026_in_a_status_marks_the_person_unreachable(wa: Setup) -> None:
    wa.double.undeliverable_later = True
    await opened(wa, ALICE)
    wa.double.people[ALICE].reachable = False
    await wa.transport.send(ALICE, COPY)
    await wa.double.flush_statuses()
    await _eventually(lambda: wa.store.unreachable(ALICE))
    with pytest.raises(Unreachable):
        await wa.transport.send(ALICE, COPY)


async def test_spam_and_bad_parameters_are_typed(wa: Setup) -> None:
    await opened(wa, ALICE)
    wa.double.fail_next(ALICE, 131048, 132001)
    with pytest.raises(RateLimited) as spam:
        await wa.transport.send(ALICE, Outgoing("x"))
    assert spam.value.retry_after >= 60 and not spam.value.chat_only
    with pytest.raises(PermanentError):
        await wa.transport.send(ALICE, Outgoing("x"))
    assert wa.transport.counters["error_131048"] == 1


async def test_the_pacer_holds_80_messages_a_second_without_a_rate_error(wa: Setup) -> None:
    """Throughput: the shared pacer at rate_limits.whatsapp's 80 msg/s against a double
    that refuses beyond 80 a second. Both measure the same frozen clock, which only the
    pacer's waits move: exact whatever the load of the machine."""
    clock = FrozenClock(datetime.now(UTC))
    wa.double.monotonic = clock.monotonic
    people = [f"3361{n:07d}" for n in range(240)]
    for wa_id in people:
        wa.double.person(wa_id)
        await wa.double.send_text(wa_id, "bonjour")  # their window is open
    pacer = Pacer(PlatformRateLimits(80.0, 0.16, 20.0, 20), clock)

    async def one(wa_id: str) -> None:
        await pacer.acquire(wa_id, False)
        await wa.transport.send(wa_id, Outgoing("alerte"))

    await asyncio.gather(*(one(wa_id) for wa_id in people))
    assert wa.double.stats.rate_errors == {}
    accepted = wa.double.stats.accepted[-240:]
    # 80 a second after a burst of at most a fifth of a second (the double's bucket)
    assert len(accepted) == 240 and accepted[-1] - accepted[0] >= (240 - 16) / 80
    # Without the pacer, the same sends are refused: the double holds the line.
    wa.double.stats.rate_errors.clear()
    results = await asyncio.gather(*(wa.transport.send(p, Outgoing("x")) for p in people),
                                   return_exceptions=True)
    assert any(isinstance(r, RateLimited) for r in results)
    assert wa.double.stats.rate_errors.get(130429, 0) > 0


# -- webhooks ---------------------------------------------------------------------------


async def test_verification_handshake(wa: Setup) -> None:
    url = wa.double.webhook_url
    async with aiohttp.ClientSession() as session:
        good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1158201444"}
        async with session.get(url, params=good) as response:
            assert response.status == 200 and await response.text() == "1158201444"
        async with session.get(url, params={**good, "hub.verify_token": "wrong"}) as response:
            assert response.status == 403


async def test_unsigned_or_badly_signed_webhooks_are_refused(wa: Setup) -> None:
    payload = wa.double._change({"contacts": [], "messages": [
        {"from": ALICE, "id": "wamid.forged", "timestamp": "1", "type": "text",
         "text": {"body": "/stop"}}]})
    assert await wa.double.post(payload, sign=False) == 403
    assert await wa.double.post(payload, signed_with="another-secret") == 403
    assert await wa.double.post({}, body=b"not json") == 400
    assert wa.received == []
    assert await wa.double.post(payload) == 200
    assert [i.text for i in wa.received] == ["/stop"]


async def test_a_webhook_delivered_twice_is_handled_once(wa: Setup) -> None:
    payload = wa.double._change({"contacts": [{"profile": {"name": "Alice"}, "wa_id": ALICE}],
                                 "messages": [{"from": ALICE, "id": "wamid.x1",
                                               "timestamp": str(int(time.time())),
                                               "type": "text", "text": {"body": "oui"}}]})
    assert await wa.double.post(payload) == 200
    assert await wa.double.post(payload) == 200  # Meta did not see our 200: again
    assert len(wa.received) == 1 and wa.transport.counters["duplicate_webhook"] == 1
    incoming = wa.received[0]
    assert (incoming.sender.platform, incoming.sender.user_id, incoming.event_id,
            incoming.sender_name) == ("whatsapp", ALICE, "wamid.x1", "Alice")


async def test_choices_locations_and_unreadable_content(wa: Setup) -> None:
    await opened(wa, ALICE)
    await wa.transport.send(ALICE, Outgoing("?", choices=(Choice("Oui", "y:1"),
                                                          Choice("Non", "n:1"))))
    await wa.double.press(ALICE, "Non")
    await wa.double.share_location(ALICE, 47.62, 6.15)
    await wa.double._from(ALICE, "audio", {"id": "media1"})
    await wa.double._from(ALICE, "reaction", {"message_id": "wamid.1", "emoji": "👍"})
    kinds = [(i.choice, i.location, i.unsupported) for i in wa.received[1:]]
    assert kinds == [("n:1", None, None), (None, (47.62, 6.15), None), (None, None, "audio")]


async def test_statuses_are_recorded_and_only_move_forward(wa: Setup) -> None:
    await opened(wa, ALICE)
    message_id = await wa.transport.send(ALICE, Outgoing("x"))
    await wa.double.flush_statuses()
    await _eventually(lambda: _status_is(wa, message_id, "read"))
    late = {"id": message_id, "status": "delivered", "timestamp": "1", "recipient_id": ALICE}
    await wa.double.post(wa.double._change({"statuses": [late]}))
    assert await wa.store.status_of(message_id) == ("read", None)


async def test_quality_signals_are_logged(wa: Setup, caplog: pytest.LogCaptureFixture) -> None:
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
        "field": "phone_number_quality_update",
        "value": {"display_phone_number": "33180000000", "event": "DOWNGRADE",
                  "current_limit": "TIER_1K"}}]}]}
    assert await wa.double.post(payload) == 200
    assert "phone_number_quality_update event=DOWNGRADE current_limit=TIER_1K" in caplog.text


# -- helpers ----------------------------------------------------------------------------


async def _status_is(wa: Setup, message_id: str, status: str) -> bool:
    found = await wa.store.status_of(message_id)
    return found is not None and found[0] == status


async def _delivery_row(db: Database, message_id: str) -> int:
    """An outbox row as the dispatcher leaves it once sent (alert and subscriber minimal)."""
    now = datetime.now(UTC).isoformat()
    alert = await db.insert(
        "INSERT INTO alerts (category, perimeter, perimeter_json, all_communities, body,"
        " facts_at, requested_by, request_platform, request_chat_id, status,"
        " required_approvals, created_at, expires_at)"
        " VALUES ('cambriolage', 'Vesoul', '{}', 1, 'x', ?, 'telegram:1', 'telegram', '1',"
        " 'done', 1, ?, ?)", (now, now, now))
    return await db.insert(
        "INSERT INTO deliveries (alert_id, recipient_kind, recipient_id, platform, chat_id,"
        " status, message_id, next_try_at) VALUES (?, 'subscriber', 1, 'whatsapp', ?, 'sent',"
        " ?, ?)", (alert, ALICE, message_id, now))


async def _eventually(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
