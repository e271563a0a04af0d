"""End to end on WhatsApp: the Vesoul scenario of ``make demo`` with WhatsApp subscribers.

The bot runs with the real TelegramTransport (officers: the Bot API double) and the real
WhatsAppTransport (subscribers: the Cloud API double, tests/whatsapp_double). People enroll
on WhatsApp by buttons, lists, typed text and a shared location; a day later an operator's
alert, approved on Telegram, reaches the two Vesoul-area merchants as the approved
template (not Gray's merchant, not the farmer); « Reçu » on the template is a receipt; the
all-clear arrives as a follow-up quoting the copy; statuses and costs are recorded.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from bot.app import BotApp, build_services
from bot.clock import Clock
from bot.config import (
    Config,
    RolesConfig,
    TelegramConfig,
    ThrottleConfig,
    WhatsAppConfig,
)
from bot.context import Services
from bot.demo import ALERT_TEXT
from bot.storage.whatsapp import WhatsAppStore
from bot.transports.telegram import TelegramTransport
from bot.transports.whatsapp import WhatsAppTransport
from tests.harness import ROOT, shared_layer
from tests.telegram_double import RateLimits, TelegramDouble
from tests.test_telegram_e2e import eventually
from tests.whatsapp_double import (
    APP_SECRET,
    PHONE_ID,
    TOKEN,
    VERIFY_TOKEN,
    Record,
    WhatsAppDouble,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TG_TOKEN = "123456:wa-e2e"
OPERATOR, OFFICER, ADMIN = 100, 200, 900
BOT_NUMBER = "33612345678"  # whatsapp.display_phone_number
OFFICERS = -1001000
VESOUL, NOIDANS, GRAY, FARM = "33611000001", "33611000002", "33611000003", "33611000004"
PRICE = 0.0456  # euros per template message
ALERT = f"/alerte cambriolage Vesoul+5km pour commercant : {ALERT_TEXT}"


class OffsetClock(Clock):
    """The real clock, moved on by ``offset``: a day passes without waiting one."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class World:
    wa: WhatsAppDouble
    tg: TelegramDouble
    clock: OffsetClock
    services: Services
    transport: WhatsAppTransport

    async def say(self, wa_id: str, text: str, expect: str = "") -> Record:
        after = len(self.wa.messages(wa_id))
        await self.wa.send_text(wa_id, text)
        return await self.wa.wait_for(wa_id, expect, after)

    async def press(self, wa_id: str, label: str, expect: str = "") -> Record:
        after = len(self.wa.messages(wa_id))
        await self.wa.press(wa_id, label)
        return await self.wa.wait_for(wa_id, expect, after)

    async def enroll_typed(self, wa_id: str, community: str, commune: str) -> None:
        for text in ("/start", "oui", community, "valider", commune, "terminer"):
            await self.wa.send_text(wa_id, text)
        await self.say(wa_id, "oui", "C'est fait")

    def pass_a_day(self) -> None:
        self.clock.offset += timedelta(hours=25)
        self.wa.clock_offset += 25 * 3600

    async def officers_text(self, needle: str, after: int = 0) -> str:
        record = await self.tg.wait_for_message(
            OFFICERS, lambda r: needle in (r["text"] or ""), timeout=10, after=after)
        return str(record["text"])


