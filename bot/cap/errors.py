"""The one exception CAP import raises: :class:`CapError`, with an i18n key and parameters."""

from __future__ import annotations

from bot.errors import UserFacingError

__all__ = ["CapError"]


class CapError(UserFacingError):
    """A CAP message could not be imported (messages in ``bot/locales/cap.<lang>.yaml``)."""
