"""Platform-neutral messages exchanged between the transports and the core."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import Enum

from bot.enums import DeferredKind

# Roles are bound to what the platform itself says about the sender, never to a name the
# person chose: a Telegram @username or a Matrix display name can be taken by anyone.
PLATFORM_ID = re.compile(
    r"telegram:[1-9][0-9]{0,19}"  # the numeric user id (positive; groups are negative)
    # Matrix user id grammar: @localpart:server_name (historical localparts: any printable
    # ASCII but ':'), server a DNS name or [IPv6] literal with an optional port; 255 max.
    r"|matrix:(?=.{1,255}\Z)@[\x21-\x39\x3b-\x7e]+"
    r":(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]{1,5})?"
    r"|console:[^\s:]+")
PLATFORM_ID_EXAMPLES = "telegram:123456789, matrix:@alice:example.org, console:alice"


def is_platform_id(text: str) -> bool:
    """Whether ``text`` names a person by a platform user id (the only way roles are given)."""
    return PLATFORM_ID.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Identity:
    """A person on one platform, bound to the platform's stable user id."""

    platform: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> Identity:
        platform, _, user_id = text.partition(":")
        if not platform or not user_id:
            raise ValueError(f"not PLATFORM:ID: {text!r}")
        return cls(platform, user_id)


@dataclass(frozen=True, slots=True)
class ChatRef:
    platform: str
    chat_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.chat_id}"


