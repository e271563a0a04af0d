"""Matrix failures → the transport errors the core and the broadcast engine understand.

matrix-nio does not raise for homeserver errors: it returns an ``ErrorResponse`` with
the Matrix ``errcode`` in ``status_code``. Network trouble, on the other hand, comes
out of nio as aiohttp or timeout exceptions.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from bot.transports.base import (
    DeliveryError,
    PermanentError,
    RateLimited,
    RecipientGone,
    TransientError,
)

# What nio lets through when the homeserver cannot be reached or does not answer.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError,
                                                   asyncio.TimeoutError, OSError)
DEFAULT_RETRY_AFTER_S = 5.0  # nio's own default when a 429 carries no retry_after_ms
# The bot left the room, was kicked or banned, or the room does not exist (Synapse
# answers "User … not in room" with M_FORBIDDEN for all of these).
GONE_CODES = frozenset({"M_FORBIDDEN", "M_NOT_FOUND"})
# Synapse names users and rooms in its refusals ("User @bot:hs not in room !dm:hs"): a
# person's user id or DM room must reach neither the logs nor deliveries.last_error.
MATRIX_ID = re.compile(r"[@!#+][^\s:@!#+]+:[A-Za-z0-9.-]+(?::[0-9]+)?")


def without_ids(text: str) -> str:
    return MATRIX_ID.sub("<id>", text)


def http_status(response: Any) -> int | None:
    transport = getattr(response, "transport_response", None)
    status = getattr(transport, "status", None)
    return status if isinstance(status, int) else None


def error_code(response: Any) -> str:
    return str(getattr(response, "status_code", None) or "")


def is_rate_limited(response: Any) -> bool:
    return error_code(response) == "M_LIMIT_EXCEEDED" or http_status(response) == 429


def retry_after_seconds(response: Any) -> float:
    retry_ms = getattr(response, "retry_after_ms", None)
    return retry_ms / 1000 if isinstance(retry_ms, int | float) and retry_ms > 0 \
        else DEFAULT_RETRY_AFTER_S


def delivery_error(response: Any) -> DeliveryError:
    """The typed error for a nio ``ErrorResponse`` to a send, edit or redaction."""
    code, status = error_code(response), http_status(response)
    message = without_ids(str(getattr(response, "message", "") or response))
    if is_rate_limited(response):
        # Synapse's rc_message limits the account as a whole, never one room.
        return RateLimited(retry_after_seconds(response), chat_only=False)
    if code in GONE_CODES or (code == "M_UNKNOWN" and status in (403, 404)):
        return RecipientGone(f"{code}: {message}")
    if status is None or status >= 500:
        return TransientError(f"{code or 'HTTP ' + str(status)}: {message}")
    return PermanentError(f"{code or 'HTTP ' + str(status)}: {message}")


def network_error(error: BaseException) -> TransientError:
    return TransientError(f"{type(error).__name__}: {error}")
