"""Message catalogues: ``bot/locales/<area>.<lang>.yaml``, a mapping of keys to entries.

An entry is a ``str.format`` template, or, for words that agree with a number, a mapping
of CLDR plural categories to templates, chosen by the ``count`` parameter with the
language's own rules (Babel)::

    render.and_more:
      one: " et {count} autre"
      other: " et {count} autres"

French puts 0 and 1 in ``one`` (« 0 échec », « 1 commune »), English only 1; French also
has ``many`` (a million and more), and a missing category reads ``other``. ``zero``, when
given, is used for exactly 0 in any language (« aucun »). In such an entry ``{count}`` is
shown with the language's digit grouping (« 1 234 », "1,234").

French is the reference language; a key missing in another language falls back to
French so a half-translated catalogue never leaves a user without an answer. Dates and
numbers are written by the person's language too (``Translator.when``, ``number``).

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
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_decimal

from bot.resources import package_path
from bot.yamltext import load_yaml

LOCALES_DIR = package_path("bot", "locales")
REFERENCE_LANGUAGE = "fr"
LANGUAGES = ("fr", "en")
PLURAL_CATEGORIES = ("zero", "one", "two", "few", "many", "other")
VARIANT = "@"  # "enroll.confirm_please@numbered": that entry on a platform tagged "numbered"
# Platform → its tags, most specific first. A platform not listed has no variants.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "matrix": ("matrix", "numbered"),
    "console": ("console", "numbered"),
    "telegram": ("telegram", "buttons"),
    "whatsapp": ("whatsapp", "buttons"),
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

Plural = Mapping[str, str]  # plural category -> template
Entry = str | Plural


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)


def plural_category(language: str, count: int) -> str:
    """The CLDR plural category of ``count`` in ``language`` (one, many, other…)."""
    return str(_locale(language).plural_form(abs(count)))


def format_number(number: float, language: str, decimals: int = 0, trim: bool = False) -> str:
    """``number`` with the language's grouping and decimal mark: 1 234,5 / 1,234.5;
    ``trim``: the decimals only as far as they are not zero (30, 0,2)."""
    pattern = "#,##0" + ("." + ("#" if trim else "0") * decimals if decimals > 0 else "")
    return str(format_decimal(number, format=pattern, locale=_locale(language)))


def _entry(path: Path, key: str, value: object) -> Entry:
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: {key}: expected a text or a mapping of plural forms")
    forms = {str(k): v for k, v in value.items()}
    unknown = set(forms) - set(PLURAL_CATEGORIES)
    if unknown or "other" not in forms or not all(isinstance(v, str) for v in forms.values()):
        raise ValueError(f"{path}: {key}: plural forms are texts named among "
                         f"{', '.join(PLURAL_CATEGORIES)}, 'other' included "
                         f"(unknown: {sorted(unknown)})")
    return {k: str(v) for k, v in forms.items()}


class Catalog:
    def __init__(self, texts: Mapping[str, Mapping[str, Entry]]) -> None:
        self._texts = texts

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Catalog:
        texts: dict[str, dict[str, Entry]] = {language: {} for language in LANGUAGES}
        for path in sorted(directory.glob("*.yaml")):
            language = path.stem.rsplit(".", 1)[-1]
            if language not in texts:
                raise ValueError(f"{path}: name it <area>.<{'|'.join(LANGUAGES)}>.yaml")
            entries = load_yaml(path.read_text(encoding="utf-8")) or {}
            duplicates = set(entries) & set(texts[language])
            if duplicates:
                raise ValueError(f"{path}: keys defined twice: {sorted(duplicates)}")
            texts[language].update({str(k): _entry(path, str(k), v) for k, v in entries.items()})
        return cls(texts)

    def keys(self, language: str = REFERENCE_LANGUAGE) -> set[str]:
        return set(self._texts[language])

    def entry(self, language: str, key: str, platform: str | None = None) -> Entry:
        """The most specific entry: this language's variants for the platform, then its
        plain entry, then the same in French. A KeyError is a bug, caught by tests."""
        tags = PLATFORM_TAGS.get(platform or "", ())
        for texts in (self._texts.get(language, {}), self._texts[REFERENCE_LANGUAGE]):
            for name in (*(f"{key}{VARIANT}{tag}" for tag in tags), key):
                if name in texts:
                    return texts[name]
        raise KeyError(key)

    def templates(self, language: str, key: str, platform: str | None = None) -> tuple[str, ...]:
        """Every template of the entry: one, or one per plural form."""
        found = self.entry(language, key, platform)
        return (found,) if isinstance(found, str) else tuple(found.values())

    def template(self, language: str, key: str, platform: str | None = None) -> str:
        """The entry's template; for a plural entry, its ``other`` form."""
        found = self.entry(language, key, platform)
        return found if isinstance(found, str) else found["other"]

    def text(self, language: str, key: str, **params: object) -> str:
        return self.render(language, key, None, **params)

    def render(self, language: str, key: str, platform: str | None, **params: object) -> str:
        """``key`` in ``language`` as people on ``platform`` read it (None: any platform)."""
        found = self.entry(language, key, platform)
        if not isinstance(found, str):
            template, params = _plural_form(language, key, found, params)
        else:
            template = found
        prefix = COMMAND_MARK if platform == ANY_PLATFORM else COMMAND_PREFIX.get(platform or "")
        if prefix is not None:
            template = COMMAND_IN_TEMPLATE.sub(prefix, template)
        return template.format(**params) if params else template


def _plural_form(language: str, key: str, forms: Plural,
                 params: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The form ``count`` calls for, and the parameters with ``count`` written out."""
    count = params.get("count")
    if not isinstance(count, int) or isinstance(count, bool):
        raise TypeError(f"{key} has plural forms: give count=<int>, not {count!r}")
    category = "zero" if count == 0 and "zero" in forms else plural_category(language, count)
    return (forms.get(category, forms["other"]),
            {**params, "count": format_number(count, language)})


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

    def number(self, number: float, decimals: int = 0, trim: bool = False) -> str:
        return format_number(number, self.language, decimals, trim)

    def when(self, moment: datetime) -> str:
        """A day and time as people of the language write it (« 27/11 à 17:00 »,
        "27 Nov at 17:00"); ``moment`` is already in the display time zone."""
        return self._format(moment, "format.day_and_time")

    def time(self, moment: datetime) -> str:
        return self._format(moment, "format.time")

    def day(self, moment: datetime) -> str:
        return self._format(moment, "format.day")

    def _format(self, moment: datetime, key: str) -> str:
        # The pattern (CLDR syntax) is part of the catalogue, like the words around it.
        pattern = self.catalog.template(self.language, key)
        return str(format_datetime(moment, pattern, locale=_locale(self.language)))


def commands_for(text: str, platform: str) -> str:
    """A text translated for ``ANY_PLATFORM``, with its commands as typed on ``platform``."""
    return text.replace(COMMAND_MARK, COMMAND_PREFIX.get(platform, "/"))
