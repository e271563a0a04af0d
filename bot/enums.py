"""The closed sets of words the bot stores and compares: statuses, kinds, actions, outcomes.

Each is a ``StrEnum`` whose values are the strings already in the database, so rows read
and written stay the same, and a typo is a type error instead of a comparison never true.
"""

from __future__ import annotations

from enum import StrEnum


class AlertStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    BROADCASTING = "broadcasting"
    DONE = "done"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class AlertKind(StrEnum):
    ALERT = "alert"
    UPDATE = "update"
    CLOSING = "closing"  # an operator's closing text
    ALL_CLEAR = "all_clear"
    RECALL = "recall"
    EXPIRY = "expiry"
    REDACT = "redact"  # a protected alert's copies edited down when it ends


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    DROPPED = "dropped"


class DeliveryAction(StrEnum):
    SEND = "send"
    EDIT = "edit"
    DELETE = "delete"


class SendOutcome(StrEnum):
    """What one attempt at a delivery came to, before it is recorded."""

    SENT = "sent"
    RETRY = "retry"
    BLOCKED = "blocked"
    FAILED = "failed"
    MOVED = "moved"


class ReplyDrop(StrEnum):
    """Why a reply (or its edit of one tracked post) was given up: logged and counted."""

    GONE = "gone"  # the recipient blocked the bot, left, or no longer exists
    REFUSED = "refused"  # the platform refused this message for good (a bad request)
    ATTEMPTS = "attempts"  # still failing (network, server) after every attempt
    NO_TRANSPORT = "no_transport"  # its platform is not running
    NO_FILE = "no_file"  # its file (a map) could not be drawn: the message goes without
    UNREADABLE = "unreadable"  # its stored form could not be read back (a bug)


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class DeferredKind(StrEnum):
    """What a file built after commit is (bot/deferred.py); stored in reply-outbox rows."""

    MAP = "map"  # the approval request's map (PNG)
    CAP = "cap"  # /cap: an alert as a CAP 1.2 document (XML)
    MY_DATA = "my_data"  # /mesdonnees: what the bot holds about the person (JSON)
    PHOTO = "photo"  # an alert's photo, read from the database (bot/alert_photos.py)
    QR = "qr"  # an invitation's QR code (PNG; bot/invitation_poster.py)
    POSTER = "poster"  # an invitation's printable A4 poster (PNG)


class Verdict(StrEnum):
    """The flood throttle's answer to one incoming message."""

    ALLOW = "allow"
    WARN = "warn"  # the first refusal: the person is told once
    DROP = "drop"


# Which status may follow which. Anything else is a bug in the caller, not a race: a race
# (the alert moved meanwhile) is the expected status not matching, which is answered False.
ALERT_TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.PENDING: frozenset({AlertStatus.APPROVED, AlertStatus.REJECTED,
                                    AlertStatus.EXPIRED, AlertStatus.WITHDRAWN}),
    AlertStatus.APPROVED: frozenset({AlertStatus.BROADCASTING, AlertStatus.WITHDRAWN}),
    AlertStatus.BROADCASTING: frozenset({AlertStatus.DONE}),
    AlertStatus.REJECTED: frozenset(),
    AlertStatus.DONE: frozenset(),
    AlertStatus.EXPIRED: frozenset(),
    AlertStatus.WITHDRAWN: frozenset(),
}
