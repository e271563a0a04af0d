"""WhatsApp: an alert to N WhatsApp subscribers at the Cloud API's 80 msg/s per number.

In-process: the bot (officers on a memory Telegram, subscribers on the real
WhatsAppTransport and pywa) and the Cloud API double (tests/whatsapp_double) share the
loop. Every subscriber last wrote more than 24 hours ago, so every copy is the approved
template, as for a real alert; the double sends the statuses back (sent, delivered, read)
as webhooks while the broadcast runs. The double refuses what Meta would: beyond 80
messages a second (130429) or a person's pair rate (131056). Figures come from the double
(the time of every message it accepted, the rate errors it answered) and the bot's report.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.botproc import seed_database
from bot.clock import Clock
from bot.config import WhatsAppConfig
from bot.storage.whatsapp import WhatsAppStore
from bot.transports.whatsapp import WhatsAppTransport
from tests.harness import OFFICERS, TestBot, shared_layer, test_config
from tests.whatsapp_double import APP_SECRET, PHONE_ID, TOKEN, VERIFY_TOKEN, WhatsAppDouble

RATE = 80.0
PRICE = 0.0456


def wa_id(subscriber: int) -> str:
    return f"3361{subscriber:07d}"


async def ceiling(folder: Path, subscribers: int) -> dict[str, Any]:
    async with WhatsAppDouble(throughput=RATE) as double:
        for number in range(1, subscribers + 1):
            double.person(wa_id(number))
        whatsapp = WhatsAppConfig(enabled=True, phone_number_id=PHONE_ID, access_token=TOKEN,
                                  app_secret=APP_SECRET, verify_token=VERIFY_TOKEN,
                                  webhook_listen="127.0.0.1:0", base_url=double.base_url,
                                  cost_per_message=PRICE)
        config = test_config(folder / "bench.sqlite3", whatsapp=whatsapp)
        bot = TestBot(config, platforms=("telegram",), background_dispatch=True)
        bot.clock = Clock()  # real time: the pacer must really wait
        services_db: list[Any] = []
        try:
            transport = await _start(bot, config.whatsapp, services_db)
            double.webhook_url = f"http://127.0.0.1:{transport.webhook_port}/whatsapp"
            db = services_db[0]
            communes = sorted(shared_layer().in_departement("70"))
            await seed_database(db, subscribers, communes, platform="whatsapp",
                                chat_ids=[wa_id(n) for n in range(1, subscribers + 1)])
            await bot.say("telegram:100", "/alerte crue dep:70 : Montée des eaux de la Saône")
            approved = time.monotonic()
            await bot.say("telegram:200", "/valider 1", chat=OFFICERS)
            report = await _report(bot, subscribers)
            finished = time.monotonic()
            await double.flush_statuses()
            cost = await WhatsAppStore(db).alert_cost(1, PRICE)
        finally:
            await bot.stop()
        accepted = sorted(double.stats.accepted)
        return _summary(accepted, approved, finished, subscribers, double, transport, report,
                        cost.billed)


async def _start(bot: TestBot, config: WhatsAppConfig, keep: list[Any]) -> WhatsAppTransport:
    """The TestBot with the real WhatsApp transport beside its memory Telegram."""
    from bot.app import BotApp, build_services

    services = await build_services(bot.config, bot.clock, shared_layer(),
                                    frozenset({"telegram", "whatsapp"}))
    transport = WhatsAppTransport(config, WhatsAppStore(services.db), bot.clock)
    bot.app = BotApp(services, {**bot.transports, "whatsapp": transport})
    await bot.app.start()
    keep.append(services.db)
    return transport


async def _report(bot: TestBot, subscribers: int, timeout: float = 3600) -> str:
    officers = bot.transports["telegram"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in officers.texts(OFFICERS):
            if text.startswith("Rapport alerte n°1"):
                return text
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no report for {subscribers} WhatsApp subscribers")


def _summary(accepted: list[float], approved: float, finished: float, subscribers: int,
             double: WhatsAppDouble, transport: WhatsAppTransport, report: str,
             billed: int) -> dict[str, Any]:
    first, last = accepted[0], accepted[-1]
    seconds = int(last - first)
    per_second = [sum(1 for t in accepted if first + s <= t < first + s + 1)
                  for s in range(seconds + 1)]
    steady = per_second[1:-1] or per_second
    return {"subscribers": subscribers, "delivered": len(accepted),
            "duration_s": round(last - approved, 1),
            "overall_rate": round(len(accepted) / max(last - first, 1e-9), 1),
            "steady_rate": round(sum(steady) / len(steady), 1),
            "busiest_second": max(per_second),
            "rate_errors": sum(double.stats.rate_errors.values()),
            "errors_by_code": dict(double.stats.rate_errors),
            "templates": transport.counters["template"],
            "status_webhooks": double.stats.webhooks, "billed": billed,
            "report": report.splitlines()[0], "per_second": per_second,
            "report_s": round(finished - approved, 1)}


async def main(subscribers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-wa-") as folder:
        return await ceiling(Path(folder), subscribers)