class ChatKind(Enum):
    PRIVATE = "private"
    GROUP = "group"
    OFFICERS = "officers"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message: a map (image/png), an alert's photo, a data export, a
    CAP document."""

    filename: str
    mime_type: str
    data: bytes
    # The SHA-256 of ``data`` when known (an alert's photo): transports upload a file once
    # under this key and reuse the platform's reference for every other recipient.
    digest: str = ""

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")


class FileProblem(Enum):
    """Why the file a person sent did not come with their message (``Incoming``)."""

    TOO_LARGE = "too_large"  # larger than the bot takes (bot.limits.PHOTO_BYTES)
    UNREADABLE = "unreadable"  # the platform would not give it


@dataclass(frozen=True, slots=True)
class Deferred:
    """A file built after commit, outside the event's lock (bot/deferred.py): a map, a CAP
    document, a data export. What to build (``recipe``, JSON of the data read in the
    event's transaction), never bytes; the reply sender builds it in a worker thread and
    sends the message with it as its attachment. An alert's photo is read from the
    database instead (recipe: its alert id), so that its bytes are stored once."""

    kind: DeferredKind
    filename: str
    mime_type: str
    recipe: str  # JSON; with the kind, all the building needs (no database read later)


@dataclass(frozen=True, slots=True)
class Incoming:
    """Something a person did: typed text, pressed a choice, or shared a location."""

    sender: Identity
    chat: ChatRef
    chat_kind: ChatKind
    text: str = ""
    choice: str | None = None
    location: tuple[float, float] | None = None
    chat_title: str = ""
    attachment: Attachment | None = None  # a file the person sent (a CAP document, a photo)
    file_problem: FileProblem | None = None  # a file they sent that the transport could not take
    unsupported: str | None = None  # e.g. "sticker", "encrypted": content the bot cannot read
    # Platform events about the chat itself rather than a message in it:
    membership: str | None = None  # "left" (blocked, kicked, left the room) or "joined"
    moved_to: str | None = None  # the chat's new id (Telegram group → supergroup)
    # The platform's id of the event (Telegram update_id, Matrix event_id, a console
    # sequence): the core handles each id once (inbox), however often it is delivered.
    event_id: str | None = None
    # What the platform calls the sender (Telegram first and last name, Matrix display
    # name): a label for staff to read each other by (bot/people.py), never used for a
    # role — anyone can take any display name.
    sender_name: str = ""

    @property
    def about_chat(self) -> bool:
        """A platform event about the chat (left, joined, moved), not a person typing."""
        return self.membership is not None or self.moved_to is not None


_SURROGATE = re.compile("[\ud800-\udfff]")


def repaired_text(text: str) -> tuple[str, int]:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD, and how many were.

    JSON may carry "\\ud800" alone, and platforms pass it on; such a string cannot be
    encoded as UTF-8, so SQLite (and every platform) would refuse it. A pair split in
    two code units is joined back into its character rather than replaced.
    """
    if _SURROGATE.search(text) is None:
        return text, 0
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined, joined.count("\ufffd") - text.count("\ufffd")


def repaired(incoming: Incoming) -> tuple[Incoming, int]:
    """``incoming`` with text the bot can store; the count is for what the person typed."""
    text, count = repaired_text(incoming.text)
    title = repaired_text(incoming.chat_title)[0]
    sender_name = repaired_text(incoming.sender_name)[0]
    choice = None if incoming.choice is None else repaired_text(incoming.choice)[0]
    attachment = incoming.attachment
    if attachment is not None:
        attachment = dataclasses.replace(attachment,
                                         filename=repaired_text(attachment.filename)[0])
    cleaned = dataclasses.replace(incoming, text=text, chat_title=title, choice=choice,
                                  attachment=attachment, sender_name=sender_name)
    return (incoming, 0) if cleaned == incoming else (cleaned, count)


class Tone(Enum):
    """How loudly a message should arrive; transports map it to their features."""

    NORMAL = "normal"
    QUIET = "quiet"  # prevention: no notification sound
    PROTECTED = "protected"  # missing persons: no forwarding or saving


@dataclass(frozen=True, slots=True)
class CommandMenu:
    """Commands one audience should see in the platform's menu.

    ``audience`` is "everyone", "officers" (the officers' channels), or an identity
    written PLATFORM:ID for people with a role.
    """

    audience: str
    commands: tuple[tuple[str, str], ...]  # (name, one-line description)


@dataclass(frozen=True, slots=True)
class Choice:
    label: str
    data: str  # opaque to transports; at most 64 bytes (Telegram callback_data)


@dataclass(frozen=True, slots=True)
class Summary:
    """An alert's copy in three plain fields, for a platform that may only send a
    pre-approved template to someone who has not written lately (WhatsApp outside its
    24-hour window): the template's parameters (docs/whatsapp.md)."""

    headline: str  # « 🚨 Cambriolage », « ✅ Fin d'alerte — Cambriolage »
    place: str  # the perimeter in words
    text: str  # facts, the text, the footer


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message in two renderings: plain text, and HTML with user text escaped.

    With an attachment, transports send the file with the text as its caption (or the
    text first when it is longer than the platform's caption limit).
    """

    text: str
    html: str | None = None
    choices: tuple[Choice, ...] = ()
    tone: Tone = Tone.NORMAL
    reply_to: str | None = None
    attachment: Attachment | None = None
    deferred: Deferred | None = None  # an attachment still to draw; never seen by transports
    # Sent instead, as text alone, when the platform refuses the file for good (a data
    # export): the person asked for it and must not be left in silence.
    if_file_fails: str | None = None
    # An alert's copy (or its follow-up) as template parameters; None for everything else
    # (answers and prompts, which only go to someone who just wrote).
    summary: Summary | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """Send to the chat the command came from."""

    message: Outgoing


@dataclass(frozen=True, slots=True)
class Notify:
    """Send to a given chat (e.g. the requester of an alert)."""

    chat: ChatRef
    message: Outgoing


@dataclass(frozen=True, slots=True)
class ToOfficers:
    """Send to the officers' channels; ``track`` remembers the posts to edit later.
    ``organisation``: those of that organisation (with the buttons) and of its overseers
    (read-only unless they decide in their channel, bot/organisations.py); None: every
    officers' channel."""

    message: Outgoing
    track: tuple[str, int] | None = None  # (purpose, alert id)
    organisation: str | None = None


@dataclass(frozen=True, slots=True)
class EditTracked:
    """Replace every tracked post of (purpose, alert id) in the officers' channels; in
    ``readonly`` chats (an overseer's, filled in when the row is written from
    ``organisation``) without the buttons."""

    purpose: str
    alert_id: int
    message: Outgoing
    organisation: str | None = None
    readonly: tuple[ChatRef, ...] = ()


@dataclass(frozen=True, slots=True)
class DeleteTracked:
    """Delete every tracked post of (purpose, alert id) in the officers' channels."""

    purpose: str
    alert_id: int


Effect = Reply | Notify | ToOfficers | EditTracked | DeleteTracked


@dataclass(frozen=True, slots=True)
class Effects:
    """What a handler wants done, as a value it returns: the core writes it into the reply
    outbox in the event's transaction (nothing is sent while the handler runs). Combined
    with ``+``; ``NO_EFFECTS`` is the empty one."""

    items: tuple[Effect, ...] = ()
    wake_dispatcher: bool = False  # the change started a broadcast: send its rows now

    @classmethod
    def of(cls, *items: Effect, wake_dispatcher: bool = False) -> Effects:
        return cls(items, wake_dispatcher)

    def __add__(self, other: Effects) -> Effects:
        return Effects(self.items + other.items, self.wake_dispatcher or other.wake_dispatcher)

    def replies(self) -> tuple[Reply, ...]:
        """What goes back to the chat the event came from."""
        return tuple(effect for effect in self.items if isinstance(effect, Reply))


NO_EFFECTS = Effects()
WAKE_DISPATCHER = Effects(wake_dispatcher=True)
