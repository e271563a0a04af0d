"""The scripted demo: four subscribers enroll, an operator alerts, an officer approves.

It runs through the real console transport and core, on a fresh database, and checks
that exactly the two Vesoul-area merchants receive the alert.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path

from bot.app import BotApp, build_services
from bot.config import Config
from bot.organisations import configured_channels
from bot.transports.console import ConsoleTransport

ALERT_TEXT = ("Deux individus en fourgon blanc repèrent les commerces et ont forcé une vitrine "
              "cette nuit. Signalez tout comportement suspect au 17.")


def enrollment(name: str, community: str, commune: str) -> list[str]:
    return [f":as {name}", "/start", "1", community, "valider", commune, "terminer", "oui"]


SCRIPT = [
    *enrollment("commerce-vesoul", "commercant", "Vesoul"),
    *enrollment("commerce-noidans", "commercant", "Noidans-lès-Vesoul"),
    *enrollment("commerce-gray", "commercant", "Gray"),
    *enrollment("ferme-vesoul", "agriculteur", "Vesoul"),
    ":as operateur",
    f"/alerte cambriolage Vesoul+5km pour commercant : {ALERT_TEXT}",
    ":as officier",
    ":officiers",
    "1",
    # Another force's operator, outside its zone: refused, nothing stored (issue 16).
    ":as policier",
    f"/alerte vol Vesoul : {ALERT_TEXT}",
]
EXPECTED = {"commerce-vesoul": True, "commerce-noidans": True, "commerce-gray": False,
            "ferme-vesoul": False}


async def run_demo(config: Config) -> int:
    with tempfile.TemporaryDirectory() as folder:
        demo_config = dataclasses.replace(config, database=str(Path(folder) / "demo.sqlite3"))
        console = ConsoleTransport(config.console.officers_channel, output=print,
                                   files_dir=Path(folder) / "console-files",
                                   more_channels=configured_channels(config, "console"))
        services = await build_services(demo_config, platforms=frozenset({"console"}))
        app = BotApp(services, {"console": console})
        await app.start()
        try:
            for line in SCRIPT:
                await console.feed(line)
            reported = await _wait_for_report(app)
            enrolled = await app.services.db.fetchval(
                "SELECT count(*) FROM subscribers WHERE status = 'active'")
        finally:
            await app.stop()
    return _verdict(console, reported, enrolled)


async def _wait_for_report(app: BotApp, timeout: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        alert = await app.services.stores.alerts.get(1)
        if alert is not None and alert.status == "done":
            await asyncio.sleep(0.1)  # let the report reach the console
            return True
        await asyncio.sleep(0.05)
    return False


def config_has_police(console: ConsoleTransport) -> bool:
    """The territory rule is shown when the configuration has the police zone (a copied
    single-force configuration still runs the rest of the demo)."""
    return "policier" in console.received


def _verdict(console: ConsoleTransport, reported: bool, enrolled: int) -> int:
    print("\n=== Résultat de la démo ===")
    print(f"{enrolled} abonnés inscrits (attendu : {len(EXPECTED)})")
    ok = reported and enrolled == len(EXPECTED)
    for name, expected in EXPECTED.items():
        got = any("alerte n°1 " in text for text in console.received.get(name, []))
        ok = ok and got == expected
        print(f"{name:18} {'a reçu l’alerte' if got else 'n’a rien reçu':18}"
              f" {'(attendu)' if got == expected else '(INATTENDU)'}")
    print("rapport reçu par les officiers" if reported else "AUCUN rapport reçu")
    if config_has_police(console):
        refused = any("hors de votre zone" in text for text in console.received["policier"])
        ok = ok and refused
        print("alerte de la police hors de sa zone refusée" if refused
              else "alerte de la police hors de sa zone NON refusée")
    print("démo réussie" if ok else "DÉMO EN ÉCHEC")
    return 0 if ok else 1
