"""How our alert categories and severities map to CAP's fixed vocabularies, and back.

Categories (CAP 1.2 §3.2.2, ``category``)::

    vol, cambriolage, agression, escroquerie,
    recherche (targeted search)             -> Security  (law enforcement, public order)
    disparition                             -> Rescue    (search for a person; the OASIS
                                                          Amber-alert example uses Rescue)
    crue                                    -> Met       (the standard defines Met as
                                                          "Meteorological (inc. flood)")
    prevention                              -> Safety    (general public safety)
    any other key                           -> Other

Severity levels (``config/categories.yaml``) -> urgency / severity / certainty::

    high   -> Immediate / Severe   / Observed   act now; the facts were seen or reported
    medium -> Expected  / Moderate / Likely     act within the hour; a repeat is likely
    low    -> Future    / Minor    / Possible   advice, nothing imminent
    other  -> Unknown   / Unknown  / Unknown

"Extreme" is never claimed: a local gendarmerie alert does not declare an extraordinary
threat to life on its own; the prefecture's own CAP feed does that.

On import, the category is guessed (the operator still confirms it) from, in order: our own
event code (``fr.gendarmerie.alerte.categorie``), words of the ``event`` text, then a CAP
category that only one of our categories uses (Met -> crue, Rescue -> disparition, Safety ->
prevention; Security is shared, so it decides nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bot.reference import fold

__all__ = [
    "CAP_CATEGORIES",
    "CATEGORY_EVENT_CODE",
    "DEFAULT_CATEGORIES",
    "cap_categories",
    "cap_levels",
    "guess_category",
]

# valueName of the eventCode carrying our own category key, so a round trip is exact.
CATEGORY_EVENT_CODE = "fr.gendarmerie.alerte.categorie"

CAP_CATEGORIES = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)

_CATEGORY_TO_CAP: dict[str, tuple[str, ...]] = {
    "vol": ("Security",),
    "cambriolage": ("Security",),
    "agression": ("Security",),
    "escroquerie": ("Security",),
    "disparition": ("Rescue",),
    "recherche": ("Security",),
    "crue": ("Met",),
    "prevention": ("Safety",),
}

# Labels from config/categories.yaml, used when the caller gives no catalogue of its own.
DEFAULT_CATEGORIES: dict[str, str] = {
    "vol": "Vol",
    "cambriolage": "Cambriolage",
    "agression": "Agression",
    "escroquerie": "Escroquerie (faux moyen de paiement, fausse qualité, « rendez-moi »)",
    "prevention": "Prévention",
    "disparition": "Disparition inquiétante",
    "recherche": "Recherche ciblée",
    "crue": "Protection civile — crue, inondation",
}

_LEVELS: dict[str, tuple[str, str, str]] = {
    "high": ("Immediate", "Severe", "Observed"),
    "medium": ("Expected", "Moderate", "Likely"),
    "low": ("Future", "Minor", "Possible"),
}

# Words (accents folded, whole words, optional plural) that point to a category, French
# first, then the English a foreign CAP feed might use.
_EVENT_WORDS: tuple[tuple[str, str], ...] = (
    ("cambriolage", r"cambriolages?|burglar(?:y|ies)|home invasion"),
    ("escroquerie", r"escroquer(?:ie|ies)|arnaques?|fraudes?|faux|fausses?|fraud|scams?"),
    ("agression", r"agressions?|violences?|assaults?|attaques?"),
    ("recherche", r"recherches? ciblees?|avis de recherche|wanted|manhunt"),
    ("disparition", r"disparitions?|disparue?s?|enlevements?|alerte enlevement|amber|missing"),
    ("crue", r"crues?|inondations?|floods?|flooding|debordements?"),
    ("prevention", r"preventions?|conseils?|prevention advice"),
    ("vol", r"vols?|volee?s?|voleurs?|theft|thefts|robber(?:y|ies)|stolen"),
)
_EVENT_PATTERNS = tuple((key, re.compile(rf"\b(?:{words})\b")) for key, words in _EVENT_WORDS)


def cap_categories(category_key: str) -> tuple[str, ...]:
    """CAP ``category`` values for one of our category keys (``("Other",)`` if unknown)."""
    return _CATEGORY_TO_CAP.get(category_key, ("Other",))


def cap_levels(severity: str) -> tuple[str, str, str]:
    """(urgency, severity, certainty) for one of our severity levels."""
    return _LEVELS.get(severity, ("Unknown", "Unknown", "Unknown"))


def guess_category(
    event_codes: Iterable[tuple[str, str]],
    event: str,
    categories: Iterable[str],
    known: Mapping[str, str],
) -> str | None:
    """Our category key for an imported message, or None when nothing points to one.

    ``event_codes``: (valueName, value) pairs; ``categories``: CAP category values;
    ``known``: our categories (key -> label) that may be returned.
    """
    for name, value in event_codes:
        if name.strip().lower() == CATEGORY_EVENT_CODE and value.strip() in known:
            return value.strip()
    folded = fold(event)
    if folded:
        for key, label in known.items():
            if folded in (fold(label), fold(key)):
                return key
        for key, pattern in _EVENT_PATTERNS:
            if key in known and pattern.search(folded):
                return key
    for cap_category in categories:
        users = [key for key in known if cap_category in cap_categories(key)]
        if len(users) == 1 and cap_category != "Other":
            return users[0]
    return None
