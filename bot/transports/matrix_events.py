"""Matrix timeline events → what a person did, before any room or role is considered.

Pure functions on the raw event dictionaries (``event.source`` in matrix-nio), so
they can be tested without a homeserver. The transport adds the room's kind, the
numbered choices and the reactions' meaning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]

PRESENT = frozenset({"invite", "join"})
GONE = frozenset({"leave", "ban"})
# Reactions officers use on an approval request: approve (True) or reject (False).
REACTION_APPROVALS = {"✅": True, "❌": False}
VARIATION_SELECTOR = "\ufe0f"  # "✅️" and "✅" are the same key to a person
GEO_URI = re.compile(r"^geo:(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)")
# Message types a person sends that the bot cannot read, by the name the core expects.
UNSUPPORTED = {"m.image": "image", "m.file": "file", "m.audio": "audio", "m.video": "video"}


@dataclass(frozen=True, slots=True)
class Media:
    """An image in the homeserver's media repository, as a message names it."""

    url: str  # mxc://server/id
    mime_type: str
    size: int | None  # as the sender's client declared it
    filename: str


@dataclass(frozen=True, slots=True)
class Heard:
    """One event reduced to what matters to the bot; the transport makes it an Incoming."""

    sender: str
    text: str = ""
    location: tuple[float, float] | None = None
    unsupported: str | None = None
    reply_to: str | None = None  # event id this message answers (Matrix rich reply)
    reaction: tuple[str, str] | None = None  # (event id reacted to, normalised key)
    left: str | None = None  # user whose membership in the room just ended
    media: Media | None = None  # an image the transport may fetch (staff's only)


def content_of(event: JsonDict) -> JsonDict:
    content = event.get("content")
    return content if isinstance(content, dict) else {}


def relation(content: JsonDict) -> JsonDict:
    relates = content.get("m.relates_to")
    return relates if isinstance(relates, dict) else {}


def membership_of(event: JsonDict) -> str | None:
    value = content_of(event).get("membership")
    return value if isinstance(value, str) else None


def previous_membership(event: JsonDict) -> str:
    unsigned = event.get("unsigned")
    previous = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
    value = previous.get("membership") if isinstance(previous, dict) else None
    return value if isinstance(value, str) else "leave"


def first_fresh_index(events: Sequence[JsonDict], own_user_id: str) -> int:
    """Index of the first event that may count, in one room's timeline chunk.

    When the bot is invited to or joins a room, the homeserver hands it the room's
    history. Whatever happened before the bot was invited is history, never a
    command; what was said after the invitation (a person typing ``!start`` before
    the bot accepted) is addressed to the bot. A membership counts as a new arrival
    only when the previous one was not already invite or join (a display-name change
    is a join after a join).
    """
    start = 0
    for index, event in enumerate(events):
        if event.get("type") != "m.room.member" or event.get("state_key") != own_user_id:
            continue
        if membership_of(event) in PRESENT and previous_membership(event) not in PRESENT:
            start = index + 1
    return start


def heard_from(event: JsonDict, own_user_id: str) -> Heard | None:
    """What a person did in this event, or None when the bot should not react."""
    sender = event.get("sender")
    kind = event.get("type")
    if not isinstance(sender, str) or _redacted(event):
        return None
    if kind == "m.room.member":
        return _membership(event, sender, own_user_id)
    if sender == own_user_id:
        return None  # the bot's own messages, reactions and edits
    if kind == "m.room.message":
        return _message(content_of(event), sender)
    if kind == "m.room.encrypted":
        return Heard(sender, unsupported="encrypted")
    if kind == "m.sticker":
        return Heard(sender, unsupported="sticker")
    if kind == "m.reaction":
        return _reaction(content_of(event), sender)
    return None  # state changes, redactions, calls, polls…


def _redacted(event: JsonDict) -> bool:
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and "redacted_because" in unsigned


def _membership(event: JsonDict, sender: str, own_user_id: str) -> Heard | None:
    target = event.get("state_key")
    if not isinstance(target, str) or membership_of(event) not in GONE:
        return None
    if previous_membership(event) != "join":
        return None  # an invitation withdrawn or declined: nobody had been there
    if target == own_user_id and sender == own_user_id:
        return None  # the bot left by itself (declined, or cleaned up a dead DM)
    return Heard(sender, left=target)


