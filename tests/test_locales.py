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
         "capcmd", "photo")
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


def test_languages_have_the_same_keys_and_placeholders() -> None:
    catalog = Catalog.load()
    assert catalog.keys("fr") == catalog.keys("en")
    for key in catalog.keys("fr"):
        french, english = catalog.text("fr", key), catalog.text("en", key)
        assert placeholders(french) == placeholders(english), key
