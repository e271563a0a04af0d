"""Every message key the code uses exists in French and English, with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

from bot.i18n import Catalog

BOT = Path(__file__).resolve().parent.parent / "bot"
AREAS = ("core", "conversation", "help", "enroll", "places", "subscriber", "alert", "alerts",
         "copy", "place", "people",
         "status", "approval", "render", "guided", "group", "perimeter", "lifecycle",
         "schedule", "tip", "receipt", "stats", "consent", "roles", "throttle", "maps", "cap",
         "capcmd", "format", "quantity", "photo", "invite")
AUDIT_ACTION = re.compile(
    r"""(?:audit\(|record\(\s*\w+,\s*(?:"[^"]*"|\w+),)\s*f?["']([a-z_.{}]+)["']""")
AREA = "|".join(AREAS)
KEY_LITERAL = re.compile(rf"""["']((?:{AREA})\.[a-z_]+(?:\.[a-z_]+)*)["']""")
DYNAMIC = {
    "status.{}": ("pending", "approved", "rejected", "broadcasting", "done", "expired",
                  "withdrawn"),
    "subscriber.status.{}": ("active", "paused", "blocked"),
    "conversation.timed_out.{}": ("enrollment", "alert", "unsubscribe", "tip"),
    "lifecycle.closed.{}": ("ended", "expired", "recalled"),
    "lifecycle.kind.{}": ("alert", "update", "all_clear", "closing", "recall", "expiry",
                          "redact"),
    "schedule.rule.{}": ("once", "weekly"),
    "render.closed_{}": ("ended", "expired"),
    "roles.name.{}": ("operator", "officer", "admin"),
    "invite.state.{}": ("active", "revoked", "expired", "exhausted"),
    "invite.refused.{}": ("revoked", "expired", "exhausted"),
}


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in BOT.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        # Audit action names look like keys but name events, not messages.
        keys |= set(KEY_LITERAL.findall(AUDIT_ACTION.sub("", source)))
    keys = {key for key in keys if not key.endswith(".yaml")}  # file names, not keys
    for pattern, values in DYNAMIC.items():
        keys |= {pattern.format(value) for value in values}
    return keys


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_every_used_key_exists_in_both_languages() -> None:
    catalog = Catalog.load()
    used = used_keys()
    assert len(used) > 100
    assert used - catalog.keys("fr") == set()
    assert used - catalog.keys("en") == set()


def entry_placeholders(catalog: Catalog, language: str, key: str) -> set[str]:
    """Every form's placeholders; a plural entry takes ``count`` even where a form (« une
    commune ») does not show it."""
    fields = set().union(*(placeholders(t) for t in catalog.templates(language, key)))
    return fields if isinstance(catalog.entry(language, key), str) else fields | {"count"}


def test_languages_have_the_same_keys_and_placeholders() -> None:
    catalog = Catalog.load()
    assert catalog.keys("fr") == catalog.keys("en")
    for key in catalog.keys("fr"):
        french, english = catalog.entry("fr", key), catalog.entry("en", key)
        # Plural in one language, plural in the other: the caller gives count either way.
        assert isinstance(french, str) == isinstance(english, str), key
        assert entry_placeholders(catalog, "fr", key) == entry_placeholders(
            catalog, "en", key), key


def test_no_text_hedges_a_plural_with_parentheses() -> None:
    """« destinataire(s) », "cop(ies)": a count reads « 1 destinataire », « 2 copies »
    with a plural entry (bot/i18n.py) instead."""
    catalog = Catalog.load()
    hedged = re.compile(r"\w\((?:s|x|e|es|ies|y)\)")
    found = {(language, key) for language in ("fr", "en") for key in catalog.keys(language)
             for template in catalog.templates(language, key) if hedged.search(template)}
    assert found == set()


def test_every_plural_entry_reads_for_any_count() -> None:
    catalog = Catalog.load()
    plural = [key for key in catalog.keys("fr") if not isinstance(catalog.entry("fr", key), str)]
    assert len(plural) > 20
    for language in ("fr", "en"):
        for key in plural:
            params = {name: "x" for name in entry_placeholders(catalog, language, key)}
            for count in (0, 1, 2, 1_000, 1_000_000):
                assert catalog.text(language, key, **{**params, "count": count})
