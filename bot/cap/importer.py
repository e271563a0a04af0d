"""Import a CAP 1.2 message as a draft alert.

:func:`cap_to_draft` takes untrusted bytes and returns a :class:`CapDraft`, or raises
:class:`~bot.cap.errors.CapError` — and nothing else, whatever the bytes. The XML is read by a
hardened parser (no DTD, no entities, no network; a DOCTYPE is refused), must be in the CAP
1.2 namespace and valid against the OASIS schema.

The area is the union, over the ``area`` blocks of the chosen ``info`` (the first in French,
else the first), of:

* ``geocode`` named ``INSEE`` or ``INSEE_COM`` (any case): those communes. A code of a loaded
  département that the layer does not know is an error (a typo); codes of départements that
  are not loaded are set aside in ``ignored_codes``;
* ``polygon``: the communes sharing some area with it;
* ``circle``: the communes within the radius of its centre.

Other geocodes (EMMA_ID, NUTS…) are ignored. Nothing resolved is an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from bot.cap.errors import CapError
from bot.cap.mapping import DEFAULT_CATEGORIES, guess_category
from bot.cap.model import CapCircle, CapReference, number
from bot.cap.schema import CAP_NS, NS, etree, first_schema_error, hardened_parser, schema
from bot.geo.communes import CommuneLayer
from bot.limits import CAP_DOCUMENT_BYTES as MAX_BYTES

__all__ = ["MAX_BYTES", "CapDraft", "cap_to_draft"]

INSEE_GEOCODE_NAMES = ("INSEE", "INSEE_COM")
_SHOW_CHARS = 60
_MAX_LISTED_CODES = 20  # in perimeter_text; more are summarised
_FORBIDDEN_MARKUP = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_INSEE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_COMMA_SPACES = re.compile(r"\s*,\s*")
_MIN_POLYGON_AREA = 1e-10  # square degrees, about 1 m²: below, a polygon is a line or a point


@dataclass(frozen=True, slots=True)
class CapDraft:
    """What an imported CAP message proposes; the operator reviews it before any alert."""

    identifier: str
    sender: str
    sent: datetime
    status: str  # Actual | Exercise | System | Test | Draft
    msg_type: str  # Alert | Update | Cancel | Ack | Error
    references: tuple[CapReference, ...]
    category: str | None  # our category key, guessed; None if nothing points to one
    event: str
    cap_categories: tuple[str, ...]
    urgency: str
    severity: str
    certainty: str
    language: str
    headline: str | None
    description: str | None
    instruction: str | None
    onset: datetime | None
    expires: datetime | None
    area_desc: str
    communes: frozenset[str]  # INSEE codes
    perimeter_text: str  # e.g. "47.62,6.155+3km, cap:polygon, 70550"
    polygon: BaseGeometry | None  # union of the CAP polygons, WGS84 (lon, lat)
    circles: tuple[CapCircle, ...]
    ignored_codes: tuple[str, ...]  # INSEE codes of départements that are not loaded


# ---------------------------------------------------------------------------- small helpers


def _show(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def _text(element: Any) -> str:
    if element is None:
        return ""
    return str(element.text or "").strip()


def _child_text(parent: Any, name: str) -> str:
    return _text(parent.find(f"cap:{name}", NS))


def _optional(parent: Any, name: str) -> str | None:
    return _child_text(parent, name) or None


def _time(field: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CapError("cap.bad_date", field=field, value=_show(text)) from None
    if moment.utcoffset() is None:
        raise CapError("cap.bad_date", field=field, value=_show(text))
    return moment


def _optional_time(parent: Any, name: str) -> datetime | None:
    text = _child_text(parent, name)
    return _time(name, text) if text else None


def _as_bytes(xml: object) -> bytes:
    if isinstance(xml, bytes):
        return xml
    if isinstance(xml, bytearray | memoryview):
        return bytes(xml)
    if isinstance(xml, str):
        return xml.encode("utf-8", errors="surrogatepass")
    raise CapError("cap.not_xml", error=type(xml).__name__)


def _radius_text(meters: float) -> str:
    if meters >= 1000:
        return number(meters / 1000, 3) + "km"
    return number(meters, 2) + "m"


# ---------------------------------------------------------------------------- parsing


def _parse(data: bytes, max_bytes: int) -> Any:
    if len(data) > max_bytes:
        raise CapError("cap.too_large", size=str(len(data)), max=str(max_bytes))
    if not data.strip():
        raise CapError("cap.empty")
    if _FORBIDDEN_MARKUP.search(data):
        raise CapError("cap.dtd_forbidden")
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise CapError("cap.not_xml", error=_show(str(exc.msg or exc))) from None
    except (etree.Error, ValueError, TypeError) as exc:
        raise CapError("cap.not_xml", error=_show(str(exc) or type(exc).__name__)) from None
    if root is None:
        raise CapError("cap.empty")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CapError("cap.dtd_forbidden")
    if any(True for _ in root.iter(etree.Entity)):
        raise CapError("cap.dtd_forbidden")
    qname = etree.QName(root)
    if qname.namespace != CAP_NS or qname.localname != "alert":
        found = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
        raise CapError("cap.not_cap12", found=_show(found))
    validator = schema()
    if not validator.validate(root):
        line, message = first_schema_error(validator)
        raise CapError("cap.schema_invalid", line=line, error=message)
    return root


def _references(text: str) -> tuple[CapReference, ...]:
    references: list[CapReference] = []
    for token in text.split():
        parts = token.split(",")
        if len(parts) != 3:
            raise CapError("cap.bad_references", value=_show(token))
        sender, identifier, sent = parts
        try:
            references.append(CapReference(sender, identifier, _time("references", sent)))
        except (ValueError, CapError):
            raise CapError("cap.bad_references", value=_show(token)) from None
    return tuple(references)


def _coordinate(token: str) -> tuple[float, float] | None:
    """(lat, lon) from "lat,lon", or None if it is not a valid WGS84 position."""
    parts = token.split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        return None
    return lat, lon


def _polygon(text: str) -> BaseGeometry:
    shown = _show(text)
    points: list[tuple[float, float]] = []
    for token in _COMMA_SPACES.sub(",", text).split():
        position = _coordinate(token)
        if position is None:
            raise CapError("cap.polygon_syntax", polygon=shown, pair=_show(token))
        points.append((position[1], position[0]))
    if len(points) < 4:
        raise CapError("cap.polygon_too_few_points", polygon=shown, count=str(len(points)))
    if points[0] != points[-1]:
        raise CapError("cap.polygon_not_closed", polygon=shown)
    try:
        polygon: BaseGeometry = Polygon(points)
        if not polygon.is_valid:
            repaired = shapely.make_valid(polygon)
            parts = [p for p in shapely.get_parts(repaired)
                     if p.geom_type in ("Polygon", "MultiPolygon")]
            polygon = shapely.union_all(parts) if parts else shapely.Polygon()
    except (shapely.errors.GEOSException, ValueError):
        raise CapError("cap.polygon_invalid", polygon=shown) from None
    if polygon.is_empty or not polygon.area > _MIN_POLYGON_AREA:
        raise CapError("cap.polygon_invalid", polygon=shown)
    return polygon


def _circle(text: str, max_radius_km: float) -> CapCircle:
    shown = _show(text)
    tokens = _COMMA_SPACES.sub(",", text).split()
    position = _coordinate(tokens[0]) if len(tokens) == 2 else None
    if position is None:
        raise CapError("cap.circle_syntax", circle=shown)
    try:
        radius_km = float(tokens[1])
    except ValueError:
        raise CapError("cap.circle_syntax", circle=shown) from None
    if not (math.isfinite(radius_km) and radius_km >= 0):
        raise CapError("cap.circle_syntax", circle=shown)
    if radius_km > max_radius_km:
        raise CapError("cap.circle_radius_too_large", circle=shown,
                       max_km=number(max_radius_km, 3))
    return CapCircle(position[0], position[1], radius_km * 1000)


def _insee(value: str) -> str | None:
    code = value.strip().upper()
    if len(code) == 4 and code.isdigit():  # leading zero lost by a spreadsheet
        code = "0" + code
    return code if _INSEE_RE.match(code) else None


def _departement(code: str) -> str:
    return code[:3] if code.startswith("97") else code[:2]


# ---------------------------------------------------------------------------- the area


@dataclass
class _Area:
    descriptions: list[str]
    geocoded: set[str]
    unknown: list[str]
    ignored: list[str]
    polygons: list[BaseGeometry]
    circles: list[CapCircle]


def _read_areas(areas: list[Any], layer: CommuneLayer, max_radius_km: float) -> _Area:
    result = _Area([], set(), [], [], [], [])
    loaded = layer.departements()
    for area in areas:
        description = _child_text(area, "areaDesc")
        if description:
            result.descriptions.append(description)
        for element in area.findall("cap:polygon", NS):
            result.polygons.append(_polygon(_text(element)))
        for element in area.findall("cap:circle", NS):
            result.circles.append(_circle(_text(element), max_radius_km))
        for element in area.findall("cap:geocode", NS):
            if _child_text(element, "valueName").upper() not in INSEE_GEOCODE_NAMES:
                continue
            value = _child_text(element, "value")
            code = _insee(value)
            if code is None:
                result.unknown.append(value or "?")
            elif code in layer:
                result.geocoded.add(code)
            elif _departement(code) in loaded:
                result.unknown.append(code)
            else:
                result.ignored.append(code)
    return result


def _resolve(area: _Area, layer: CommuneLayer) -> frozenset[str]:
    if area.unknown:
        codes = sorted({_show(code) for code in area.unknown})
        listed = ", ".join(codes[:10]) + (" …" if len(codes) > 10 else "")
        raise CapError("cap.unknown_insee", codes=listed)
    communes = set(area.geocoded)
    for polygon in area.polygons:
        try:
            communes |= layer.intersecting_polygon(polygon)
        except (shapely.errors.GEOSException, ValueError):
            raise CapError("cap.polygon_invalid", polygon=_show(polygon.wkt)) from None
    for circle in area.circles:
        try:
            communes |= layer.within_distance_of_point(circle.lat, circle.lon, circle.radius_m)
        except ValueError:
            raise CapError("cap.circle_syntax", circle=circle.text()) from None
    return frozenset(communes)


def _perimeter_text(area: _Area) -> str:
    parts = [f"{number(c.lat)},{number(c.lon)}+{_radius_text(c.radius_m)}" for c in area.circles]
    if area.polygons:
        parts.append("cap:polygon")
    codes = sorted(area.geocoded)
    if len(codes) <= _MAX_LISTED_CODES:
        parts.extend(codes)
    else:
        parts.append(f"cap:insee({len(codes)})")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- entry point


def _draft(data: bytes, layer: CommuneLayer, max_bytes: int, known: Mapping[str, str],
           max_radius_km: float) -> CapDraft:
    root = _parse(data, max_bytes)
    infos = root.findall("cap:info", NS)
    if not infos:
        raise CapError("cap.no_info")
    info = next((i for i in infos if _child_text(i, "language").lower().startswith("fr")),
                infos[0])
    areas = info.findall("cap:area", NS)
    if not areas:
        raise CapError("cap.no_area")
    area = _read_areas(areas, layer, max_radius_km)
    if not (area.geocoded or area.unknown or area.ignored or area.polygons or area.circles):
        raise CapError("cap.no_area")
    communes = _resolve(area, layer)
    area_desc = " ; ".join(area.descriptions)
    if not communes:
        raise CapError("cap.outside_area", area=_show(area_desc or "?"))

    event = _child_text(info, "event")
    categories = tuple(_text(e) for e in info.findall("cap:category", NS))
    event_codes = [(_child_text(e, "valueName"), _child_text(e, "value"))
                   for e in info.findall("cap:eventCode", NS)]
    polygon: BaseGeometry | None = None
    if len(area.polygons) == 1:
        polygon = area.polygons[0]
    elif area.polygons:
        polygon = shapely.union_all(area.polygons)
    return CapDraft(
        identifier=_child_text(root, "identifier"),
        sender=_child_text(root, "sender"),
        sent=_time("sent", _child_text(root, "sent")),
        status=_child_text(root, "status"),
        msg_type=_child_text(root, "msgType"),
        references=_references(_child_text(root, "references")),
        category=guess_category(event_codes, event, categories, known),
        event=event,
        cap_categories=categories,
        urgency=_child_text(info, "urgency"),
        severity=_child_text(info, "severity"),
        certainty=_child_text(info, "certainty"),
        language=_child_text(info, "language") or "en-US",
        headline=_optional(info, "headline"),
        description=_optional(info, "description"),
        instruction=_optional(info, "instruction"),
        onset=_optional_time(info, "onset"),
        expires=_optional_time(info, "expires"),
        area_desc=area_desc,
        communes=communes,
        perimeter_text=_perimeter_text(area),
        polygon=polygon,
        circles=tuple(area.circles),
        ignored_codes=tuple(sorted(set(area.ignored))),
    )


def cap_to_draft(
    xml: bytes,
    layer: CommuneLayer,
    *,
    max_bytes: int = MAX_BYTES,
    categories: Mapping[str, str] | None = None,
    max_radius_km: float = 200.0,
) -> CapDraft:
    """Read an untrusted CAP 1.2 message; raise :class:`CapError` (only) if it is unusable.

    ``categories``: our categories (key -> label) the guess may return; by default those of
    ``config/categories.yaml``. ``max_radius_km``: largest circle accepted.
    """
    known = DEFAULT_CATEGORIES if categories is None else categories
    try:
        return _draft(_as_bytes(xml), layer, max_bytes, known, max_radius_km)
    except CapError:
        raise
    except Exception as exc:  # any input must give a CapError; tests check this never fires
        raise CapError("cap.unreadable", error=type(exc).__name__) from exc
