"""The Matrix transport's pure parts: rendering, size limits, event reading, errors."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import nio

from bot.config import MatrixConfig
from bot.domain import ChatKind, Choice, Outgoing, Tone
from bot.storage.transport_state import TransportState
from bot.transports.base import PermanentError, RateLimited, RecipientGone, TransientError
from bot.transports.matrix import MatrixTransport, numbered_pick
from bot.transports.matrix_errors import delivery_error
from bot.transports.matrix_events import (
    first_fresh_index,
    heard_from,
    invite_details,
    parse_geo_uri,
    strip_reply_fallback,
)
from bot.transports.matrix_render import (
    CONTENT_BUDGET,
    edit_content,
    json_size,
    message_contents,
    to_matrix_html,
)
from bot.transports.matrix_rooms import RoomDirectory

BOT = "@bot:test"
CHOICES = (Choice("✅ Valider", "ap:7:ok"), Choice("❌ Refuser", "ap:7:no"))


def member(target: str, membership: str, sender: str,
           previous: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "m.room.member", "state_key": target, "sender": sender,
                             "content": {"membership": membership}}
    if previous is not None:
        event["unsigned"] = {"prev_content": {"membership": previous}}
    return event


def text(body: str, sender: str = "@a:test", **content: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "sender": sender,
            "content": {"msgtype": "m.text", "body": body, **content}}


def relating(body: str, relation: dict[str, Any]) -> dict[str, Any]:
    event = text(body)
    event["content"]["m.relates_to"] = relation
    return event


# -- rendering -----------------------------------------------------------------------


def test_text_html_tone_reply_and_numbered_choices() -> None:
    message = Outgoing("Ligne 1\nLigne <2>", "<b>Ligne 1</b>\nLigne &lt;2&gt;", CHOICES,
                       Tone.QUIET, reply_to="$orig")
    (content,) = message_contents(message)
    assert content["msgtype"] == "m.notice"
    assert content["body"] == "Ligne 1\nLigne <2>\n\n  1. ✅ Valider\n  2. ❌ Refuser"
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == ("<b>Ligne 1</b><br>Ligne &lt;2&gt;"
                                         "<ol><li>✅ Valider</li><li>❌ Refuser</li></ol>")
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$orig"}}
    assert "m.mentions" not in content  # nothing in it could ping anybody


def test_a_quoted_user_id_or_room_mention_pings_nobody() -> None:
    for text in ("Demande de matrix:@op:example.org", "Réunion @room à 9 h"):
        (content,) = message_contents(Outgoing(text))
        assert content["m.mentions"] == {}
        edit = edit_content("$e", Outgoing(text))
        assert edit["m.mentions"] == {} and edit["m.new_content"]["m.mentions"] == {}
    assert "m.mentions" not in edit_content("$e", Outgoing("LEVÉE"))


def test_plain_text_is_escaped_for_html_and_pre_keeps_newlines() -> None:
    (content,) = message_contents(Outgoing("a < b & c\nd"))
    assert content["msgtype"] == "m.text"
    assert content["formatted_body"] == "a &lt; b &amp; c<br>d"
    assert to_matrix_html("x\n<pre>1\n2</pre>\ny") == "x<br><pre>1\n2</pre><br>y"


def test_a_message_too_big_for_one_event_is_split_at_line_ends() -> None:
    lines = [f"{i:05d} " + "é" * 90 for i in range(1500)]  # ~280 KB of UTF-8
    contents = message_contents(Outgoing("\n".join(lines), reply_to="$r"))
    assert len(contents) > 4
    assert all(json_size(c) <= CONTENT_BUDGET for c in contents)
    assert "\n".join(c["body"] for c in contents) == "\n".join(lines)
    assert contents[0]["m.relates_to"] == {"m.in_reply_to": {"event_id": "$r"}}
    assert all("m.relates_to" not in c for c in contents[1:])


def test_a_single_huge_line_is_cut_too() -> None:
    contents = message_contents(Outgoing("x" * 200_000))
    assert all(json_size(c) <= CONTENT_BUDGET for c in contents)
    assert "".join(c["body"] for c in contents) == "x" * 200_000


def test_edit_replaces_and_truncates_what_does_not_fit() -> None:
    content = edit_content("$req", Outgoing("Validée", "<b>Validée</b>"))
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$req"}
    assert content["m.new_content"]["body"] == "Validée"
    assert content["m.new_content"]["formatted_body"] == "<b>Validée</b>"
    assert content["body"] == "* Validée"
    huge = edit_content("$req", Outgoing("y" * 100_000))
    assert json_size(huge) <= CONTENT_BUDGET
    assert huge["m.new_content"]["body"].endswith("[…]")


# -- reading events ------------------------------------------------------------------


def test_messages_commands_locations_and_unreadable_content() -> None:
    assert heard_from(text("!aide"), BOT).text == "!aide"  # type: ignore[union-attr]
    assert heard_from(text("!aide", sender=BOT), BOT) is None
    image = text("photo.jpg", msgtype="m.image")
    assert heard_from(image, BOT).unsupported == "image"  # type: ignore[union-attr]
    location = text("ici", msgtype="m.location", geo_uri="geo:47.62,6.15;u=20")
    assert heard_from(location, BOT).location == (47.62, 6.15)  # type: ignore[union-attr]
    encrypted = {"type": "m.room.encrypted", "sender": "@a:test", "content": {}}
    assert heard_from(encrypted, BOT).unsupported == "encrypted"  # type: ignore[union-attr]
    assert heard_from(text("bip", msgtype="m.notice"), BOT) is None


def test_edits_redactions_and_other_events_are_ignored() -> None:
    edit = relating("* !valider 1", {"rel_type": "m.replace", "event_id": "$x"})
    assert heard_from(edit, BOT) is None
    redacted = {**text("!aide"), "unsigned": {"redacted_because": {}}}
    assert heard_from(redacted, BOT) is None
    assert heard_from({"type": "m.room.topic", "sender": "@a:test", "content": {}}, BOT) is None


def test_reply_fallback_is_stripped_only_from_replies() -> None:
    reply = relating("> <@bot:test> Demande n°3\n> suite\n\n1",
                     {"m.in_reply_to": {"event_id": "$req"}})
    heard = heard_from(reply, BOT)
    assert heard is not None and heard.text == "1" and heard.reply_to == "$req"
    assert heard_from(text("> citation"), BOT).text == "> citation"  # type: ignore[union-attr]
    assert strip_reply_fallback("pas de citation") == "pas de citation"


def test_reactions_are_normalised() -> None:
    reaction = {"type": "m.reaction", "sender": "@o:test", "content": {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": "$req", "key": "✅\ufe0f"}}}
    assert heard_from(reaction, BOT).reaction == ("$req", "✅")  # type: ignore[union-attr]


def test_leaves_kicks_and_own_departures() -> None:
    kicked = member(BOT, "leave", "@admin:test", previous="join")
    assert heard_from(kicked, BOT).left == BOT  # type: ignore[union-attr]
    partner_left = member("@a:test", "leave", "@a:test", previous="join")
    assert heard_from(partner_left, BOT).left == "@a:test"  # type: ignore[union-attr]
    assert heard_from(member(BOT, "leave", BOT, previous="join"), BOT) is None
    assert heard_from(member(BOT, "leave", "@a:test", previous="invite"), BOT) is None
    assert heard_from(member("@a:test", "join", "@a:test"), BOT) is None


def test_history_before_the_bot_was_invited_never_counts() -> None:
    events = [text("!alerte vieille"), member(BOT, "invite", "@a:test"), text("!start"),
              member(BOT, "join", BOT, previous="invite"), text("!aide")]
    assert first_fresh_index(events, BOT) == 2
    joined_without_invite = [text("!vieux"), member(BOT, "join", BOT), text("!aide")]
    assert first_fresh_index(joined_without_invite, BOT) == 2
    profile_change = [text("!aide"), member(BOT, "join", BOT, previous="join")]
    assert first_fresh_index(profile_change, BOT) == 0


def test_invite_details_read_the_bots_membership() -> None:
    state = [SimpleNamespace(state_key="@a:test", sender="@a:test",
                             content={"membership": "join"}),
             SimpleNamespace(state_key=BOT, sender="@a:test",
                             content={"membership": "invite", "is_direct": True})]
    assert invite_details(state, BOT) == ("@a:test", True)
    state[1].content = {"membership": "invite"}
    assert invite_details(state, BOT) == ("@a:test", False)
    assert invite_details(state[:1], BOT) is None


def test_geo_uri() -> None:
    assert parse_geo_uri("geo:-12.5,130.25") == (-12.5, 130.25)
    assert parse_geo_uri("geo:91,0") is None
    assert parse_geo_uri("47,6") is None


# -- rooms and choices ----------------------------------------------------------------


def test_room_kinds() -> None:
    rooms = RoomDirectory("!off:test")
    rooms.set_direct({"@a:test": ["!dm:test"]})
    assert rooms.kind("!off:test", 5) is ChatKind.OFFICERS
    assert rooms.kind("!dm:test", 2) is ChatKind.PRIVATE
    assert rooms.kind("!dm:test", 3) is ChatKind.GROUP  # a third person joined: a group now
    assert rooms.kind("!other:test", 2) is ChatKind.GROUP
    assert rooms.mark_direct("@b:test", "!dm2:test") == {"@a:test": ["!dm:test"],
                                                         "@b:test": ["!dm2:test"]}
    assert rooms.mark_direct("@b:test", "!dm2:test") is None
    rooms.set_direct({})  # a stale copy from a sync must not forget what was just marked
    assert rooms.kind("!dm2:test", 2) is ChatKind.PRIVATE


def test_numbered_pick() -> None:
    assert numbered_pick(CHOICES, "1") == "ap:7:ok"
    assert numbered_pick(CHOICES, " 2. ") == "ap:7:no"
    assert numbered_pick(CHOICES, "3") is None
    assert numbered_pick((), "1") is None


# -- errors --------------------------------------------------------------------------


def error(code: str | None, status: int | None, retry_after_ms: int | None = None) -> Any:
    return SimpleNamespace(status_code=code, message="msg", retry_after_ms=retry_after_ms,
                           transport_response=SimpleNamespace(status=status))


def test_error_mapping() -> None:
    limited = delivery_error(error("M_LIMIT_EXCEEDED", 429, 4700))
    assert isinstance(limited, RateLimited) and limited.retry_after == 4.7
    assert not limited.chat_only
    assert isinstance(delivery_error(error(None, 429)), RateLimited)
    assert isinstance(delivery_error(error("M_FORBIDDEN", 403)), RecipientGone)
    assert isinstance(delivery_error(error("M_UNKNOWN", 404)), RecipientGone)
    assert isinstance(delivery_error(error("M_UNKNOWN", 502)), TransientError)
    assert isinstance(delivery_error(error(None, 503)), TransientError)
    permanent = delivery_error(error("M_TOO_LARGE", 413))
    assert isinstance(permanent, PermanentError) and "M_TOO_LARGE" in str(permanent)


# -- joins wait out rate limits --------------------------------------------------------


async def test_joins_and_leaves_wait_out_rate_limits() -> None:
    transport = MatrixTransport(MatrixConfig(user_id=BOT), cast(TransportState, None),
                                lambda _: False)
    answers: list[Any] = [
        nio.JoinError("Too Many Requests", "M_LIMIT_EXCEEDED", retry_after_ms=20),
        nio.JoinError("Too Many Requests", "M_LIMIT_EXCEEDED", retry_after_ms=20),
        "joined"]

    async def join() -> Any:
        return answers.pop(0)

    assert await transport._patiently("join !r:test", join) == "joined"
    assert answers == []

    async def forbidden() -> Any:
        return nio.JoinError("You are not invited", "M_FORBIDDEN")

    assert await transport._patiently("join !r:test", forbidden) is None
