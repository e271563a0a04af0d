"""WhatsApp Cloud API errors (pywa's typed ``WhatsAppError``s) as the bot's typed errors.

| code | meaning | becomes |
|---|---|---|
| 130429 | the number's throughput (80 msg/s) exceeded | ``RateLimited`` (whole platform) |
| 131056 | too many messages to this person (pair rate limit) | ``RateLimited`` (this chat) |
| 131048 | spam rate limit: too many blocks or reports | ``RateLimited``, long pause |
| 4, 80007 | the app's or account's API call rate | ``RateLimited`` |
| 368, 131031 | account blocked (policy), locked | ``RateLimited``, long pause |
| 131047 | re-engagement: the 24-hour window closed | ``WindowClosed`` (→ template) |
| 131026 | undeliverable (no WhatsApp, old app, terms not accepted) | ``Unreachable`` |
| 131049 | Meta chose not to deliver (ecosystem engagement) | ``PermanentError`` |
| 0, 190 | access token refused or expired | ``TransientError``, not connected |
| 1, 2, 131000, 131016, HTTP 5xx | server trouble | ``TransientError`` |
| anything else (bad parameter, template missing or paused) | | ``PermanentError`` |
"""

from __future__ import annotations

from collections import Counter

import httpx
from pywa.errors import WhatsAppError

from bot.transports.base import (
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
    Unreachable,
)

THROUGHPUT = 130429
PAIR_RATE = 131056
SPAM_RATE = 131048
RE_ENGAGEMENT = 131047
UNDELIVERABLE = 131026
ECOSYSTEM = 131049
API_RATE = frozenset({4, 80007})
BLOCKED = frozenset({368, 131031})
AUTH = frozenset({0, 190})
SERVER = frozenset({1, 2, 131000, 131016})

# Seconds to wait. Meta gives no Retry-After: a second for the throughput (the pacer's
# budget is the real guard), a pair's 6 s for one person, a minute for the app's call
# rate, ten for spam and policy blocks, which only a person can lift.
THROUGHPUT_PAUSE = 1.0
PAIR_PAUSE = 6.0
API_RATE_PAUSE = 60.0
SPAM_PAUSE = 600.0


class WindowClosed(PermanentError):
    """131047: free text outside the person's 24-hour window."""


def translate(error: WhatsAppError, counters: Counter[str]) -> DeliveryError:
    code = error.code
    counters[f"error_{code}"] += 1
    text = f"whatsapp {code}: {error.message}"
    if code == THROUGHPUT:
        return RateLimited(THROUGHPUT_PAUSE)
    if code == PAIR_RATE:
        return RateLimited(PAIR_PAUSE, chat_only=True)
    if code in API_RATE:
        return RateLimited(API_RATE_PAUSE)
    if code == SPAM_RATE or code in BLOCKED:
        return RateLimited(SPAM_PAUSE)
    if code == RE_ENGAGEMENT:
        return WindowClosed(text)
    if code == UNDELIVERABLE:
        return Unreachable(text)
    if code in AUTH or code in SERVER or (error.status_code or 0) >= 500:
        return TransientError(text)
    return PermanentError(text)


def network(error: httpx.HTTPError) -> TransientError:
    return TransientError(f"whatsapp: {type(error).__name__}: {error}")
