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
"""

from __future__ import annotations

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
    def __init__(self, texts: dict[str, dict[str, Entry]]) -> None:
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

    def entry(self, language: str, key: str) -> Entry:
        found = self._texts.get(language, {}).get(key)
        if found is None:
            return self._texts[REFERENCE_LANGUAGE][key]  # KeyError = a bug, caught by tests
        return found

    def templates(self, language: str, key: str) -> tuple[str, ...]:
        """Every template of the entry: one, or one per plural form."""
        found = self.entry(language, key)
        return (found,) if isinstance(found, str) else tuple(found.values())

    def text(self, language: str, key: str, **params: object) -> str:
        found = self.entry(language, key)
        if isinstance(found, str):
            return found.format(**params) if params else found
        count = params.get("count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"{key} has plural forms: give count=<int>, not {count!r}")
        category = "zero" if count == 0 and "zero" in found else plural_category(language, count)
        template = found.get(category, found["other"])
        return template.format(**{**params, "count": format_number(count, language)})


class Translator:
    """A catalogue bound to one person's language."""

    def __init__(self, catalog: Catalog, language: str) -> None:
        self.catalog = catalog
        self.language = language

    def __call__(self, key: str, **params: object) -> str:
        return self.catalog.text(self.language, key, **params)

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
        return str(format_datetime(moment, self(key), locale=_locale(self.language)))
