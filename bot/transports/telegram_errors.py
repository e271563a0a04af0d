"""python-telegram-bot errors → the typed errors of bot.transports.base.

Telegram's 429 does not say which flood limit was hit. The dispatcher needs to know: a
chat-only limit delays that one recipient, a global one pauses the whole platform. We guess
from what this transport itself sent recently (docs/telegram.md, "Flood limits"):

* private chat: chat-only if we sent to it less than ``PRIVATE_WINDOW`` seconds ago
  (Telegram allows about one message per second per chat);
* group: chat-only if it got at least ``GROUP_PER_MINUTE`` of our messages in the last minute
  (Telegram allows about 20 per minute per group);
* anything else: global (about 30 messages per second for the whole bot).

Guessing "global" wrongly only slows the broadcast down for ``retry_after``; guessing
"chat-only" wrongly would keep hammering a global limit, so ties go to global.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter, deque
from collections.abc import Callable
from datetime import timedelta

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.transports.base import (
    ChatMoved,
    DeliveryError,
    PermanentError,
    RateLimited,
    RecipientGone,
    TransientError,
)

PRIVATE_WINDOW = 1.0  # seconds
GROUP_WINDOW = 60.0  # seconds
GROUP_PER_MINUTE = 20
SWEEP_ABOVE = 10_000  # chats remembered before the first sweep of the quiet ones


def is_private(chat_id: str) -> bool:
    """Telegram gives users (hence private chats) positive ids, groups and channels negative."""
    return not chat_id.startswith("-")


def chat_in_logs(chat_id: str) -> str:
    """A chat as log lines may name it: a group by its id (operators need it), a private
    chat never — its id is the person's Telegram user id."""
    return "a private chat" if is_private(chat_id) else f"group {chat_id}"


class RecentSends:
    """When this transport last delivered to each chat: the evidence for the 429 guess.

    A broadcast records a new chat at every message, so forgetting must stay cheap: a sweep
    runs only when the number of chats remembered has doubled since the last one (amortised
    O(1); sweeping at every new chat beyond 10,000 once cut a broadcast from 1,000 to 250
    msg/s) or a minute after the last one (so a wave of people enrolling, far below 10,000,
    does not stay in memory for ever), and forgets a private chat after ``PRIVATE_WINDOW``, a
    group after ``GROUP_WINDOW``: exactly when ``chat_only`` stops looking at them.

    A private chat needs only its last send: a float, not a deque (a ``deque(maxlen=1)`` is
    ~700 bytes; per person, that was most of the bot's memory growth in an enrollment
    spike). Groups keep their last ``GROUP_PER_MINUTE``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._private: dict[str, float] = {}
        self._groups: dict[str, deque[float]] = {}
        self._sweep_at = SWEEP_ABOVE
        self._next_sweep = clock() + GROUP_WINDOW

    def __len__(self) -> int:
        return len(self._private) + len(self._groups)

    def record(self, chat_id: str) -> None:
        now = self._clock()
        if is_private(chat_id):
            if chat_id not in self._private:
                self._sweep_if_grown()
            self._private[chat_id] = now
            return
        stamps = self._groups.get(chat_id)
        if stamps is None:
            self._sweep_if_grown()
            stamps = self._groups[chat_id] = deque(maxlen=GROUP_PER_MINUTE)
        stamps.append(now)

    def chat_only(self, chat_id: str) -> bool:
        """Whether a 429 for this chat is most likely its own limit rather than the bot's."""
        now = self._clock()
        if is_private(chat_id):
            last = self._private.get(chat_id)
            return last is not None and now - last < PRIVATE_WINDOW
        stamps = self._groups.get(chat_id)
        return (stamps is not None and len(stamps) >= GROUP_PER_MINUTE
                and now - stamps[0] < GROUP_WINDOW)

    def _sweep_if_grown(self) -> None:
        if len(self) >= self._sweep_at or self._clock() >= self._next_sweep:
            self._forget_quiet_chats()
            self._sweep_at = max(SWEEP_ABOVE, 2 * len(self))
            self._next_sweep = self._clock() + GROUP_WINDOW

    def _forget_quiet_chats(self) -> None:
        now = self._clock()
        self._private = {chat: last for chat, last in self._private.items()
                         if now - last < PRIVATE_WINDOW}
        self._groups = {chat: stamps for chat, stamps in self._groups.items()
                        if stamps and now - stamps[-1] < GROUP_WINDOW}


def retry_after_seconds(error: RetryAfter) -> float:
    """PTB 22 gives an int (deprecated, warns) or a timedelta (PTB_TIMEDELTA=true)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def translate(error: TelegramError, chat_id: str, recent: RecentSends,
              counters: Counter[str]) -> DeliveryError:
    """The typed error for ``error`` met while sending to or editing in ``chat_id``."""
    typed = _typed(error, chat_id, recent)
    counters[_counter_name(typed)] += 1
    return typed


def _typed(error: TelegramError, chat_id: str, recent: RecentSends) -> DeliveryError:
    # Order matters: BadRequest and TimedOut are NetworkError subclasses in PTB.
    if isinstance(error, RetryAfter):
        return RateLimited(retry_after_seconds(error), chat_only=recent.chat_only(chat_id))
    if isinstance(error, ChatMigrated):
        return ChatMoved(str(error.new_chat_id))
    if isinstance(error, Forbidden):
        return RecipientGone(error.message)
    if isinstance(error, BadRequest):
        return PermanentError(error.message)
    if isinstance(error, InvalidToken):
        # The token was revoked while running: every send will fail until someone fixes it.
        return PermanentError(f"Telegram refused the bot token: {error.message}")
    if isinstance(error, NetworkError):
        return TransientError(error.message)  # timeouts, 5xx, connection resets
    return TransientError(f"{type(error).__name__}: {error.message}")  # e.g. 409 Conflict


def _counter_name(error: DeliveryError) -> str:
    if isinstance(error, RateLimited):
        return "rate_limited_chat" if error.chat_only else "rate_limited_global"
    return {RecipientGone: "recipient_gone", ChatMoved: "chat_moved",
            PermanentError: "permanent"}.get(type(error), "transient")


def is_not_modified(error: TelegramError) -> bool:
    """Editing a message to what it already shows is a success, not an error."""
    return isinstance(error, BadRequest) and "message is not modified" in error.message.lower()


def is_gone(error: TelegramError) -> bool:
    """The message to edit no longer exists."""
    return isinstance(error, BadRequest) and "message to edit not found" in error.message.lower()


def is_already_deleted(error: TelegramError) -> bool:
    """Deleting a message that is already gone (the person deleted it) achieved the goal."""
    return isinstance(error, BadRequest) and "message to delete not found" in error.message.lower()