def _message(content: JsonDict, sender: str) -> Heard | None:
    relates = relation(content)
    if relates.get("rel_type") == "m.replace":
        return None  # edits of a command never re-run it
    msgtype = content.get("msgtype")
    body = content.get("body")
    if msgtype == "m.notice":
        return None  # notices are what bots send: answering them invites loops
    if msgtype in ("m.text", "m.emote") and isinstance(body, str):
        reply_to = _reply_target(relates)
        text = strip_reply_fallback(body) if reply_to else body
        return Heard(sender, text=text, reply_to=reply_to)
    if msgtype in ("m.image", "m.file") and _image_type(content):
        return _image(content, sender, str(msgtype))
    if msgtype == "m.location":
        location = parse_geo_uri(content.get("geo_uri"))
        return Heard(sender, location=location) if location else Heard(
            sender, unsupported="location")
    return Heard(sender, unsupported=UNSUPPORTED.get(str(msgtype), str(msgtype or "unknown")))


def _image_type(content: JsonDict) -> str:
    info = content.get("info")
    mime = info.get("mimetype") if isinstance(info, dict) else None
    if isinstance(mime, str) and mime.startswith("image/"):
        return mime
    return "image/*" if content.get("msgtype") == "m.image" else ""


def _image(content: JsonDict, sender: str, msgtype: str) -> Heard:
    """An image: unreadable until the transport fetches it (for staff). A caption that is a
    command (Matrix 1.10: ``body`` is the caption when ``filename`` is given) is read as
    one, so that « !alerte … » under the picture files the alert with it."""
    url = content.get("url")
    unsupported = UNSUPPORTED[msgtype]
    if not isinstance(url, str) or not url.startswith("mxc://"):
        # An encrypted file (``file`` instead of ``url``), or nothing to fetch.
        return Heard(sender, unsupported="encrypted" if "file" in content else unsupported)
    body, filename = content.get("body"), content.get("filename")
    caption = body if isinstance(filename, str) and isinstance(body, str) and body != filename \
        else ""
    info = content.get("info")
    size = info.get("size") if isinstance(info, dict) else None
    name = filename if isinstance(filename, str) else body if isinstance(body, str) else "image"
    media = Media(url, _image_type(content), size if isinstance(size, int) else None, name)
    command = caption if caption.startswith(("!", "/")) else ""
    return Heard(sender, text=command, unsupported=unsupported, media=media)


def _reply_target(relates: JsonDict) -> str | None:
    reply = relates.get("m.in_reply_to")
    event_id = reply.get("event_id") if isinstance(reply, dict) else None
    return event_id if isinstance(event_id, str) else None


def _reaction(content: JsonDict, sender: str) -> Heard | None:
    relates = relation(content)
    target, key = relates.get("event_id"), relates.get("key")
    if relates.get("rel_type") != "m.annotation" or not isinstance(target, str) \
            or not isinstance(key, str):
        return None
    return Heard(sender, reaction=(target, key.replace(VARIATION_SELECTOR, "")))


def strip_reply_fallback(body: str) -> str:
    """Drop the quoted ``> <@user> …`` lines older clients put before a reply's text."""
    lines = body.split("\n")
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    if index and index < len(lines) and lines[index] == "":
        index += 1
    return "\n".join(lines[index:]) if index else body


def parse_geo_uri(value: object) -> tuple[float, float] | None:
    """``geo:47.62,6.15;u=35`` (RFC 5870) → (latitude, longitude)."""
    if not isinstance(value, str):
        return None
    match = GEO_URI.match(value.strip())
    if match is None:
        return None
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude


def reaction_approval(key: str) -> bool | None:
    """Whether a reaction key approves (✅) or rejects (❌) a request, if it is either."""
    return REACTION_APPROVALS.get(key)


def invite_details(invite_state: Sequence[Any], own_user_id: str) -> tuple[str, bool] | None:
    """(inviter, is_direct) from the stripped state of an invited room.

    matrix-nio hands these as ``InviteMemberEvent`` objects whose ``content`` is an
    attribute (nio removes it from ``source``).
    """
    for event in invite_state:
        content = getattr(event, "content", None)
        if getattr(event, "state_key", None) != own_user_id or not isinstance(content, dict):
            continue
        if content.get("membership") == "invite":
            return str(getattr(event, "sender", "")), content.get("is_direct") is True
    return None
