"""OASIS CAP 1.2 (Common Alerting Protocol): export our alerts, import others' as drafts.

* :func:`alert_to_cap` — a :class:`CapAlert` as schema-valid CAP XML;
  :func:`cap_alert_from_alert` builds the ``CapAlert`` of a stored alert (:func:`cap_source`
  reads what it needs as data, :func:`cap_alert_from_source` does the rest after commit).
* :func:`cap_to_draft` — untrusted CAP XML to a :class:`CapDraft`, or :class:`CapError`.

Mappings between our categories/severities and CAP's are in :mod:`bot.cap.mapping`; the
OASIS schema is ``bot/cap/CAP-v1.2.xsd``; messages are in ``bot/locales/cap.*.yaml``.
"""

from bot.cap.errors import CapError
from bot.cap.export import (
    CapAlert,
    CapArea,
    CapSettings,
    CapSource,
    alert_to_cap,
    area_from_perimeter_json,
    cap_alert_from_alert,
    cap_alert_from_source,
    cap_source,
)
from bot.cap.importer import MAX_BYTES, CapDraft, cap_to_draft
from bot.cap.mapping import cap_categories, cap_levels, guess_category
from bot.cap.model import CapCircle, CapReference
from bot.cap.schema import CAP_NS, SCHEMA_PATH

__all__ = [
    "CAP_NS",
    "MAX_BYTES",
    "SCHEMA_PATH",
    "CapAlert",
    "CapArea",
    "CapCircle",
    "CapDraft",
    "CapError",
    "CapReference",
    "CapSettings",
    "CapSource",
    "alert_to_cap",
    "area_from_perimeter_json",
    "cap_alert_from_alert",
    "cap_alert_from_source",
    "cap_categories",
    "cap_levels",
    "cap_source",
    "cap_to_draft",
    "guess_category",
]
