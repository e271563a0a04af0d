"""Golden copies: what a subscriber receives, for each kind of perimeter, on each platform.

Each case files a real alert (``/alerte`` by an operator, approval by an officer, delivery
by the dispatcher, on memory transports) and takes the copy the subscriber received; then
each transport's own code formats it, exactly as it would be sent:

* Telegram: ``TelegramTransport.send`` (or ``edit``) against the Bot API double, which parses
  the HTML as Telegram does: the file shows the request (text sent, parse mode, flags,
  buttons) and what Telegram shows (plain text and its bold/italic entities);
* Matrix: the ``m.room.message`` content(s) ``message_contents`` (or ``edit_content``) builds;
* console: what ``ConsoleTransport`` prints.

Each is compared exactly with ``tests/golden/copy/<case>.<platform>.txt``. The copy itself is
decided by bot/alert_copy.py (and bot/place.py for the place); a change there shows here as
a diff of every platform at once.

To regenerate the files after a deliberate change, then read the diff before committing::

    GOLDEN_UPDATE=1 .venv/bin/python -m pytest -p no:cacheprovider tests/test_copy_golden.py
    git diff tests/golden
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bot.config import TelegramConfig
from bot.domain import Outgoing
from bot.transports.console import ConsoleTransport
from bot.transports.matrix_render import edit_content, message_contents
from bot.transports.telegram import TelegramTransport
from tests.harness import OFFICERS, TestBot, test_config
from tests.telegram_double import RateLimits, TelegramDouble

GOLDEN = Path(__file__).resolve().parent / "golden" / "copy"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
PLATFORMS = ("telegram", "matrix", "console")

OPERATOR, OFFICER, OFFICER2 = "telegram:100", "telegram:200", "telegram:201"
SUBSCRIBER = "telegram:1"
TEXT = "Deux individus en fourgon blanc, plaque partielle AB-12. Ne pas intervenir : 17."
# A square drawn around Gray, as an operator's map tool would send it.
ZONE = json.dumps({"type": "Polygon", "coordinates": [[
    [5.56, 47.415], [5.62, 47.415], [5.62, 47.475], [5.56, 47.475], [5.56, 47.415]]]})
NOIDANS = "47.6135,6.1299"  # inside Noidans-lès-Vesoul
SIGNATURE = "Gendarmerie de la Haute-Saône"  # the configuration's (signature:)


@dataclass(frozen=True)
class Case:
    """``commands``: what the operator types after the alert (a follow-up); ``take``: the
    subscriber's copy to format (``"last"`` sent, or ``"edited"``: the alert's copy as
    edited at its end)."""

    alert: str
    follow_up: str = ""
    take: str = "last"
    approvals: tuple[str, ...] = (OFFICER,)


CASES = {
    "commune": Case(f"/alerte cambriolage Vesoul pour commercant depuis 13:35 : {TEXT}"),
    "communes": Case("/alerte cambriolage Vesoul, Noidans-lès-Vesoul, Gray pour commercant"
                     f" depuis 13:35 : {TEXT}"),
    "commune_radius": Case(f"/alerte cambriolage Vesoul+5km pour commercant depuis 13:35 : {TEXT}"),
    "point_radius": Case(f"/alerte vol {NOIDANS}+2km pour commercant depuis 13:35 : {TEXT}"),
    "polygon": Case(f"/alerte vol {ZONE} pour commercant depuis 13:35 : {TEXT}"),
    "departement": Case(f"/alerte escroquerie dep:70 pour commercant : {TEXT}"),
    "postal_code": Case(f"/alerte vol 70000 pour commercant depuis 13:35 : {TEXT}"),
    "prevention": Case("/alerte prevention Vesoul+5km pour commercant : Fermez vos portails "
                       "et notez les plaques des véhicules inconnus."),
    "missing_person": Case("/alerte disparition Vesoul+10km depuis 12:40 : Homme de 82 ans, "
                           "1,70 m, manteau bleu, désorienté.",
                           approvals=(f"{OFFICER} parquet PR-70-2026/118", OFFICER2)),
    "update": Case(f"/alerte cambriolage Vesoul+5km pour commercant depuis 13:35 : {TEXT}",
                   follow_up="/suite 1 : Le fourgon a été vu à Gray, direction Dijon."),
    "all_clear": Case(f"/alerte cambriolage Vesoul+5km pour commercant depuis 13:35 : {TEXT}",
                      follow_up="/fin 1"),
    "ended_copy": Case(f"/alerte cambriolage Vesoul+5km pour commercant depuis 13:35 : {TEXT}",
                       follow_up="/fin 1", take="edited"),
}

_copies: dict[str, tuple[Outgoing, bool]] = {}  # case → (copy, is an edit): one bot per case


async def copy_of(name: str, tmp_path: Path) -> tuple[Outgoing, bool]:
    if name not in _copies:
        _copies[name] = await _deliver(CASES[name], tmp_path)
    return _copies[name]


async def _deliver(case: Case, tmp_path: Path) -> tuple[Outgoing, bool]:
    config = test_config(tmp_path / "golden.sqlite3", signature=SIGNATURE)
    bot = await TestBot(config).start()
    try:
        await bot.enroll(SUBSCRIBER, "commercant", "Vesoul, Noidans-lès-Vesoul, Gray")
        posts = bot.transports["telegram"].posted[SUBSCRIBER.partition(":")[2]]
        enrolled = len(posts)  # what came next is the alert's copy, then its follow-ups
        preview = await bot.say(OPERATOR, case.alert)
        assert "aperçu" in preview, preview
        for approval in case.approvals:
            who, _, extra = approval.partition(" ")
            await bot.say(who, f"/valider 1 {extra}".strip(), chat=OFFICERS)
        await bot.drain()
        if case.follow_up:
            await bot.say(OPERATOR, case.follow_up)
            if case.follow_up.startswith("/suite"):
                await bot.say(OFFICER, "/valider 2", chat=OFFICERS)
            await bot.drain()
        if case.take == "edited":
            return posts[enrolled].current, True
        return posts[-1].message, False
    finally:
        await bot.stop()


# -- each platform's formatting ---------------------------------------------------------


async def telegram_view(message: Outgoing, edit: bool) -> str:
    limits = RateLimits(private_burst=1_000, global_burst=1_000, group_burst=1_000)
    async with TelegramDouble("123456:golden", "alerte_test_bot", limits=limits) as double:
        double.user(1, "Alice")
        transport = TelegramTransport(TelegramConfig(
            enabled=True, token="123456:golden", base_url=double.base_url,
            base_file_url=double.base_file_url, poll_timeout=1))

        async def ignore(_: object) -> None:
            return None

        await transport.start(ignore)
        try:
            threaded = message.reply_to is not None or edit
            if threaded:  # the alert's own copy, that the follow-up answers or edits
                first = await transport.send("1", Outgoing("(copie de l'alerte)"))
            if edit:
                await transport.edit("1", first, message)
                record = double.messages(1)[0]
            else:
                sent = replace(message, reply_to=first if threaded else None)
                await transport.send("1", sent)
                record = double.messages(1)[-1]
        finally:
            await transport.stop()
    return _telegram_record(record, edit)


def _telegram_record(record: dict[str, object], edit: bool) -> str:
    keyboard = record["reply_markup"] or {"inline_keyboard": []}
    assert isinstance(keyboard, dict)
    rows = [" ".join(f"[{b['text']}]" for b in row) for row in keyboard["inline_keyboard"]]
    text = str(record["text"])
    entities = record["entities"] or []
    assert isinstance(entities, list)
    head = ["editMessageText (the alert's copy)", f"parse_mode: {record['parse_mode']}"] \
        if edit else [
        "sendMessage", f"parse_mode: {record['parse_mode']}",
        f"protect_content: {record['protect_content']}",
        f"disable_notification: {record['disable_notification']}",
        f"reply_to: {'the alert' if record['reply_to_message_id'] else '-'}"]
    lines = [
        *head,
        "--- text sent", str(record["raw_text"]),
        "--- as Telegram shows it", text,
        "--- entities", *[f"{e['type']}: " + json.dumps(
            _utf16(text, e["offset"], e["length"]), ensure_ascii=False) for e in entities],
        "--- buttons", *(rows or ["-"]),
    ]
    return "\n".join(lines) + "\n"


def _utf16(text: str, offset: int, length: int) -> str:
    """The part of ``text`` an entity covers (Telegram counts in UTF-16 code units)."""
    units = text.encode("utf-16-le")
    return units[offset * 2:(offset + length) * 2].decode("utf-16-le")


def matrix_view(message: Outgoing, edit: bool) -> str:
    # A fixed event id stands for the alert's own copy (a follow-up answers it, an end
    # edits it): Synapse's ids change with every run.
    threaded = replace(message, reply_to="$alert-copy" if message.reply_to else None)
    contents = [edit_content("$alert-copy", message)] if edit else message_contents(threaded)
    return json.dumps(contents, ensure_ascii=False, indent=2) + "\n"


async def console_view(message: Outgoing, edit: bool) -> str:
    printed: list[str] = []
    console = ConsoleTransport(output=printed.append)
    if edit:
        await console.edit("alice", "1", message)
    else:
        await console.send("alice", message)
    return "\n".join(printed) + "\n"


async def view(platform: str, message: Outgoing, edit: bool) -> str:
    if platform == "telegram":
        return await telegram_view(message, edit)
    if platform == "matrix":
        return matrix_view(message, edit)
    return await console_view(message, edit)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("case", CASES)
async def test_copy_matches_its_golden_file(case: str, platform: str, tmp_path: Path) -> None:
    message, edit = await copy_of(case, tmp_path)
    rendered = await view(platform, message, edit)
    path = GOLDEN / f"{case}.{platform}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.is_file(), f"{path} missing: GOLDEN_UPDATE=1 writes it (module docstring)"
    assert rendered == path.read_text(encoding="utf-8")


def test_every_golden_file_belongs_to_a_case() -> None:
    """A case renamed or removed leaves no stale file behind."""
    expected = {f"{case}.{platform}.txt" for case in CASES for platform in PLATFORMS}
    assert {path.name for path in GOLDEN.glob("*.txt")} == expected
