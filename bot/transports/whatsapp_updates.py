"""A WhatsApp webhook's body as the bot's events: people's messages (``Incoming``), the
statuses of the bot's messages, and the account's quality signals.

Only changes for the configured phone number are read (one Meta app may serve several).
A person is their ``wa_id`` (their phone number's digits) and their private chat too: the
bot posts in no WhatsApp group. Message types the bot cannot read (a voice note, a
sticker) become ``Incoming.unsupported``, so the person is told; reactions and system
messages are nobody's words and are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bot.domain import ChatKind, ChatRef, Identity, Incoming
from bot.storage.whatsapp import Status

log = logging.getLogger(__name__)

PLATFORM = "whatsapp"
IGNORED_TYPES = frozenset({"reaction", "system", "unsupported", "ephemeral", "request_welcome"})
# Account signals worth an operator's eye: the number's quality rating and messaging
# limit, the templates' review, and the account's own restrictions.
SIGNAL_FIELDS = frozenset({"phone_number_quality_update", "account_update",
                           "message_template_status_update", "message_template_quality_update",
                           "account_alerts"})


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    message_id: str
    status: Status
    recipient: str
    error_code: int | None = None
    billable: bool | None = None  # Meta's pricing block, when given


@dataclass(slots=True)
class Parsed:
    incoming: list[Incoming] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)  # one line each, for the logs
    senders: dict[str, datetime] = field(default_factory=dict)  # wa_id → their last message


class NotAnUpdate(ValueError):
    """A JSON body that is not a WhatsApp Business webhook: answered 400."""


def parse(payload: dict[str, Any], phone_number_id: str) -> Parsed:
    if payload.get("object") != "whatsapp_business_account" or not isinstance(
            payload.get("entry"), list):
        raise NotAnUpdate("not a whatsapp_business_account webhook")
    parsed = Parsed()
    for change in _changes(payload):
        value = change.get("value")
        if not isinstance(value, dict):
            continue
        name = str(change.get("field", ""))
        if name in SIGNAL_FIELDS:
            parsed.signals.append(_signal(name, value))
            continue
        if name != "messages":
            continue
        metadata = value.get("metadata")
        if not isinstance(metadata, dict) or str(metadata.get("phone_number_id")) != \
                phone_number_id:
            continue  # another number of the same app
        _read_messages(value, parsed)
        _read_statuses(value, parsed)
    return parsed


def _changes(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict):
                yield change


def _read_messages(value: dict[str, Any], parsed: Parsed) -> None:
    names = {str(contact.get("wa_id")): str((contact.get("profile") or {}).get("name", ""))
             for contact in value.get("contacts") or [] if isinstance(contact, dict)}
    for message in value.get("messages") or []:
        if not isinstance(message, dict) or not message.get("from") or not message.get("id"):
            continue
        if message.get("group_id"):
            continue  # the bot serves people in private chats only
        sender = str(message["from"])
        parsed.senders[sender] = max(_time(message.get("timestamp")),
                                     parsed.senders.get(sender, datetime.min.replace(tzinfo=UTC)))
        incoming = _incoming(message, sender, names.get(sender, ""))
        if incoming is not None:
            parsed.incoming.append(incoming)


def _incoming(message: dict[str, Any], sender: str, name: str) -> Incoming | None:
    kind = str(message.get("type", ""))
    if kind in IGNORED_TYPES:
        return None
    base = Incoming(Identity(PLATFORM, sender), ChatRef(PLATFORM, sender), ChatKind.PRIVATE,
                    event_id=str(message["id"]), sender_name=name)
    content = message.get(kind)
    content = content if isinstance(content, dict) else {}
    if kind == "text":
        return _replace(base, text=str(content.get("body", "")))
    if kind == "interactive":
        reply = content.get(str(content.get("type", "")))
        if isinstance(reply, dict) and reply.get("id"):
            return _replace(base, choice=str(reply["id"]), text=str(reply.get("title", "")))
        return None
    if kind == "button":  # a template's quick reply
        payload = content.get("payload")
        return _replace(base, choice=str(payload), text=str(content.get("text", ""))) \
            if payload else None
    if kind == "location":
        try:
            where = (float(content["latitude"]), float(content["longitude"]))
        except (KeyError, TypeError, ValueError):
            return None
        return _replace(base, location=where)
    return _replace(base, unsupported=kind or "unknown")


def _replace(incoming: Incoming, **changes: Any) -> Incoming:
    return replace(incoming, **changes)


def _read_statuses(value: dict[str, Any], parsed: Parsed) -> None:
    for item in value.get("statuses") or []:
        if not isinstance(item, dict):
            continue
        status = Status.named(str(item.get("status", "")))
        if status is None or status is Status.ACCEPTED or not item.get("id"):
            continue
        errors = item.get("errors")
        code = None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = _int(errors[0].get("code"))
        pricing = item.get("pricing")
        billable = pricing.get("billable") if isinstance(pricing, dict) else None
        parsed.statuses.append(StatusUpdate(
            str(item["id"]), status, str(item.get("recipient_id", "")), code,
            billable if isinstance(billable, bool) else None))


def _signal(name: str, value: dict[str, Any]) -> str:
    """One log line: the event and its few telling fields (never a person's number)."""
    keys = ("event", "current_limit", "old_limit", "new_quality_score", "message_template_name",
            "reason", "ban_info", "violation_info")
    shown = " ".join(f"{key}={value[key]}" for key in keys if key in value)
    return f"{name} {shown}".strip()


def _time(value: Any) -> datetime:
    number = _int(value)
    return datetime.fromtimestamp(number, UTC) if number is not None else datetime.now(UTC)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
