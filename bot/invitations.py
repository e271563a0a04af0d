"""Invitation tokens: made, recognised, guarded against guessing (issue 17).

A token is 24 random bytes in URL-safe base64: 32 characters of A-Za-z0-9_-, 192 bits,
which fits Telegram's ``/start`` payload (at most 64 of those characters) and cannot be
guessed. Only its SHA-256 is stored (``invitations.token_hash``): the database alone
enrolls nobody. A plain hash is enough for a random 192-bit secret (no dictionary to try);
a keyed one would break every link the day the secret key changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TOKEN_BYTES = 24
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
# Forged codes: this many refused in GUESS_WINDOW and the person's codes are no longer
# looked at until the window has passed (even a right one: a guesser learns nothing).
GUESSES_ALLOWED = 5
GUESS_WINDOW = timedelta(hours=1)
REQUEST_KEPT = timedelta(days=14)  # a request to join a vetted community, then it expires
PRESENTATION_CHARS = 300  # what a person writes about themselves for a référent
MAX_USES = 100_000


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def looks_like_token(code: str) -> bool:
    return TOKEN.fullmatch(code) is not None


class GuessGuard:
    """Refused start codes per person, in memory (like the flood throttle): after
    ``GUESSES_ALLOWED`` in ``GUESS_WINDOW``, codes are refused unread. A restart forgets
    the counts; with 192-bit tokens this guard is a second wall, not the first."""

    def __init__(self, allowed: int = GUESSES_ALLOWED, window: timedelta = GUESS_WINDOW) -> None:
        self.allowed = allowed
        self.window = window
        self._refused: dict[str, deque[datetime]] = {}

    def blocked(self, who: str, now: datetime) -> bool:
        recent = self._recent(who, now)
        return len(recent) >= self.allowed

    def refused(self, who: str, now: datetime) -> None:
        self._recent(who, now).append(now)

    def _recent(self, who: str, now: datetime) -> deque[datetime]:
        recent = self._refused.setdefault(who, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:  # memory follows the people refused lately, not everyone ever
            del self._refused[who]
            recent = self._refused.setdefault(who, deque())
        return recent


@dataclass(frozen=True, slots=True)
class InvitationRequest:
    """``/invitation <communauté> [communes] [jusqu'au JJ/MM] [max N] [: partenaire]``."""

    community: str  # as typed
    places: str  # communes as typed, "" for none
    until: date | None
    max_uses: int | None
    partner: str | None  # an admin may name the partner; "" / None: the default


class InvitationSyntax(ValueError):
    """The command could not be read; ``key`` is the message saying why."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


UNTIL = re.compile(r"\bjusqu[’'`\s]?\s*au\s+(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b",
                   re.IGNORECASE)
MAX = re.compile(r"\bmax(?:imum)?\s+(\d{1,9})\b", re.IGNORECASE)
PARTNER = re.compile(r":\s")  # « … : Chambre d'agriculture » (dep:70 has no space)


def parse_invitation(args: str, today: date) -> InvitationRequest:
    split = PARTNER.search(args + " ")
    head, partner = (args[:split.start()], args[split.end():]) if split else (args, "")
    until = _until(head, today)
    head = UNTIL.sub(" ", head)
    maximum = MAX.search(head)
    head = MAX.sub(" ", head)
    words = head.split(maxsplit=1)
    if not words:
        raise InvitationSyntax("invite.usage")
    max_uses = None if maximum is None else int(maximum.group(1))
    if max_uses is not None and not 1 <= max_uses <= MAX_USES:
        raise InvitationSyntax("invite.bad_max", max=MAX_USES)
    community = words[0].strip(",;")
    places = words[1].strip(" ,;") if len(words) > 1 else ""
    return InvitationRequest(community, places, until, max_uses, partner.strip() or None)


def _until(text: str, today: date) -> date | None:
    found = UNTIL.search(text)
    if found is None:
        return None
    day, month, year = int(found.group(1)), int(found.group(2)), found.group(3)
    try:
        if year is not None:
            wanted = date(int(year) + (2000 if len(year) == 2 else 0), month, day)
        else:  # the next such day: « jusqu'au 15/01 » said in November is next year's
            wanted = date(today.year, month, day)
            if wanted < today:
                wanted = date(today.year + 1, month, day)
    except ValueError:
        raise InvitationSyntax("invite.bad_date", date=found.group(0)) from None
    if wanted < today:
        raise InvitationSyntax("invite.past_date", date=found.group(0))
    return wanted


def end_of(day: date, zone: ZoneInfo) -> datetime:
    """An invitation « jusqu'au 15/01 » works all that day, in the bot's time zone."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), zone)
