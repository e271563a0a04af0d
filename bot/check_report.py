"""What the pre-flight check found: one line per fact, each marked ok, warning or PROBLEM.

The lines are for the prefecture's IT person who runs ``check`` before starting the
service: plain English, the configuration key or the command that fixes a problem,
never a secret (every line goes through :func:`scrub` before it is printed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.logs import REDACTED, TELEGRAM_TOKEN

# Seconds any one network call of the check may take. A prefecture's network may drop
# packets to a blocked host instead of refusing them: without a bound the check would hang.
TIMEOUT = 10.0
MIN_SECRET = 8  # characters


class Level(enum.Enum):
    OK = "ok"
    WARNING = "warning"  # worth reading, but the service can start
    PROBLEM = "PROBLEM"  # the service would not work as configured: exit status 1


@dataclass(frozen=True)
class Finding:
    level: Level
    subject: str  # configuration, database, telegram, matrix, console
    text: str

    def line(self) -> str:
        # Markers padded to one width, so that the subjects line up in a terminal.
        return f"{self.level.value:<8}{self.subject}: {self.text}"


@dataclass
class Section:
    """The findings about one subject, in the order they were made."""

    subject: str
    findings: list[Finding] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.findings.append(Finding(Level.OK, self.subject, text))

    def warning(self, text: str) -> None:
        self.findings.append(Finding(Level.WARNING, self.subject, text))

    def problem(self, text: str) -> None:
        self.findings.append(Finding(Level.PROBLEM, self.subject, text))


    def no_officers_channel(self, key: str, officers_elsewhere: list[str], guide: str) -> None:
        """The platform has no officers' channel configured: a warning if another platform
        has one, else nobody can approve."""
        if officers_elsewhere:
            self.warning(f"{key} is not set: approval requests reach the officers on "
                         f"{' and '.join(officers_elsewhere)} only")
        else:
            self.problem(f"{key} is not set and no other platform has an officers' channel: "
                         f"nobody can approve an alert ({guide})")


class CheckFailed(Exception):
    """The subject cannot be checked further (unreachable server, refused credentials);
    the message is the problem line, already phrased for the operator."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without the configured secrets: libraries put tokens in their messages
    (PTB's InvalidToken quotes the token, URLs carry it)."""
    # Shorter values would blank out ordinary words; the log filter has the same floor.
    for secret in sorted((s for s in secrets if len(s) >= MIN_SECRET), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return TELEGRAM_TOKEN.sub(REDACTED, text)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
