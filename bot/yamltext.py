"""YAML as the bot reads it: safe tags, and no aliases.

An alias (``*name``) repeats an anchored node; nine levels of nine aliases each (the
"billion laughs", 531 bytes) stand for 387 million strings, which the configuration
loader would then walk and copy (over a minute and 1.8 GB before a MemoryError). The
bot's files (configuration, categories, communities, message catalogues) are short and
written by hand: they never need an alias, so refusing every alias is the simplest bound
there is — the document built is never larger than the text read. Anchors alone
(``&name``) repeat nothing and stay allowed.
"""

from __future__ import annotations

from typing import Any

import yaml


class AliasRefused(yaml.YAMLError):
    """The text uses an alias (``*name``); ``line`` is 1-based."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line {line}: YAML aliases (*name) are not allowed")
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    """``SafeLoader`` that stops at the first alias event, before building anything."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            raise AliasRefused(event.start_mark.line + 1 if event.start_mark else 0)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Like ``yaml.safe_load``, but an alias raises :class:`AliasRefused`."""
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
