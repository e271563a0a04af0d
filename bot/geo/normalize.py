"""Normalisation of French commune names for matching.

``name_key("Saint-Loup-sur-Semouse") == name_key("st loup s/ semouse")``: case and accents are
ignored, hyphens, apostrophes, dots and spaces are equivalent, ``St``/``Ste`` stand for
``Saint``/``Sainte`` and ``s/`` for ``sur``. ``strip_article`` removes a leading article
("La Roche-Morey" -> "roche morey").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["ARTICLES", "name_key", "strip_article"]

ARTICLES = frozenset({"le", "la", "les", "l", "aux", "las", "los"})

_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_SUR = re.compile(r"(?<![^\W_])s\s*/\s*", re.UNICODE)  # "s/" as a word -> "sur "
_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)


def name_key(text: str) -> str:
    """Return the matching key of a name: lower case ASCII-ish words separated by one space."""
    text = text.translate(_LIGATURES)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _SUR.sub(" sur ", text)
    words = [w for w in _SEPARATORS.split(text) if w]
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


def strip_article(key: str) -> str:
    """Remove a leading article from a key made by :func:`name_key` (never empties it)."""
    first, sep, rest = key.partition(" ")
    if sep and rest and first in ARTICLES:
        return rest
    return key
