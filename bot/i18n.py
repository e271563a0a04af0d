"""Message catalogues: ``bot/locales/<area>.<lang>.yaml``, flat ``key: text`` mappings.

French is the reference language; a key missing in another language falls back to
French so a half-translated catalogue never leaves a user without an answer.

Wording that depends on the platform lives in the catalogue too, never in handlers: an
entry ``key@tag`` is used instead of ``key`` for a person on a platform with that tag
(``PLATFORM_TAGS``: Matrix and the console show choices as numbered lines, so their
entries say « répondez par le numéro » where Telegram's say « touchez »). And on a
platform whose clients take ``/`` for themselves (Element), the commands a text names
are written with the prefix people type there (``!stop``): the catalogue is written with
``/`` once, the translator rewrites the template (never the parameters, which may be
anyone's text). A text posted to several platforms at once (the officers' channels) is
translated for ``ANY_PLATFORM``: its commands carry ``COMMAND_MARK``, which the reply
sender turns into each chat's prefix (``commands_for``) as it sends.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.resources import package_path
from bot.yamltext import load_yaml

LOCALES_DIR = package_path("bot", "locales")
REFERENCE_LANGUAGE = "fr"
LANGUAGES = ("fr", "en")
VARIANT = "@"  # "enroll.confirm_please@numbered": that entry on a platform tagged "numbered"
# Platform → its tags, most specific first. A platform not listed has no variants.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "matrix": ("matrix", "numbered"),
    "console": ("console", "numbered"),
    "telegram": ("telegram", "buttons"),
}
# Platform → the prefix its people type commands with, when it is not "/". Element
# turns "/stop" into a client command of its own; "!stop" reaches the bot.
COMMAND_PREFIX: dict[str, str] = {"matrix": "!"}
ANY_PLATFORM = "*"  # a text for several platforms: its commands are marked, not prefixed
COMMAND_MARK = "\ue000"  # a private-use character: no keyboard types it
# A command in a template: "/" then a lower-case name or a {placeholder} naming one, at
# the start or after a space or an opening mark — not "25/11", "{done}/{total}", "s/",
# "km/h" or "https://".
COMMAND_IN_TEMPLATE = re.compile(r"(?<![\w/.:}])/(?=[a-z{])")


class Catalog:
    def __init__(self, texts: dict[str, dict[str, str]]) -> None:
        self._texts = texts

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Catalog:
        texts: dict[str, dict[str, str]] = {language: {} for language in LANGUAGES}
        for path in sorted(directory.glob("*.yaml")):
            language = path.stem.rsplit(".", 1)[-1]
            if language not in texts:
                raise ValueError(f"{path}: name it <area>.<{'|'.join(LANGUAGES)}>.yaml")
            entries = load_yaml(path.read_text(encoding="utf-8")) or {}
            duplicates = set(entries) & set(texts[language])
            if duplicates:
                raise ValueError(f"{path}: keys defined twice: {sorted(duplicates)}")
            texts[language].update({str(k): str(v) for k, v in entries.items()})
        return cls(texts)

    def keys(self, language: str = REFERENCE_LANGUAGE) -> set[str]:
        return set(self._texts[language])

    def text(self, language: str, key: str, **params: object) -> str:
        return self.render(language, key, None, **params)

    def render(self, language: str, key: str, platform: str | None, **params: object) -> str:
        """``key`` in ``language`` as people on ``platform`` read it (None: any platform)."""
        template = self.template(language, key, platform)
        prefix = COMMAND_MARK if platform == ANY_PLATFORM else COMMAND_PREFIX.get(platform or "")
        if prefix is not None:
            template = COMMAND_IN_TEMPLATE.sub(prefix, template)
        return template.format(**params) if params else template

    def template(self, language: str, key: str, platform: str | None = None) -> str:
        """The most specific entry: this language's variants for the platform, then its
        plain entry, then the same in French. A KeyError is a bug, caught by tests."""
        tags = PLATFORM_TAGS.get(platform or "", ())
        for texts in (self._texts.get(language, {}), self._texts[REFERENCE_LANGUAGE]):
            for name in (*(f"{key}{VARIANT}{tag}" for tag in tags), key):
                if name in texts:
                    return texts[name]
        raise KeyError(key)


class Translator:
    """A catalogue bound to one person's language, and to the platform they read on
    (None when the text goes to several platforms or to none in particular)."""

    def __init__(self, catalog: Catalog, language: str, platform: str | None = None) -> None:
        self.catalog = catalog
        self.language = language
        self.platform = platform

    def __call__(self, key: str, **params: object) -> str:
        return self.catalog.render(self.language, key, self.platform, **params)

    def on(self, platform: str | None) -> Translator:
        """The same language, read on another platform (a notice to another chat)."""
        return Translator(self.catalog, self.language, platform)


def commands_for(text: str, platform: str) -> str:
    """A text translated for ``ANY_PLATFORM``, with its commands as typed on ``platform``."""
    return text.replace(COMMAND_MARK, COMMAND_PREFIX.get(platform, "/"))
