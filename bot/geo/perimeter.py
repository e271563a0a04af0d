"""The perimeter grammar: what an operator types to say where an alert goes.

A perimeter is a list of parts separated by ``,`` or ``;``; the communes of all parts are
united. Each part is one of::

    Vesoul                    a commune name (accents, case, St/Saint, articles optional)
    70000                     a postal code (all its communes), or else an INSEE code
    dep:70                    a whole département
    47.62,6.15+5km            a point (latitude,longitude, decimal points) with a radius
    {"type": "Polygon", ...}  GeoJSON text (Polygon, MultiPolygon, Feature, FeatureCollection)
    fichier:zone.geojson      a GeoJSON file (also any part ending in .geojson)

One exclusion may follow the parts: ``dep:48 sauf 48095`` (the Lozère but Mende),
``Vesoul+10km sauf Vesoul, Navenne``: the communes of the parts after « sauf » are taken
out (an organisation's territory is written so, bot/organisations.py).

Any part except the point may also take a radius: ``Vesoul+10km``, ``70000 + 500 m``,
``dep:48+2,5km`` (decimal comma allowed): the communes within that distance of the part's
communes (or polygon). :func:`parse_perimeter` raises :class:`PerimeterError` — and nothing
else — for any bad input; its ``key`` names a message in ``bot/locales/perimeter.*.yaml``
and its ``params`` fill it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from bot.errors import UserFacingError
from bot.geo.communes import Commune, CommuneLayer
from bot.limits import PERIMETER_FILE_BYTES as MAX_FILE_BYTES
from bot.limits import PERIMETER_PARTS as MAX_PARTS
from bot.limits import PERIMETER_TEXT_CHARS as MAX_TEXT_LENGTH

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_PARTS",
    "MAX_TEXT_LENGTH",
    "Area",
    "AreaKind",
    "CommuneDoubt",
    "Perimeter",
    "PerimeterError",
    "grammar_label",
    "parse_perimeter",
]

MAX_SUGGESTIONS = 5
_SHOW_CHARS = 60  # how much of a part is quoted back in an error message

_SEPARATORS = ",;"
# latitude,longitude: both with a decimal point, so that "70550,70000" stays two codes.
_COORDS_RE = re.compile(r"\s*([+-]?\d{1,3}\.\d+)\s*,\s*([+-]?\d{1,3}\.\d+)\s*")
# A radius with a decimal comma ("2,5km"): only when a unit follows, to keep "+2, Gray" a list.
_COMMA_RADIUS_RE = re.compile(r"\s*(\d+,\d+\s*[^\W\d_]+\.?)\s*(?=[,;]|$)")
_RADIUS_RE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(\S.*?)?\s*$")
_UNITS = {
    "m": 1.0,
    "metre": 1.0,
    "metres": 1.0,
    "mètre": 1.0,
    "mètres": 1.0,
    "km": 1000.0,
    "kms": 1000.0,
    "kilometre": 1000.0,
    "kilometres": 1000.0,
    "kilomètre": 1000.0,
    "kilomètres": 1000.0,
}
_DEP_RE = re.compile(
    r"^(?:dep|dép|dpt|departement|département)\s*:\s*(\S*)\s*$", re.IGNORECASE
)
_FILE_RE = re.compile(r"^fichier\s*:\s*(.*)$", re.IGNORECASE | re.DOTALL)
_CODE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$", re.IGNORECASE)
_DIGITS_RE = re.compile(r"^\d+$")
_EXCEPT_RE = re.compile(r"\s+sauf\s+", re.IGNORECASE)


class PerimeterError(UserFacingError):
    """A perimeter could not be understood (``bot/locales/perimeter.<lang>.yaml``);
    ``params["part"]`` names the failing part."""


class CommuneDoubt(PerimeterError):
    """A commune name the grammar cannot settle alone: not found but close to some, or
    borne by several communes. A conversation asks which one was meant (``candidates``,
    best first) and puts its ``grammar_label`` where the name was (``span``, the name's
    start and end in the text parsed); a one-line command shows the message."""

    def __init__(self, key: str, span: tuple[int, int], communes: tuple[Commune, ...],
                 **params: object) -> None:
        super().__init__(key, **params)
        self.span = span
        self.candidates = communes


class AreaKind(Enum):
    COMMUNE = "commune"  # one commune, named or given by its INSEE code
    POSTAL_CODE = "postal_code"  # every commune of a postal code
    DEPARTEMENT = "departement"  # a whole département
    POINT = "point"  # around a point
    ZONE = "zone"  # a drawn polygon (GeoJSON text or file)


@dataclass(frozen=True)
class Area:
    """One part of a perimeter as people read it, not as it was typed: thousands of
    coordinates or ``47.62,6.15+2km`` mean nothing to a recipient, « zone tracée autour de
    Gray (14 communes) » or « secteur de Noidans-lès-Vesoul, rayon 2 km » do. The words
    themselves are the rendering's (bot/place.py), in each reader's language."""

    kind: AreaKind
    near: str = ""  # name of the commune that names the part ("" for a département)
    near_insee: str = ""
    code: str = ""  # the postal code or the département code
    radius_m: float | None = None
    communes: int = 0  # communes this part reaches
    excluded: bool = False  # a part after « sauf »: its communes are taken out


@dataclass(frozen=True)
class Perimeter:
    text: str  # canonical form, e.g. "Vesoul+5km"; parse_perimeter(text) gives it back
    communes: frozenset[str]  # INSEE codes
    center: tuple[float, float] | None  # (lat, lon) for a single commune or point part
    radius_m: float | None  # radius of a single-part perimeter, if it has one
    polygon_wgs84: BaseGeometry | None  # union of the polygon parts (lon, lat), if any
    parts: tuple[str, ...]  # canonical text of each part
    areas: tuple[Area, ...] = ()  # each part as people read it (see Area)


@dataclass(frozen=True)
class _Part:
    text: str
    communes: frozenset[str]
    center: tuple[float, float] | None = None
    radius_m: float | None = None
    polygon: BaseGeometry | None = None
    area: Area = Area(AreaKind.COMMUNE)


def _show(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 1] + "…"


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _format_radius(meters: float) -> str:
    if meters >= 1000 and round(meters, 2) == round(meters):
        return _number(meters / 1000, 3) + "km"
    return _number(meters, 2) + "m"


def _format_coordinate(value: float) -> str:
    text = _number(value, 6)
    return text if "." in text else text + ".0"


def _describe(commune: Commune) -> str:
    """A homonym, with what tells it from the others: its postal code, and the INSEE
    code to type, labelled as such."""
    return f"{commune.label()} (INSEE {commune.insee})"


# ---------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    raw: str  # the part as typed, for error messages
    kind: str  # "point", "json" or "plain"
    body: str  # for "plain": the text before "+"; for "json": the JSON text
    radius: str | None  # the text after "+", None when no "+"
    coords: tuple[str, str] | None = None
    value: object = None  # decoded JSON
    start: int = 0  # where the part begins in the text (a plain part: its body)


def _read_radius(text: str, pos: int) -> tuple[str, int]:
    """Read the radius after a '+' at ``pos``; return (radius text, position after it)."""
    match = _COMMA_RADIUS_RE.match(text, pos)
    if match:
        return match.group(1), match.end()
    end = pos
    while end < len(text) and text[end] not in _SEPARATORS:
        end += 1
    return text[pos:end], end


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    length = len(text)
    decoder = json.JSONDecoder()
    while pos < length:
        if text[pos] in _SEPARATORS or text[pos].isspace():
            pos += 1
            continue
        start = pos
        if text[pos] == "{":
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise PerimeterError(
                    "perimeter.geojson_bad_json", part=_show(text[start:]), error=exc.msg
                ) from None
            except ValueError:  # e.g. a number with thousands of digits
                raise PerimeterError(
                    "perimeter.geojson_bad_json", part=_show(text[start:]), error="number"
                ) from None
            except RecursionError:
                raise PerimeterError(
                    "perimeter.geojson_bad_json", part=_show(text[start:]), error="nesting"
                ) from None
            body = text[start:pos]
            radius = None
            rest = text[pos:].lstrip()
            pos = length - len(rest)
            if rest.startswith("+"):
                radius, pos = _read_radius(text, pos + 1)
            elif rest and rest[0] not in _SEPARATORS:
                end = pos
                while end < length and text[end] not in _SEPARATORS:
                    end += 1
                raise PerimeterError("perimeter.bad_part", part=_show(text[start:end]))
            tokens.append(_Token(text[start:pos], "json", body, radius, value=value))
            continue
        coords = _COORDS_RE.match(text, pos)
        if coords:
            after = coords.end()
            if after >= length or text[after] in _SEPARATORS or text[after] == "+":
                radius = None
                pos = after
                if after < length and text[after] == "+":
                    radius, pos = _read_radius(text, after + 1)
                tokens.append(
                    _Token(
                        text[start:pos].strip(),
                        "point",
                        "",
                        radius,
                        coords=(coords.group(1), coords.group(2)),
                    )
                )
                continue
        while pos < length and text[pos] not in _SEPARATORS and text[pos] != "+":
            pos += 1
        body = text[start:pos]
        radius = None
        if pos < length and text[pos] == "+":
            radius, pos = _read_radius(text, pos + 1)
        tokens.append(_Token(text[start:pos].strip(), "plain", body.strip(), radius,
                             start=start))
    return tokens


# ---------------------------------------------------------------------------- parts


def _parse_radius(token: _Token, max_radius_km: float) -> float | None:
    if token.radius is None:
        return None
    match = _RADIUS_RE.match(token.radius)
    if not match:
        raise PerimeterError("perimeter.bad_radius", part=_show(token.raw))
    number, unit = match.group(1), (match.group(2) or "")
    unit = unit.lower().rstrip(".")
    if unit and not unit.isalpha():
        raise PerimeterError("perimeter.bad_radius", part=_show(token.raw))
    if unit not in _UNITS:
        raise PerimeterError(
            "perimeter.bad_radius_unit", part=_show(token.raw), unit=_show(unit or "?")
        )
    meters = float(number.replace(",", ".")) * _UNITS[unit]
    if not math.isfinite(meters) or meters <= 0:
        raise PerimeterError("perimeter.radius_not_positive", part=_show(token.raw))
    if meters > max_radius_km * 1000:
        raise PerimeterError(
            "perimeter.radius_too_large",
            part=_show(token.raw),
            max_km=_number(max_radius_km, 3),
        )
    return meters


def _with_radius(suffix: str, meters: float | None) -> str:
    return suffix if meters is None else f"{suffix}+{_format_radius(meters)}"


def grammar_label(layer: CommuneLayer, commune: Commune) -> str:
    """How a perimeter names the commune: its name if it reads back unambiguously, else
    its INSEE code."""
    found = layer.search(commune.name, limit=0).exact
    return commune.name if len(found) == 1 else commune.insee


def _communes_part(
    layer: CommuneLayer, label: str, communes: list[Commune], meters: float | None,
    postal_code: str = "",
) -> _Part:
    codes = [c.insee for c in communes]
    if meters is not None:
        found = frozenset(layer.within_distance_of_communes(codes, meters))
    else:
        found = frozenset(codes)
    center = layer.reference_point(codes[0]) if len(codes) == 1 else None
    # A postal code is named after its most populous commune (70000: Vesoul).
    near = max(communes, key=lambda c: (c.population or 0, c.insee)) if postal_code \
        else communes[0]
    kind = AreaKind.POSTAL_CODE if postal_code else AreaKind.COMMUNE
    area = Area(kind, near.name, near.insee, postal_code, meters, len(found))
    return _Part(_with_radius(label, meters), found, center, meters, area=area)


def _point_part(token: _Token, layer: CommuneLayer, meters: float | None) -> _Part:
    assert token.coords is not None
    lat, lon = float(token.coords[0]), float(token.coords[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PerimeterError("perimeter.bad_coordinates", part=_show(token.raw))
    if meters is None:
        raise PerimeterError("perimeter.point_needs_radius", part=_show(token.raw))
    found = layer.within_distance_of_point(lat, lon, meters)
    if not found:
        raise PerimeterError("perimeter.point_outside", part=_show(token.raw))
    text = f"{_format_coordinate(lat)},{_format_coordinate(lon)}+{_format_radius(meters)}"
    near = layer.nearest(lat, lon, found)
    area = Area(AreaKind.POINT, near.name if near else "", near.insee if near else "", "",
                meters, len(found))
    return _Part(text, frozenset(found), (lat, lon), meters, area=area)


def _code_part(token: _Token, layer: CommuneLayer, meters: float | None) -> _Part:
    code = token.body.upper()
    # A postal code first: it is the code people know, and 70310 (Faucogney's postal
    # code) must not mean Lure, whose INSEE code it also is.
    communes = layer.by_postal_code(code)
    if communes:
        return _communes_part(layer, code, communes, meters, postal_code=code)
    commune = layer.by_insee(code)
    if commune is not None:
        return _communes_part(layer, grammar_label(layer, commune), [commune], meters)
    raise PerimeterError("perimeter.unknown_code", part=_show(token.raw), code=code)


def _name_part(token: _Token, layer: CommuneLayer, meters: float | None) -> _Part:
    result = layer.search(token.body, limit=MAX_SUGGESTIONS)
    if len(result.exact) == 1:
        commune = result.exact[0]
        return _communes_part(layer, grammar_label(layer, commune), [commune], meters)
    span = (token.start, token.start + len(token.body))
    if result.exact:
        raise CommuneDoubt(
            "perimeter.ambiguous_commune",
            span,
            tuple(result.exact),
            part=_show(token.raw),
            candidates="; ".join(_describe(c) for c in result.exact),
        )
    if result.suggestions:
        raise CommuneDoubt(
            "perimeter.unknown_commune",
            span,
            tuple(result.suggestions),
            part=_show(token.raw),
            suggestions=", ".join(c.label() for c in result.suggestions),
        )
    raise PerimeterError("perimeter.unknown_commune_no_suggestion", part=_show(token.raw))


def _departement_part(
    token: _Token, code: str, layer: CommuneLayer, meters: float | None
) -> _Part:
    code = code.upper()
    if code.isdigit() and len(code) == 1:
        code = "0" + code
    communes = layer.in_departement(code)
    if not communes:
        raise PerimeterError(
            "perimeter.unknown_departement",
            part=_show(token.raw),
            code=_show(code or "?"),
            known=", ".join(sorted(layer.departements())),
        )
    if meters is not None:
        communes = layer.within_distance_of_communes(communes, meters)
    area = Area(AreaKind.DEPARTEMENT, code=code, radius_m=meters, communes=len(communes))
    return _Part(_with_radius(f"dep:{code}", meters), frozenset(communes), None, meters,
                 area=area)


def _polygon_from_geojson(value: object, part: str) -> BaseGeometry:
    """A valid WGS84 (Multi)Polygon from decoded GeoJSON, or PerimeterError."""
    if not isinstance(value, dict):
        raise PerimeterError("perimeter.geojson_bad_type", part=part, type=type(value).__name__)
    kind = value.get("type")
    geometries: list[object]
    if kind in ("Polygon", "MultiPolygon"):
        geometries = [value]
    elif kind == "Feature":
        geometries = [value.get("geometry")]
    elif kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list) or not features:
            raise PerimeterError("perimeter.geojson_bad_type", part=part, type="FeatureCollection")
        geometries = [f.get("geometry") if isinstance(f, dict) else f for f in features]
    elif kind == "GeometryCollection":
        members = value.get("geometries")
        geometries = members if isinstance(members, list) and members else [None]
    else:
        raise PerimeterError("perimeter.geojson_bad_type", part=part, type=_show(str(kind)))
    polygons: list[BaseGeometry] = []
    for geometry in geometries:
        if not isinstance(geometry, dict) or geometry.get("type") not in (
            "Polygon",
            "MultiPolygon",
        ):
            found = geometry.get("type") if isinstance(geometry, dict) else None
            raise PerimeterError("perimeter.geojson_bad_type", part=part, type=_show(str(found)))
        try:
            polygon = shape(geometry)
        except Exception as exc:  # shapely raises many kinds of errors on bad coordinates
            raise PerimeterError(
                "perimeter.geojson_invalid_geometry", part=part, reason=_show(str(exc))
            ) from None
        if polygon.is_empty:
            raise PerimeterError("perimeter.geojson_invalid_geometry", part=part, reason="empty")
        minx, miny, maxx, maxy = polygon.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise PerimeterError("perimeter.geojson_bad_coordinates", part=part)
        if not polygon.is_valid:
            raise PerimeterError(
                "perimeter.geojson_invalid_geometry",
                part=part,
                reason=_show(str(shapely.is_valid_reason(polygon))),
            )
        polygons.append(polygon)
    if len(polygons) == 1:
        return polygons[0]
    try:
        merged: BaseGeometry = shapely.union_all(polygons)
    except shapely.errors.GEOSException as exc:
        raise PerimeterError(
            "perimeter.geojson_invalid_geometry", part=part, reason=_show(str(exc))
        ) from None
    return merged


def _polygon_part(
    polygon: BaseGeometry, label: str, part: str, layer: CommuneLayer, meters: float | None
) -> _Part:
    try:
        if meters is None:
            found = layer.intersecting_polygon(polygon)
        else:
            found = layer.within_distance_of_polygon(polygon, meters)
    except shapely.errors.GEOSException as exc:
        raise PerimeterError(
            "perimeter.geojson_invalid_geometry", part=part, reason=_show(str(exc))
        ) from None
    if not found:
        raise PerimeterError("perimeter.polygon_no_commune", part=part)
    near = _zone_name(layer, polygon, frozenset(found))
    area = Area(AreaKind.ZONE, near.name, near.insee, "", meters, len(found))
    return _Part(_with_radius(label, meters), frozenset(found), None, meters, polygon, area)


def _file_part(
    token: _Token, path_text: str, layer: CommuneLayer, meters: float | None, files_dir: Path | None
) -> _Part:
    part = _show(token.raw)
    path_text = path_text.strip()
    if not path_text:
        raise PerimeterError("perimeter.file_not_found", part=part, path="?")
    try:
        path = Path(path_text).expanduser()
        if files_dir is not None:
            base = files_dir.resolve()
            path = (base / path).resolve()
            if not path.is_relative_to(base):
                raise PerimeterError("perimeter.file_not_found", part=part, path=_show(path_text))
        if not path.is_file():
            raise PerimeterError("perimeter.file_not_found", part=part, path=_show(path_text))
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PerimeterError(
                "perimeter.file_too_large",
                part=part,
                path=_show(path_text),
                max_kb=str(MAX_FILE_BYTES // 1024),
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError, RuntimeError) as exc:  # bad path, permissions, NUL byte...
        raise PerimeterError(
            "perimeter.file_unreadable", part=part, path=_show(path_text), error=_show(str(exc))
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise PerimeterError(
            "perimeter.file_too_large",
            part=part,
            path=_show(path_text),
            max_kb=str(MAX_FILE_BYTES // 1024),
        )
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PerimeterError("perimeter.geojson_bad_json", part=part, error="not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PerimeterError(
            "perimeter.geojson_bad_json", part=part, error=f"{exc.msg} (line {exc.lineno})"
        ) from None
    except ValueError:  # e.g. a number with thousands of digits
        raise PerimeterError("perimeter.geojson_bad_json", part=part, error="number") from None
    except RecursionError:
        raise PerimeterError("perimeter.geojson_bad_json", part=part, error="nesting") from None
    polygon = _polygon_from_geojson(value, part)
    return _polygon_part(polygon, f"fichier:{path_text}", part, layer, meters)


def _parse_token(
    token: _Token, layer: CommuneLayer, max_radius_km: float, files_dir: Path | None
) -> _Part:
    meters = _parse_radius(token, max_radius_km)
    if token.kind == "point":
        return _point_part(token, layer, meters)
    if token.kind == "json":
        part = _show(token.raw)
        polygon = _polygon_from_geojson(token.value, part)
        return _polygon_part(polygon, shapely.to_geojson(polygon), part, layer, meters)
    body = token.body
    if not body:
        raise PerimeterError("perimeter.bad_part", part=_show(token.raw))
    file_match = _FILE_RE.match(body)
    if file_match:
        return _file_part(token, file_match.group(1), layer, meters, files_dir)
    if body.lower().endswith(".geojson"):
        return _file_part(token, body, layer, meters, files_dir)
    dep_match = _DEP_RE.match(body)
    if dep_match:
        return _departement_part(token, dep_match.group(1), layer, meters)
    if _CODE_RE.match(body):
        return _code_part(token, layer, meters)
    if _DIGITS_RE.match(body):
        raise PerimeterError("perimeter.bad_code", part=_show(token.raw))
    return _name_part(token, layer, meters)


def _zone_name(layer: CommuneLayer, polygon: BaseGeometry, communes: frozenset[str]) -> Commune:
    """Name the zone after the commune under its centroid when that one is targeted (a
    ring-shaped zone's centroid can fall outside it), else the most populous target."""
    centroid = polygon.centroid
    try:
        under = layer.at_point(centroid.y, centroid.x)
    except ValueError:  # a centroid the projection cannot take: name it otherwise
        under = None
    if under is None or under.insee not in communes:
        targets = [c for c in map(layer.by_insee, sorted(communes)) if c is not None]
        under = max(targets, key=lambda c: c.population or 0)
    return under


# ---------------------------------------------------------------------------- entry point


def parse_perimeter(
    text: str,
    layer: CommuneLayer,
    *,
    max_radius_km: float = 200,
    files_dir: Path | None = None,
) -> Perimeter:
    """Parse an operator's perimeter; raise :class:`PerimeterError` if anything is wrong.

    ``files_dir``: if given, ``fichier:`` paths are read relative to it and may not leave it;
    otherwise they are taken as given (relative to the working directory).
    """
    if not isinstance(text, str):
        raise PerimeterError("perimeter.empty", part="")
    if len(text) > MAX_TEXT_LENGTH:
        raise PerimeterError(
            "perimeter.too_long", part=_show(text), length=str(len(text)), max=str(MAX_TEXT_LENGTH)
        )
    cut = _exclusion(text)
    if cut is None:
        return _included(text, layer, max_radius_km, files_dir)
    kept = _included(text[:cut[0]], layer, max_radius_km, files_dir)
    taken = _included(text[cut[1]:], layer, max_radius_km, files_dir)
    communes = kept.communes - taken.communes
    if not communes:
        raise PerimeterError("perimeter.nothing_left", part=_show(text))
    excluded = tuple(dataclasses.replace(a, excluded=True) for a in taken.areas)
    return dataclasses.replace(
        kept, text=f"{kept.text} sauf {taken.text}", communes=communes,
        parts=kept.parts + tuple(f"sauf {p}" for p in taken.parts), areas=kept.areas + excluded)


def _exclusion(text: str) -> tuple[int, int] | None:
    """Where « sauf » cuts the text (its start and end), outside any GeoJSON object."""
    for match in _EXCEPT_RE.finditer(text):
        before = text[:match.start()]
        if before.count("{") == before.count("}"):
            return match.start(), match.end()
    return None


def _included(
    text: str, layer: CommuneLayer, max_radius_km: float, files_dir: Path | None
) -> Perimeter:
    tokens = _tokenize(text)
    if not tokens:
        raise PerimeterError("perimeter.empty", part=_show(text))
    if len(tokens) > MAX_PARTS:
        raise PerimeterError(
            "perimeter.too_many_parts", part=_show(text), count=str(len(tokens)), max=str(MAX_PARTS)
        )
    parts: list[_Part] = []
    seen: set[str] = set()
    for token in tokens:
        part = _parse_token(token, layer, max_radius_km, files_dir)
        if part.text not in seen:
            seen.add(part.text)
            parts.append(part)
    communes = frozenset().union(*(p.communes for p in parts))
    if not communes:
        raise PerimeterError("perimeter.empty", part=_show(text))
    polygons = [p.polygon for p in parts if p.polygon is not None]
    polygon: BaseGeometry | None = None
    if len(polygons) == 1:
        polygon = polygons[0]
    elif polygons:
        try:
            polygon = shapely.union_all(polygons)
        except shapely.errors.GEOSException:
            polygon = shapely.GeometryCollection(polygons)
    single = parts[0] if len(parts) == 1 else None
    return Perimeter(
        text=", ".join(p.text for p in parts),
        communes=communes,
        center=single.center if single else None,
        radius_m=single.radius_m if single else None,
        polygon_wgs84=polygon,
        parts=tuple(p.text for p in parts),
        areas=tuple(p.area for p in parts),
    )
