"""The one interface every chat platform implements, and the errors it may raise.

The core and the broadcast engine only know this module; platform errors are
translated into these exceptions at the edge, by each transport.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.domain import ChatRef, CommandMenu, Incoming, Outgoing
from bot.lanes import StaffTest, nobody

IncomingHandler = Callable[[Incoming], Awaitable[None]]


class DeliveryError(Exception):
    """Base class of the typed failures of ``Transport.send``."""


class RateLimited(DeliveryError):
    """The platform asked us to wait. ``chat_only`` is True when only that chat is limited."""

    def __init__(self, retry_after: float, chat_only: bool = False) -> None:
        super().__init__(f"rate limited, retry after {retry_after:g} s")
        self.retry_after = retry_after
        self.chat_only = chat_only


class RecipientGone(DeliveryError):
    """The recipient blocked the bot, left, or no longer exists: never retry."""


class Unreachable(RecipientGone):
    """The platform cannot deliver to this person (WhatsApp 131026: not on WhatsApp, an
    old app, the terms not accepted): never retried, like a block; the transport marks
    them unreachable until they write again."""


class ChatMoved(DeliveryError):
    """The chat has a new id (Telegram group upgraded to a supergroup)."""

    def __init__(self, new_chat_id: str) -> None:
        super().__init__(f"chat moved to {new_chat_id}")
        self.new_chat_id = new_chat_id


class TransientError(DeliveryError):
    """Network trouble or a server error: retry later."""


class PermanentError(DeliveryError):
    """The platform refused this message for good (bad request)."""


FILE_MARK = "file:"  # a part of a copy that is a file (a photo), not text


def join_ids(ids: Sequence[str]) -> str:
    """One message id for a copy made of several platform messages, so that the outbox
    keeps all of them and an edit, a recall or a redaction reaches every part after any
    restart. Platform ids hold no spaces (Telegram: numbers; Matrix: ``$…``). A part that
    is a file is marked (``file_part``): an edit leaves it alone, and a protected alert's
    end deletes it."""
    return " ".join(ids)


def split_ids(message_id: str) -> list[str]:
    return message_id.split()


def file_part(platform_id: str) -> str:
    """The part of a copy that is its file (a photo): ``file:<platform id>``."""
    return FILE_MARK + platform_id


def is_file_part(part: str) -> bool:
    return part.startswith(FILE_MARK)


def unmarked(part: str) -> str:
    """The platform's own id of a part."""
    return part.removeprefix(FILE_MARK)


def file_parts(message_id: str) -> list[str]:
    return [part for part in split_ids(message_id) if is_file_part(part)]


def text_parts(message_id: str) -> list[str]:
    return [part for part in split_ids(message_id) if not is_file_part(part)]


def first_id(message_id: str | None) -> str | None:
    """The part a reply quotes, or an edit changes: the first part of text (a copy's file
    comes before its text), else the file itself; the platform's id, unmarked."""
    ids = split_ids(message_id) if message_id else []
    texts = [part for part in ids if not is_file_part(part)]
    return unmarked((texts or ids)[0]) if ids else None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do to a message once sent. Where it cannot edit or delete
    (WhatsApp), the dispatcher sends a follow-up quoting the original instead
    (``Outgoing.reply_to``), and the report says so."""

    edit: bool = True
    delete: bool = True


@dataclass(frozen=True, slots=True)
class StartLink:
    """How a person on one platform opens the bot with a start code (an invitation):
    a link that carries the code (Telegram's deep link) and/or the line to send the bot
    (Matrix: Element intercepts a leading ``/``, so people type ``!start <code>``)."""

    platform: str
    url: str | None  # opens the bot (with the code when the platform carries one)
    send: str | None  # what to send the bot once there; None when the link does it all


class Transport(ABC):
    platform: str
    capabilities = Capabilities()

    @abstractmethod
    async def start(self, on_incoming: IncomingHandler, staff: StaffTest = nobody) -> None:
        """Begin receiving; every event becomes an ``Incoming`` passed to the handler.
        ``staff`` says which events go first (``bot.lanes``): a transport that receives
        several at once hands them to the handler concurrently across chats, in order
        within each chat, staff's before the public's."""

    @abstractmethod
    async def stop(self) -> None: ...

    @property
    @abstractmethod
    def connected(self) -> bool:
        """Whether the transport works now: started, not stopped, and its link up as far as
        it already knows. Read by every health probe, so no network call."""

    @abstractmethod
    async def send(self, chat_id: str, message: Outgoing) -> str:
        """Deliver one message; return its id (``join_ids`` of every platform message it
        took: the parts of a long text, a photo and its text). The core stores it as is
        and hands it back to ``edit``, ``delete`` and ``Outgoing.reply_to``.

        With an attachment, the file goes first and the text after it (or as its caption
        where it fits); its part is marked ``file_part``. A file with a ``digest`` (an
        alert's photo) is uploaded once and the platform's reference reused for every
        other recipient (bot/transports/uploads.py)."""

    @abstractmethod
    async def edit(self, chat_id: str, message_id: str, message: Outgoing) -> None:
        """Replace the text of the message (and its choices). Its file parts stay as they
        are, except a file that carries the text as its caption, whose caption is
        edited."""

    async def delete(self, chat_id: str, message_id: str) -> None:
        """Remove a delivered message (recall), every part of it, or only the parts
        named (``file_parts``: a protected alert's photo). Platforms that cannot say so."""
        raise PermanentError(f"{self.platform}: deleting messages is not supported")

    @abstractmethod
    def officers_channels(self) -> list[ChatRef]:
        """Where approval requests are posted on this platform (may be empty)."""

    def start_link(self, code: str) -> StartLink | None:
        """How people reach the bot with ``code`` on this platform; None until the
        transport knows its own address (Telegram learns its username at start)."""
        return StartLink(self.platform, None, f"/start {code}")

    async def publish_commands(self, menus: list[CommandMenu]) -> None:  # noqa: B027
        """Show each audience its commands, where the platform has a command menu.
        Optional: platforms without menus (console, Matrix) keep this no-op."""
