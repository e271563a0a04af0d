"""An alert's photo in the console (issue 15, item 2), end to end: the real console
transport, core and dispatcher, as ``make console`` runs them, driven line by line.

``:photo FILE /alerte …`` files the alert with its photo; the officers' channel and the
recipients get it as a file written under ``files_dir`` (a terminal shows no picture), and
a missing person's photo is deleted from there when the alert ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.app import BotApp, build_services
from bot.config import load_config
from bot.transports.console import ConsoleTransport
from tests.harness import ROOT, shared_layer

MISSING = "/alerte disparition Vesoul : Jeanne, 84 ans, manteau rouge"


def enrollment(name: str, community: str, commune: str) -> list[str]:
    return [f":as {name}", "/start", "1", community, "valider", commune, "terminer", "oui"]


class Console:
    def __init__(self, folder: Path) -> None:
        config = load_config(ROOT / "config" / "demo.yaml", {})
        self.config = dataclasses.replace(config, database=str(folder / "console.sqlite3"))
        self.printed: list[str] = []
        self.files = folder / "console-files"
        self.transport = ConsoleTransport(self.config.console.officers_channel,
                                          output=self.printed.append, files_dir=self.files)
        self.app: BotApp | None = None

    async def start(self) -> Console:
        services = await build_services(self.config, geo=shared_layer(),
                                        platforms=frozenset({"console"}))
        self.app = BotApp(services, {"console": self.transport})
        await self.app.start()
        return self

    async def type(self, *lines: str) -> str:
        """What the console printed for these lines."""
        start = len(self.printed)
        for line in lines:
            await self.transport.feed(line)
        return "\n".join(self.printed[start:])

    async def until(self, text: str, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not any(text in line for line in self.printed):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the console never printed {text!r}")
            await asyncio.sleep(0.02)


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    running = await Console(tmp_path).start()
    yield running
    assert running.app is not None
    await running.app.stop()


def saved_photos(console: Console, chat: str) -> list[Path]:
    """The files the bot sent to ``chat`` (their path follows the message's header)."""
    paths = []
    for block in console.printed:
        if block.startswith(f"[bot → {chat}]") and "📎" in block:
            paths.append(Path(block.rsplit("📎 ", 1)[1].strip()))
    return paths


async def test_missing_person_photo_through_approval_to_removal(console: Console,
                                                                tmp_path: Path) -> None:
    picture = tmp_path / "jeanne.jpg"
    Image.new("RGB", (640, 480), (180, 40, 40)).save(picture, "JPEG")
    await console.type(*enrollment("voisine", "citoyen", "Vesoul"))
    preview = await console.type(":as operateur", f":photo {picture} {MISSING}")
    assert "📷 jeanne.jpg /alerte disparition" in preview
    assert "Photo jointe : JPEG" in preview and "(640 × 480)" in preview
    await console.until("Photo jointe à la demande n°1")
    [officers_copy] = [p for p in saved_photos(console, "#officiers") if "photo" in p.name]
    assert officers_copy.read_bytes() == picture.read_bytes()
    await console.type(":as officier", ":officiers", "/valider 1 parquet PR-2026-7",
                       ":as officier2", ":officiers", "/valider 1")
    await console.until("Rapport alerte n°1")
    [copy] = saved_photos(console, "voisine")
    assert copy.read_bytes() == picture.read_bytes()
    assert any("Jeanne, 84 ans" in text for text in console.transport.received["voisine"])
    ended = await console.type(":as operateur", ":prive", "/fin 1")
    assert "levée" in ended
    await console.until("informations sur la personne ont été retirées")

    async def gone() -> bool:
        return not copy.exists() and not officers_copy.exists()

    deadline = asyncio.get_running_loop().time() + 10
    while not await gone():
        assert asyncio.get_running_loop().time() < deadline, console.printed[-10:]
        await asyncio.sleep(0.02)
    assert any("[bot ✗ voisine]" in line and "fichier supprimé" in line
               for line in console.printed)
    assert console.app is not None
    assert await console.app.services.stores.photos.get(1) is None


async def test_photo_command_mistakes(console: Console, tmp_path: Path) -> None:
    assert "pas de fichier" in await console.type(":photo /nulle/part.jpg")
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("ceci n'est pas une photo")
    reply = await console.type(":as operateur", f":photo {not_a_photo}")
    assert "n'est pas une photo JPEG, PNG ou WebP" in reply
