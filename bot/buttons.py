"""The one codec for a button's data: what a button means, as a typed payload.

A button's data travels through the platform and comes back typed by the client, so it is
only a claim: ``decode`` returns ``None`` for anything not exactly in one of the formats
below, and the core still checks roles, deliveries and nonces before acting on it.

The formats are those of buttons already sent, which stay in people's chats across an
upgrade, so they must never change:

* ``ap:<alert id>:ok`` / ``ap:<alert id>:no`` — approve or reject a pending alert;
* ``ack:<alert id>`` — « Reçu » under a delivered alert;
* ``tip:<alert id>`` — « J'ai une information » under a delivered alert;
* ``c:<nonce>:<value>`` — a conversation's choice, valid only with the step's nonce.

Telegram refuses callback data over 64 bytes: ``encode`` checks it, so an oversized
button fails where it is made rather than when a message is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import Choice
from bot.limits import CALLBACK_DATA_BYTES

ALERT_ID = r"([1-9][0-9]{0,8})"  # the canonical form only, so decode∘encode is exact
APPROVAL = re.compile(rf"ap:{ALERT_ID}:(ok|no)")
RECEIPT = re.compile(rf"ack:{ALERT_ID}")
TIP = re.compile(rf"tip:{ALERT_ID}")
CONVERSATION = re.compile(r"c:([^:]+):(.+)", re.DOTALL)


class ButtonDataError(ValueError):
    """A payload that cannot be encoded: out of range, or too long for a platform."""


@dataclass(frozen=True, slots=True)
class ApprovalButton:
    alert_id: int
    approve: bool


@dataclass(frozen=True, slots=True)
class ReceiptButton:
    alert_id: int


@dataclass(frozen=True, slots=True)
class TipButton:
    alert_id: int


@dataclass(frozen=True, slots=True)
class ConversationButton:
    nonce: str
    value: str


ButtonPayload = ApprovalButton | ReceiptButton | TipButton | ConversationButton


def button(label: str, payload: ButtonPayload) -> Choice:
    """A choice to show, its data encoded (and size-checked) here."""
    return Choice(label, encode(payload))


def encode(payload: ButtonPayload) -> str:
    """The data of ``payload``; ``ButtonDataError`` if it could not be decoded back."""
    data = _format(payload)
    size = len(data.encode("utf-8", "surrogatepass"))
    if size > CALLBACK_DATA_BYTES:
        raise ButtonDataError(
            f"button data {data!r} is {size} bytes, buttons allow {CALLBACK_DATA_BYTES}")
    if decode(data) != payload:
        raise ButtonDataError(f"{payload!r} has no faithful encoding ({data!r})")
    return data


def _format(payload: ButtonPayload) -> str:
    match payload:
        case ApprovalButton(alert_id, approve):
            return f"ap:{alert_id}:{'ok' if approve else 'no'}"
        case ReceiptButton(alert_id):
            return f"ack:{alert_id}"
        case TipButton(alert_id):
            return f"tip:{alert_id}"
        case ConversationButton(nonce, value):
            return f"c:{nonce}:{value}"


def decode(data: str) -> ButtonPayload | None:
    """The payload ``data`` encodes, or ``None`` if it is malformed or oversized."""
    if len(data.encode("utf-8", "surrogatepass")) > CALLBACK_DATA_BYTES:
        return None
    if match := APPROVAL.fullmatch(data):
        return ApprovalButton(int(match.group(1)), match.group(2) == "ok")
    if match := RECEIPT.fullmatch(data):
        return ReceiptButton(int(match.group(1)))
    if match := TIP.fullmatch(data):
        return TipButton(int(match.group(1)))
    if match := CONVERSATION.fullmatch(data):
        return ConversationButton(match.group(1), match.group(2))
    return None
