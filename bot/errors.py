"""Errors that are answers: each names a catalogue message and its parameters."""

from __future__ import annotations

from collections.abc import Mapping


class UserFacingError(Exception):
    """Bad input, explained. ``key`` names a message in ``bot/locales/*.yaml`` (French is the
    reference) and ``params`` its ``str.format`` parameters, all strings."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key, params)
        self.key: str = key
        self.params: dict[str, str] = {name: str(value) for name, value in params.items()}

    def __str__(self) -> str:
        details = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.key} ({details})" if details else self.key

    def render(self, messages: Mapping[str, str]) -> str:
        """The message in the given catalogue (key -> template), or ``str(self)`` if missing."""
        template = messages.get(self.key)
        if template is None:
            return str(self)
        try:
            return template.format(**self.params)
        except (KeyError, IndexError, ValueError):
            return str(self)
