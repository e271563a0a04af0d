"""Message catalogues: ``bot/locales/<area>.<lang>.yaml``, flat ``key: text`` mappings.

French is the reference language; a key missing in another language falls back to
French so a half-translated catalogue never leaves a user without an answer.
"""

from __future__ import annotations

from pathlib import Path

from bot.resources import package_path
from bot.yamltext import load_yaml

LOCALES_DIR = package_path("bot", "locales")
REFERENCE_LANGUAGE = "fr"
LANGUAGES = ("fr", "en")


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
        template = self._texts.get(language, {}).get(key)
        if template is None:
            template = self._texts[REFERENCE_LANGUAGE][key]  # KeyError = a bug, caught by tests
        return template.format(**params) if params else template


class Translator:
    """A catalogue bound to one person's language."""

    def __init__(self, catalog: Catalog, language: str) -> None:
        self.catalog = catalog
        self.language = language

    def __call__(self, key: str, **params: object) -> str:
        return self.catalog.text(self.language, key, **params)
