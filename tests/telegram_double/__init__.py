"""A loopback fake of Telegram's Bot API for end-to-end tests and benchmarks.

See ``README.md`` in this directory. Typical use::

    async with TelegramDouble(token="123:ABC") as double:
        double.user(1001, first_name="Alice", username="alice")
        bot = telegram.Bot("123:ABC", base_url=double.base_url)
"""

from .api import SEND_METHODS
from .double import TelegramDouble
from .errors import ApiError
from .markup import EntityParseError, parse_html
from .ratelimit import RateLimiter, RateLimits, TokenBucket
from .stats import Stats
from .world import ChatRecord, Record, UserRecord

__all__ = [
    "SEND_METHODS",
    "ApiError",
    "ChatRecord",
    "EntityParseError",
    "RateLimiter",
    "RateLimits",
    "Record",
    "Stats",
    "TelegramDouble",
    "TokenBucket",
    "UserRecord",
    "parse_html",
]
