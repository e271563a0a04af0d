"""The console transport: one terminal where a person plays every role.

Type as the current identity; ``:as NAME`` switches identity, ``:officiers`` talks in
the officers' channel, ``:groupe NAME`` in a group chat, ``:prive`` back to the private
chat, ``:loc LAT,LON`` shares a location, ``:photo FILE [texte]`` sends a photo (the text
as its caption: ``:photo jeanne.jpg /alerte disparition …``), ``:quit`` stops. Choices are
numbered: type the number. A terminal shows no picture: files the bot sends are written
to ``files_dir`` and their path printed; a file deleted by the bot is deleted there too.
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from bot.domain import (
    Attachment,
    ChatKind,
    ChatRef,
    FileProblem,
    Identity,
    Incoming,
    Outgoing,
)
from bot.lanes import StaffTest, nobody
from bot.limits import PHOTO_BYTES
from bot.transports.base import (
    IncomingHandler,
    Transport,
    file_part,
    first_id,
    is_file_part,
    join_ids,
    split_ids,
    unmarked,
)
from bot.transports.numbered import NumberedChoices, render_choices

PLATFORM = "console"
GROUP_PREFIX = "groupe:"
HELP = ("Commandes de la console : :as NOM, :officiers [CANAL], :groupe NOM, :prive, "
        ":loc LAT,LON, :photo FICHIER [texte], :quit")


class ConsoleTransport(Transport):
    platform = PLATFORM

    def __init__(self, officers_channel: str = "#officiers", identity: str = "alice",
                 output: Callable[[str], None] = print,
                 files_dir: Path = Path("var/console-files"),
                 more_channels: Sequence[str] = ()) -> None:
        self.officers_channel = officers_channel
        # The organisations' officers' channels (bot/organisations.py): :officiers NAME
        self.more_channels = [c for c in more_channels if c != officers_channel]
        self.files_dir = files_dir
        self.identity = identity
        self.chat_id = identity
        self.output = output
        self.on_incoming: IncomingHandler | None = None
        self.choices = NumberedChoices()
        self.stopped = asyncio.Event()
        self._ids = itertools.count(1)
        # Event ids: this run's start and a sequence, so that no two runs share one.
        self._run = time.time_ns()
        self._events = itertools.count(1)
        self.received: dict[str, list[str]] = {}  # chat id → texts, for the scripted demo
        self.files: dict[str, Path] = {}  # message id → the file it wrote

    async def start(self, on_incoming: IncomingHandler, staff: StaffTest = nobody) -> None:
        self.on_incoming = on_incoming

    async def stop(self) -> None:
        self.stopped.set()

    @property
    def connected(self) -> bool:
        return self.on_incoming is not None and not self.stopped.is_set()

    async def send(self, chat_id: str, message: Outgoing) -> str:
        message_id = str(next(self._ids))
        self.received.setdefault(chat_id, []).append(message.text)
        first = self.choices.shown(chat_id, message.choices)
        self._print(f"[bot → {chat_id}] #{message_id}", message, first, message_id)
        if message.attachment is not None:  # its own part, as on the platforms
            return join_ids([file_part(message_id), message_id])
        return message_id

    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        self.choices.replaced(chat_id, message.choices)
        self._print(f"[bot ✎ {chat_id}] #{first_id(message_id)} modifié", message)

    async def delete(self, chat_id: str, message_id: str) -> None:
        for part in split_ids(message_id):
            number = unmarked(part)
            if not is_file_part(part):
                self.output(f"[bot ✗ {chat_id}] #{number} supprimé")
                continue
            saved = self.files.pop(number, None)
            if saved is not None:
                saved.unlink(missing_ok=True)
            self.output(f"[bot ✗ {chat_id}] #{number} fichier supprimé")

    def officers_channels(self) -> list[ChatRef]:
        return [ChatRef(PLATFORM, c) for c in (self.officers_channel, *self.more_channels)]

    def _print(self, header: str, message: Outgoing, first: int = 1,
               message_id: str = "") -> None:
        body = "\n".join("    " + line for line in message.text.splitlines())
        extra = "\n" + render_choices(message.choices, first) if message.choices else ""
        if message.attachment is not None:
            saved = self._save(message.attachment)
            self.files[message_id] = saved
            extra += f"\n    📎 {saved}"
        self.output(f"{header}\n{body}{extra}")

    def _save(self, attachment: Attachment) -> Path:
        """A terminal cannot show files: write them where the person can open them."""
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / f"{next(self._ids)}-{Path(attachment.filename).name}"
        path.write_bytes(attachment.data)
        return path

    async def feed(self, line: str) -> None:
        """Handle one typed line, exactly as if a person had sent it."""
        if line.startswith(":photo"):
            await self._photo(line.removeprefix(":photo").strip())
            return
        if line.startswith(":loc "):
            line = "📍" + line[5:].strip()
        elif line.startswith(":"):
            self._meta(line[1:].strip())
            return
        if self.on_incoming is None:
            raise RuntimeError("console transport not started")
        self.output(f"[{self.identity} → {self.chat_id}] {line}")
        await self.on_incoming(self._incoming(line))

    async def _photo(self, argument: str) -> None:
        """``:photo FILE [texte]``: the file as a person's photo, the text its caption."""
        name, _, caption = argument.partition(" ")
        path = Path(name).expanduser()
        if not name or not path.is_file():
            self.output(f"— pas de fichier « {name} » (:photo FICHIER [texte])")
            return
        if self.on_incoming is None:
            raise RuntimeError("console transport not started")
        with path.open("rb") as file:
            data = file.read(PHOTO_BYTES + 1)  # the bot takes no more: nothing beyond is read
        self.output(f"[{self.identity} → {self.chat_id}] 📷 {path.name} {caption}".rstrip())
        incoming = self._incoming(caption.strip())
        if len(data) > PHOTO_BYTES:
            incoming = replace(incoming, file_problem=FileProblem.TOO_LARGE)
        else:
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            incoming = replace(incoming, attachment=Attachment(path.name, mime, data))
        await self.on_incoming(incoming)

    def _incoming(self, line: str) -> Incoming:
        choice = self.choices.pick(self.chat_id, line)
        location = None
        if line.startswith("📍"):
            location = _coordinates(line[1:])
        return Incoming(
            sender=Identity(PLATFORM, self.identity), chat=ChatRef(PLATFORM, self.chat_id),
            chat_kind=self._chat_kind(), text="" if choice or location else line,
            choice=choice, location=location, chat_title=self.chat_id,
            event_id=f"{self._run}.{next(self._events)}")

    def _chat_kind(self) -> ChatKind:
        if self.chat_id == self.officers_channel or self.chat_id in self.more_channels:
            return ChatKind.OFFICERS
        if self.chat_id.startswith(GROUP_PREFIX):
            return ChatKind.GROUP
        return ChatKind.PRIVATE

    def _meta(self, command: str) -> None:
        verb, _, argument = command.partition(" ")
        argument = argument.strip()
        if verb == "as" and argument:
            self.identity = self.chat_id = argument
        elif verb in ("officiers", "officers"):
            channels = [self.officers_channel, *self.more_channels]
            named = [c for c in channels if argument and argument.lstrip("#") == c.lstrip("#")]
            self.chat_id = named[0] if named else self.officers_channel
        elif verb == "groupe" and argument:
            self.chat_id = GROUP_PREFIX + argument
        elif verb == "prive":
            self.chat_id = self.identity
        elif verb == "quit":
            self.stopped.set()
            return
        else:
            self.output(HELP)
            return
        self.output(f"— vous êtes {self.identity}, dans {self.chat_id}")

    async def interact(self) -> None:
        """Read lines from the terminal until ``:quit`` or end of input."""
        self.output(HELP)
        loop = asyncio.get_running_loop()
        while not self.stopped.is_set():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if line.strip():
                await self.feed(line.rstrip("\n"))


def _coordinates(text: str) -> tuple[float, float] | None:
    lat, _, lon = text.partition(",")
    try:
        return float(lat), float(lon)
    except ValueError:
        return None
