"""Export an alert as a CAP 1.2 message.

:func:`alert_to_cap` writes a :class:`CapAlert` (exactly what the message carries) as XML and
checks it against the OASIS schema. :func:`cap_alert_from_alert` builds that ``CapAlert`` from
a stored :class:`~bot.storage.alerts.Alert`, in two halves: :func:`cap_source` (what is read
from the database, plain data) and :func:`cap_alert_from_source` (the geometry, CPU work, done
after commit by bot/deferred.py).

The area of every message lists all the alert's communes as ``geocode`` (valueName ``INSEE``):
that list is authoritative. When the perimeter has a geometry it is added as well, for
receivers that work with shapes: a point with a radius becomes a ``circle`` (centre and radius
of the perimeter — for "Vesoul+5km" that circle lies inside the real zone, which is measured
from the commune's boundary), a polygon becomes one ``polygon`` per outer ring (holes cannot
be expressed in CAP and are dropped; a polygon with a radius is first widened by it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from bot.cap.mapping import CATEGORY_EVENT_CODE, cap_categories, cap_levels
from bot.cap.model import CapCircle, CapReference, check_aware, check_token, number
from bot.cap.schema import CAP_NS, etree, first_schema_error, format_time, schema
from bot.geo.communes import CommuneLayer, to_l93, to_wgs84
from bot.limits import CAP_HEADLINE_CHARS as HEADLINE_MAX
from bot.reference import Category, fold
from bot.storage.alerts import Alert

__all__ = [
    "HEADLINE_MAX",
    "CapAlert",
    "CapArea",
    "CapCircle",
    "CapReference",
    "CapSettings",
    "CapSource",
    "alert_to_cap",
    "area_from_perimeter_json",
    "cap_alert_from_alert",
    "cap_alert_from_source",
    "cap_source",
]

STATUSES = ("Actual", "Exercise")
MSG_TYPES = ("Alert", "Update", "Cancel")
# Characters XML 1.0 cannot carry at all; they are replaced by a space.
_XML_ILLEGAL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MAX_RING_POINTS = 1000  # per CAP polygon; denser rings are simplified


@dataclass(frozen=True, slots=True)
class CapArea:
    """``areaDesc`` text, the INSEE codes, and an optional shape (WGS84, lon/lat)."""

    description: str
    communes: tuple[str, ...]
    polygon: BaseGeometry | None = None
    circle: CapCircle | None = None

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError("CAP areaDesc must not be empty")
        if not (self.communes or self.polygon is not None or self.circle is not None):
            raise ValueError("a CAP area needs communes, a polygon or a circle")


@dataclass(frozen=True, slots=True)
class CapAlert:
    """Everything one CAP 1.2 message says, in our terms where CAP has a fixed vocabulary.

    ``category`` is our category key and ``severity_level`` our low/medium/high: the CAP
    ``category``, ``urgency``, ``severity`` and ``certainty`` are derived from them (see
    :mod:`bot.cap.mapping`). ``event`` is the category's label.
    """

    identifier: str
    sender: str
    sent: datetime
    status: str  # Actual | Exercise
    msg_type: str  # Alert | Update | Cancel
    category: str
    severity_level: str
    event: str
    sender_name: str
    headline: str
    description: str
    onset: datetime
    expires: datetime
    area: CapArea
    audience: tuple[str, ...] = ()
    references: tuple[CapReference, ...] = ()
    incidents: str | None = None
    note: str | None = None
    language: str = "fr-FR"
    web: str | None = None
    contact: str | None = None
    extra_event_codes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_token("identifier", self.identifier)
        check_token("sender", self.sender)
        if self.incidents is not None:
            check_token("incidents", self.incidents)
        for what, moment in (("sent", self.sent), ("onset", self.onset),
                             ("expires", self.expires)):
            check_aware(what, moment)
        if self.status not in STATUSES:
            raise ValueError(f"CAP status must be one of {STATUSES}, not {self.status!r}")
        if self.msg_type not in MSG_TYPES:
            raise ValueError(f"CAP msgType must be one of {MSG_TYPES}, not {self.msg_type!r}")
        if self.msg_type != "Alert" and not self.references:
            raise ValueError(f"a CAP {self.msg_type} must reference the message(s) it replaces")
        if not self.event.strip():
            raise ValueError("CAP event must not be empty")


@dataclass(frozen=True, slots=True)
class CapSettings:
    """Who we are in CAP messages; one per deployment (département)."""

    sender: str = "alerte-70@gendarmerie.interieur.gouv.fr"
    sender_name: str = "Gendarmerie nationale — Groupement de la Haute-Saône"
    identifier_prefix: str = "fr.gendarmerie.70"
    timezone: str = "Europe/Paris"
    web: str | None = None
    contact: str | None = None

    def __post_init__(self) -> None:
        check_token("sender", self.sender)
        check_token("identifier prefix", self.identifier_prefix)
        ZoneInfo(self.timezone)  # raises if unknown

    def identifier(self, alert_id: int, revision: int = 0) -> str:
        """``fr.gendarmerie.70.alerte.12`` for the alert, ``….12.2`` for its 2nd revision."""
        base = f"{self.identifier_prefix}.alerte.{alert_id}"
        return base if revision == 0 else f"{base}.{revision}"


# ---------------------------------------------------------------------------- text helpers


def _clean(text: str) -> str:
    return _XML_ILLEGAL_RE.sub(" ", text)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------- geometry


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    """The polygonal parts of any geometry, flattened (points and lines are dropped)."""
    if geometry.is_empty:
        return []
    if isinstance(geometry, Polygon):
        return [geometry]
    members = getattr(geometry, "geoms", ())
    return [polygon for member in members for polygon in _polygons(member)]


def _ring_text(polygon: Polygon) -> str | None:
    ring = polygon.exterior
    tolerance = 1e-5
    while len(ring.coords) > _MAX_RING_POINTS and tolerance < 1:
        ring = shapely.simplify(polygon, tolerance, preserve_topology=True).exterior
        tolerance *= 2
    coords = list(ring.coords)
    if len(coords) < 4:
        return None
    pairs = [f"{number(lat)},{number(lon)}" for lon, lat, *_ in coords]
    pairs[-1] = pairs[0]  # closed, whatever the rounding
    return " ".join(pairs)


def _polygon_texts(geometry: BaseGeometry) -> list[str]:
    return [text for text in map(_ring_text, _polygons(geometry)) if text is not None]


# ---------------------------------------------------------------------------- XML


def _sub(parent: Any, name: str, text: str | None = None) -> Any:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        element.text = _clean(text)
    return element


def _pair(parent: Any, name: str, value_name: str, value: str) -> None:
    element = _sub(parent, name)
    _sub(element, "valueName", value_name)
    _sub(element, "value", value)


def alert_to_cap(alert: CapAlert) -> bytes:
    """The CAP 1.2 XML (UTF-8, with declaration) of ``alert``, checked against the schema.

    Raises ValueError if the message would not be schema-valid (a bug or bad data).
    """
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", alert.identifier)
    _sub(root, "sender", alert.sender)
    _sub(root, "sent", format_time(alert.sent))
    _sub(root, "status", alert.status)
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "scope", "Public")
    if alert.note:
        _sub(root, "note", alert.note)
    if alert.references:
        _sub(root, "references", " ".join(ref.text() for ref in alert.references))
    if alert.incidents:
        _sub(root, "incidents", alert.incidents)

    info = _sub(root, "info")
    _sub(info, "language", alert.language)
    for category in cap_categories(alert.category):
        _sub(info, "category", category)
    _sub(info, "event", alert.event)
    urgency, severity, certainty = cap_levels(alert.severity_level)
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty)
    audience = ", ".join(label.strip() for label in alert.audience if label.strip())
    if audience:
        _sub(info, "audience", audience)
    _pair(info, "eventCode", CATEGORY_EVENT_CODE, alert.category)
    for name, value in alert.extra_event_codes:
        _pair(info, "eventCode", name, value)
    _sub(info, "onset", format_time(alert.onset))
    _sub(info, "expires", format_time(alert.expires))
    _sub(info, "senderName", alert.sender_name)
    headline = _shorten(alert.headline, HEADLINE_MAX)
    if headline:
        _sub(info, "headline", headline)
    _sub(info, "description", alert.description)
    if alert.web:
        _sub(info, "web", alert.web)
    if alert.contact:
        _sub(info, "contact", alert.contact)

    area = _sub(info, "area")
    _sub(area, "areaDesc", alert.area.description)
    if alert.area.polygon is not None:
        for text in _polygon_texts(alert.area.polygon):
            _sub(area, "polygon", text)
    if alert.area.circle is not None:
        _sub(area, "circle", alert.area.circle.text())
    for code in alert.area.communes:
        _pair(area, "geocode", "INSEE", code)

    validator = schema()
    if not validator.validate(root):
        line, message = first_schema_error(validator)
        raise ValueError(f"exported CAP message is not schema-valid (line {line}): {message}")
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                 pretty_print=True)
    return data


# ---------------------------------------------------------------------------- from our alerts


def _moment(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


def area_from_perimeter_json(perimeter_json: str, communes: Iterable[str],
                             layer: CommuneLayer) -> CapArea:
    """The CAP area of a stored perimeter (``alerts.perimeter_json``) and its communes.

    ``perimeter_json`` holds ``text``, ``center`` ([lat, lon] or null), ``radius_m`` and
    ``polygon`` (WKT, WGS84 lon/lat, or null), as written by ``bot.alert_approval.perimeter_json``.
    """
    data = json.loads(perimeter_json)
    text = str(data.get("text") or "").strip()
    codes = tuple(sorted(set(communes)))
    names = sorted(
        ((commune.name if (commune := layer.by_insee(code)) else code) for code in codes),
        key=lambda name: (fold(name), name))
    description = f"{text} : {', '.join(names)}" if text and names else (text or ", ".join(names))
    radius = data.get("radius_m")
    radius_m = float(radius) if radius is not None else None
    polygon: BaseGeometry | None = None
    circle: CapCircle | None = None
    if data.get("polygon"):
        polygon = shapely.from_wkt(data["polygon"])
        if radius_m:
            polygon = to_wgs84(to_l93(polygon).buffer(radius_m, quad_segs=8))
    elif data.get("center") and radius_m is not None:
        lat, lon = data["center"]
        circle = CapCircle(float(lat), float(lon), radius_m)
    return CapArea(description or "?", codes, polygon, circle)


@dataclass(frozen=True, slots=True)
class CapSource:
    """What the CAP message of a stored alert is made from, as plain data: read in the
    event's transaction, made into a :class:`CapAlert` and XML after commit, in a worker
    thread (bot/deferred.py), with no database read; its JSON form (``as_data``) is stored
    in the reply outbox, so a restart makes the same message from it."""

    alert_id: int
    category: str  # our key; the label and severity below are the reference's
    category_label: str
    severity_level: str
    perimeter: str  # the perimeter as typed (the headline)
    perimeter_json: str  # ``alerts.perimeter_json`` (the area's geometry)
    body: str
    facts_at: datetime
    expires_at: datetime
    communes: tuple[str, ...]
    sent: datetime
    settings: CapSettings
    audience: tuple[str, ...] = ()
    status: str = "Actual"
    msg_type: str = "Alert"
    references: tuple[CapReference, ...] = ()
    revision: int = 0
    note: str | None = None

    def as_data(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 with their offset."""
        def moment(value: datetime) -> str:
            check_aware("source time", value)
            return value.isoformat()

        settings = self.settings
        return {
            "alert_id": self.alert_id, "category": self.category,
            "category_label": self.category_label, "severity_level": self.severity_level,
            "perimeter": self.perimeter, "perimeter_json": self.perimeter_json,
            "body": self.body, "facts_at": moment(self.facts_at),
            "expires_at": moment(self.expires_at), "communes": list(self.communes),
            "sent": moment(self.sent),
            "settings": {"sender": settings.sender, "sender_name": settings.sender_name,
                         "identifier_prefix": settings.identifier_prefix,
                         "timezone": settings.timezone, "web": settings.web,
                         "contact": settings.contact},
            "audience": list(self.audience), "status": self.status, "msg_type": self.msg_type,
            "references": [[r.sender, r.identifier, moment(r.sent)] for r in self.references],
            "revision": self.revision, "note": self.note,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CapSource:
        moment = datetime.fromisoformat
        return cls(
            alert_id=int(data["alert_id"]), category=data["category"],
            category_label=data["category_label"], severity_level=data["severity_level"],
            perimeter=data["perimeter"], perimeter_json=data["perimeter_json"],
            body=data["body"], facts_at=moment(data["facts_at"]),
            expires_at=moment(data["expires_at"]), communes=tuple(data["communes"]),
            sent=moment(data["sent"]), settings=CapSettings(**data["settings"]),
            audience=tuple(data["audience"]), status=data["status"],
            msg_type=data["msg_type"],
            references=tuple(CapReference(sender, identifier, moment(sent))
                             for sender, identifier, sent in data["references"]),
            revision=int(data["revision"]), note=data["note"])


def cap_source(
    alert: Alert,
    *,
    category: Category,
    communes: Iterable[str],
    sent: datetime,
    settings: CapSettings | None = None,
    audience: Sequence[str] = (),
    status: str = "Actual",
    msg_type: str = "Alert",
    references: Sequence[CapReference] = (),
    revision: int = 0,
    note: str | None = None,
) -> CapSource:
    """What the CAP message of a stored alert needs (cheap: no geometry, no XML).

    ``communes``: the alert's INSEE codes (``AlertStore.communes``); ``audience``: labels of
    the targeted communities; ``revision``: 0 for the first message about the alert, then
    1, 2… for its Updates and Cancel (each CAP message needs its own identifier).
    """
    return CapSource(
        alert_id=alert.id, category=category.key, category_label=category.label,
        severity_level=category.severity, perimeter=alert.perimeter,
        perimeter_json=alert.perimeter_json, body=alert.body, facts_at=alert.facts_at,
        expires_at=alert.expires_at, communes=tuple(communes), sent=sent,
        settings=settings or CapSettings(), audience=tuple(audience), status=status,
        msg_type=msg_type, references=tuple(references), revision=revision, note=note)


def cap_alert_from_source(source: CapSource, layer: CommuneLayer) -> CapAlert:
    """The CAP message of ``source``: the area's geometry is worked out here (CPU)."""
    settings = source.settings
    zone = ZoneInfo(settings.timezone)
    area = area_from_perimeter_json(source.perimeter_json, source.communes, layer)
    return CapAlert(
        identifier=settings.identifier(source.alert_id, source.revision),
        sender=settings.sender,
        sent=source.sent.astimezone(zone),
        status=source.status,
        msg_type=source.msg_type,
        category=source.category,
        severity_level=source.severity_level,
        event=source.category_label,
        sender_name=settings.sender_name,
        headline=f"{source.category_label} — {source.perimeter}",
        description=source.body,
        onset=_moment(source.facts_at, zone),
        expires=_moment(source.expires_at, zone),
        area=area,
        audience=source.audience,
        references=source.references,
        incidents=settings.identifier(source.alert_id),
        note=source.note,
        web=settings.web,
        contact=settings.contact,
    )


def cap_alert_from_alert(
    alert: Alert,
    *,
    category: Category,
    communes: Iterable[str],
    layer: CommuneLayer,
    sent: datetime,
    settings: CapSettings | None = None,
    audience: Sequence[str] = (),
    status: str = "Actual",
    msg_type: str = "Alert",
    references: Sequence[CapReference] = (),
    revision: int = 0,
    note: str | None = None,
) -> CapAlert:
    """The CAP message for a stored alert, in one go (see :func:`cap_source`)."""
    return cap_alert_from_source(cap_source(
        alert, category=category, communes=communes, sent=sent, settings=settings,
        audience=audience, status=status, msg_type=msg_type, references=references,
        revision=revision, note=note), layer)