def config(database: Path, wa: WhatsAppDouble, tg: TelegramDouble) -> Config:
    roles = RolesConfig(admins=[f"telegram:{ADMIN}"], operators=[f"telegram:{OPERATOR}"],
                        officers=[f"telegram:{OFFICER}"])
    telegram = TelegramConfig(enabled=True, token=TG_TOKEN, base_url=tg.base_url,
                              base_file_url=tg.base_file_url, officers_chat_id=OFFICERS,
                              poll_timeout=1)
    whatsapp = WhatsAppConfig(enabled=True, phone_number_id=PHONE_ID, access_token=TOKEN,
                              app_secret=APP_SECRET, verify_token=VERIFY_TOKEN,
                              webhook_listen="127.0.0.1:0", base_url=wa.base_url,
                              cost_per_message=PRICE, display_phone_number=BOT_NUMBER)
    return Config(database=str(database), roles=roles, telegram=telegram, whatsapp=whatsapp,
                  throttle=ThrottleConfig(messages_per_minute=10_000, burst=10_000),
                  base_dir=str(ROOT))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    loose = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)
    async with WhatsAppDouble() as wa, TelegramDouble(TG_TOKEN, "alerte_wa_bot",
                                                      limits=loose) as tg:
        for wa_id, name in ((VESOUL, "Commerce Vesoul"), (NOIDANS, "Commerce Noidans"),
                            (GRAY, "Commerce Gray"), (FARM, "Ferme Vesoul")):
            wa.person(wa_id, name)
        tg.user(OPERATOR, "Adjudant", last_name="Durand")
        tg.user(OFFICER, "Capitaine", last_name="Martin")
        tg.user(ADMIN, "Lieutenant", last_name="Petit")
        tg.group(OFFICERS, "Officiers", kind="supergroup", members=[OPERATOR, OFFICER])
        clock = OffsetClock()
        settings = config(tmp_path / "bot.sqlite3", wa, tg)
        services = await build_services(settings, clock, shared_layer(),
                                        frozenset({"telegram", "whatsapp"}))
        transport = WhatsAppTransport(settings.whatsapp, WhatsAppStore(services.db), clock)
        app = BotApp(services, {"telegram": TelegramTransport(settings.telegram),
                                "whatsapp": transport})
        await app.start()
        wa.webhook_url = f"http://127.0.0.1:{transport.webhook_port}/whatsapp"
        try:
            yield World(wa, tg, clock, services, transport)
        finally:
            await app.stop()


async def test_vesoul_scenario_with_whatsapp_subscribers(world: World) -> None:
    wa = world.wa
    # Enrollment: one by buttons, lists and a shared location; the others typed.
    consent = await world.say(VESOUL, "/start", "Acceptez")
    assert consent.buttons[0]["title"] == "J'accepte"
    communities = await world.press(VESOUL, "J'accepte", "communautés")
    # Eleven communities and « Valider »: a list of 10 rows, then the rest as buttons.
    assert communities.type == "interactive" and len(communities.rows) == 10
    assert "Propriétaires d'équidés" in [row["title"] for row in communities.rows]
    rest = wa.messages(VESOUL)[-1].buttons
    assert [button["title"] for button in rest] == ["Services partenaires", "Valider ✔"]
    await world.press(VESOUL, "Commerçants", "Sélection")
    await world.press(VESOUL, "Valider", "communes")
    after = len(wa.messages(VESOUL))
    await wa.share_location(VESOUL, 47.6236, 6.1550)  # the centre of Vesoul
    assert "Vesoul — 70000" in (await wa.wait_for(VESOUL, "Communes retenues", after)).text
    await world.press(VESOUL, "Terminer", "Récapitulatif")
    await world.press(VESOUL, "Confirmer", "C'est fait")
    await world.enroll_typed(NOIDANS, "commercant", "Noidans-lès-Vesoul")
    await world.enroll_typed(GRAY, "commercant", "Gray")
    await world.enroll_typed(FARM, "agriculteur", "Vesoul")
    assert await world.services.db.fetchval(
        "SELECT count(*) FROM subscribers WHERE platform = 'whatsapp' AND status = 'active'"
    ) == 4

    # A day later nobody's window is open: the alert can only go as the template.
    world.pass_a_day()
    sent = {wa_id: len(wa.messages(wa_id)) for wa_id in (VESOUL, NOIDANS, GRAY, FARM)}
    mark = world.tg.world.chat(OFFICERS).next_message_id - 1
    await world.tg.send_text(OPERATOR, ALERT)
    preview = await world.tg.wait_for_message(
        OPERATOR, lambda r: "aperçu" in (r["text"] or "").lower(), timeout=10)
    assert "Coût WhatsApp estimé : 0,09 € au plus (2 × 0,0456 €" in preview["text"]
    request = await world.tg.wait_for_message(
        OFFICERS, lambda r: "Demande de diffusion" in (r["text"] or ""), timeout=10, after=mark)
    button = next(b for row in request["reply_markup"]["inline_keyboard"] for b in row
                  if "Valider" in b["text"])
    await world.tg.press(OFFICER, OFFICERS, request["message_id"], button["callback_data"])
    report = await world.officers_text("Rapport alerte n°1", after=mark)
    assert "2 envoyés" in report
    assert "Coût WhatsApp : 0,09 € (2 × 0,0456 €)" in report

    copies = {wa_id: [r for r in wa.messages(wa_id)[sent[wa_id]:] if r.template]
              for wa_id in sent}
    assert [len(copies[w]) for w in (VESOUL, NOIDANS, GRAY, FARM)] == [1, 1, 0, 0]
    copy = copies[VESOUL][0]
    assert copy.template == "alerte_info"
    headline, place, text = copy.parameters
    assert headline == "🚨 Cambriolage" and place.startswith("Vesoul et 5 km alentour")
    assert "Deux individus en fourgon blanc" in text and "alerte n°1" in text
    assert len(copy.payloads) == 2  # « Reçu », « J'ai une information »

    # « Reçu » on the template is a receipt, and reopens the person's window.
    acknowledged = await world.press(VESOUL, "Reçu")
    assert acknowledged.type == "text"

    async def receipt() -> bool:
        return await world.services.db.fetchval(
            "SELECT count(acknowledged_at) FROM deliveries WHERE alert_id = 1") == 1
    await eventually(receipt)

    # Statuses are recorded against the copies' outbox rows.
    store = WhatsAppStore(world.services.db)

    async def read() -> bool:
        return (await store.statuses(1)).get("read", 0) == 2
    await eventually(read)

    # The all-clear: WhatsApp edits nothing, so each copy gets a follow-up quoting it —
    # free text for the merchant who just wrote, the follow-up template for the other.
    before = {wa_id: len(wa.messages(wa_id)) for wa_id in (VESOUL, NOIDANS)}
    await world.tg.send_text(OPERATOR, "/fin 1")
    end_report = await world.officers_text("Rapport fin d'alerte", after=mark)
    assert "de suivi citant la copie d'origine" in end_report
    assert "Coût WhatsApp : 0,05 € (1 × 0,0456 €)" in end_report
    vesoul_end = await wa.wait_for(VESOUL, "Fin d'alerte", before[VESOUL])
    assert vesoul_end.type == "text" and vesoul_end.context == copy.id
    noidans_end = [r for r in wa.messages(NOIDANS)[before[NOIDANS]:] if r.template]
    assert len(noidans_end) == 1 and noidans_end[0].template == "alerte_suite"
    assert noidans_end[0].context == copies[NOIDANS][0].id
    assert noidans_end[0].parameters[0].startswith("✅ Fin d'alerte — Cambriolage")
    assert wa.messages(GRAY)[sent[GRAY]:] == [] and wa.messages(FARM)[sent[FARM]:] == []

    # /stats sums what WhatsApp charged: two alert templates, one follow-up template.
    await world.tg.send_text(OPERATOR, "/stats")
    stats = await world.tg.wait_for_message(
        OPERATOR, lambda r: "messages modèles facturés" in (r["text"] or ""), timeout=10)
    assert "Coût WhatsApp : 0,14 € (3 messages modèles facturés)" in stats["text"]


async def test_an_invitation_brings_a_whatsapp_person_by_a_wa_me_link(world: World) -> None:
    """Issue 17 on WhatsApp: the invitation's wa.me link opens a chat with the bot's number,
    « /start <code> » already typed; sending it enrolls into the invited community."""
    await world.tg.send_text(ADMIN, "/invitation commercant Vesoul")
    answer = await world.tg.wait_for_message(
        ADMIN, lambda r: "wa.me" in (r["text"] or ""), timeout=10)
    found = re.search(r"https://wa\.me/(\d+)\?text=(\S+)", str(answer["text"]))
    assert found is not None and found.group(1) == BOT_NUMBER
    typed = unquote(found.group(2))
    assert re.fullmatch(r"/start [A-Za-z0-9_-]{32}", typed)
    await world.say(VESOUL, typed, "Acceptez")
    await world.press(VESOUL, "J'accepte", "Commerçants")
    await world.say(VESOUL, "valider", "Communes retenues")
    await world.say(VESOUL, "terminer", "")
    await world.say(VESOUL, "oui", "C'est fait")
    subscriber = await world.services.stores.subscribers.get("whatsapp", VESOUL)
    assert subscriber is not None
    profile = await world.services.stores.subscribers.profile(subscriber)
    assert profile.communities == ["commercant"] and profile.communes == ["70550"]
