"""The commune layer: look-ups by code and name, and spatial queries in Lambert-93.

The layer is loaded from the GeoJSON files written by ``bot/geo/build.py``
(``config/geo/communes-XX.geojson``). Geometries are projected once, at load, from WGS84
(EPSG:4326) to Lambert-93 (EPSG:2154, metres) and indexed in an STRtree, so distance queries
are exact in metres (``dwithin``), not circles drawn in degrees.

A ``CommuneLayer`` is immutable after loading and can be shared; it is not meant to be used
from several threads at once (pyproj transformers are not thread-safe).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from rapidfuzz import fuzz, process
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from bot.geo.normalize import name_key, strip_article

__all__ = [
    "Commune",
    "CommuneLayer",
    "GeoDataError",
    "NameSearch",
    "to_l93",
    "to_wgs84",
]

INSEE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
POSTAL_RE = re.compile(r"^\d{5}$")
DEPARTEMENT_RE = re.compile(r"^(?:\d{2,3}|2[AB])$")
# Score (0-100, see _similarity) below which a name is not suggested.
SUGGESTION_CUTOFF = 70.0

_FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Commune:
    insee: str
    name: str
    departement: str
    postal_codes: tuple[str, ...]
    population: int | None

    def label(self, postal_code: str | None = None) -> str:
        """The commune as everyone reads it, with the one code people know, its postal
        code: « Vesoul — 70000 » (``postal_code`` if it is one of its own, say the one a
        question is about; the INSEE code only for a commune without postal code)."""
        codes = self.postal_codes
        code = postal_code if postal_code in codes else codes[0] if codes else self.insee
        return f"{self.name} — {code}"


@dataclass(frozen=True, slots=True)
class NameSearch:
    """Result of :meth:`CommuneLayer.search`.

    ``exact`` holds the communes whose normalised name equals the query (more than one when
    the name is ambiguous); ``suggestions`` is filled only when nothing matched exactly, best
    first.
    """

    exact: list[Commune]
    suggestions: list[Commune]


class GeoDataError(Exception):
    """A geography file is missing, unreadable or invalid; the message names file and problem."""


@lru_cache(maxsize=1)
def _transformers() -> tuple[Transformer, Transformer]:
    return (
        Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True),
        Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True),
    )


def _project(geom: Any, transformer: Transformer) -> Any:
    def func(coords: _FloatArray) -> _FloatArray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, func)


def to_l93(geom: BaseGeometry) -> BaseGeometry:
    """Project a WGS84 (lon, lat) geometry to Lambert-93 metres."""
    result: BaseGeometry = _project(geom, _transformers()[0])
    return result


def to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    """Project a Lambert-93 geometry back to WGS84 (lon, lat)."""
    result: BaseGeometry = _project(geom, _transformers()[1])
    return result


def _similarity(query: str, choice: str, **_: Any) -> float:
    """Name similarity for suggestions: the plain edit-distance ratio, or rapidfuzz's WRatio
    (which also rewards partial and reordered matches, "Luxeuil" ~ "Luxeuil-les-Bains") with
    a small penalty so that a close spelling beats a long name that merely contains the query.
    """
    return max(fuzz.ratio(query, choice), fuzz.WRatio(query, choice) - 8.0)


def _check_distance(meters: float) -> float:
    value = float(meters)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"distance must be a finite number >= 0, not {meters!r}")
    return value


def _parse_feature(feature: object, where: str) -> tuple[Commune, Any, tuple[float, float] | None]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise GeoDataError(f"{where}: not a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise GeoDataError(f"{where}: no properties")

    insee = props.get("insee")
    if not isinstance(insee, str) or not INSEE_RE.match(insee):
        raise GeoDataError(f"{where}: invalid or missing 'insee' ({insee!r})")
    where = f"{where} (insee {insee})"
    name = props.get("nom")
    if not isinstance(name, str) or not name.strip():
        raise GeoDataError(f"{where}: invalid or missing 'nom'")
    dep = props.get("departement")
    if not isinstance(dep, str) or not DEPARTEMENT_RE.match(dep) or not insee.startswith(dep):
        raise GeoDataError(f"{where}: invalid 'departement' ({dep!r})")
    postal = props.get("codes_postaux")
    if not isinstance(postal, list) or not all(
        isinstance(c, str) and POSTAL_RE.match(c) for c in postal
    ):
        raise GeoDataError(f"{where}: 'codes_postaux' must be a list of 5-digit strings")
    population = props.get("population")
    if population is not None and (
        isinstance(population, bool) or not isinstance(population, int) or population < 0
    ):
        raise GeoDataError(f"{where}: 'population' must be an integer >= 0 or null")
    mairie = props.get("mairie")
    point: tuple[float, float] | None = None
    if mairie is not None:
        if (
            not isinstance(mairie, list)
            or len(mairie) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mairie)
            or not (-180 <= mairie[0] <= 180 and -90 <= mairie[1] <= 90)
        ):
            raise GeoDataError(f"{where}: 'mairie' must be [lon, lat]")
        point = (float(mairie[1]), float(mairie[0]))

    raw_geom = feature.get("geometry")
    if not isinstance(raw_geom, dict) or raw_geom.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeoDataError(f"{where}: geometry must be a Polygon or MultiPolygon")
    try:
        geom = shape(raw_geom)
    except Exception as exc:  # shapely raises many types on malformed coordinates
        raise GeoDataError(f"{where}: malformed geometry ({exc})") from exc
    if geom.is_empty:
        raise GeoDataError(f"{where}: empty geometry")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GeoDataError(f"{where}: coordinates are not WGS84 lon/lat")
    if not geom.is_valid:
        raise GeoDataError(f"{where}: invalid geometry ({shapely.is_valid_reason(geom)})")

    commune = Commune(
        insee=insee,
        name=name.strip(),
        departement=dep,
        postal_codes=tuple(sorted(set(postal))),
        population=population,
    )
    return commune, geom, point


def _read_collection(path: Path) -> list[object]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GeoDataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeoDataError(f"{path}: cannot read ({exc})") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise GeoDataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except RecursionError:
        raise GeoDataError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GeoDataError(f"{path}: not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise GeoDataError(f"{path}: 'features' is not a list")
    if not features:
        raise GeoDataError(f"{path}: no features")
    return features


class CommuneLayer:
    """Communes of one or more départements, with name/code indexes and an STRtree."""

    def __init__(
        self,
        communes: Sequence[Commune],
        geometries_wgs84: Sequence[BaseGeometry],
        town_halls: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        """Build a layer; prefer :meth:`load`. Geometries are WGS84 (lon, lat)."""
        if len(communes) != len(geometries_wgs84):
            raise ValueError("communes and geometries differ in length")
        order = sorted(range(len(communes)), key=lambda i: communes[i].insee)
        self._communes: list[Commune] = [communes[i] for i in order]
        self._wgs84: npt.NDArray[Any] = np.empty(len(order), dtype=object)
        self._wgs84[:] = [geometries_wgs84[i] for i in order]
        self._l93: npt.NDArray[Any] = _project(self._wgs84, _transformers()[0])
        self._tree: Any = shapely.STRtree(self._l93)
        self._town_halls: dict[str, tuple[float, float]] = dict(town_halls or {})

        self._index: dict[str, int] = {}
        self._by_postal: dict[str, list[Commune]] = defaultdict(list)
        self._by_dep: dict[str, set[str]] = defaultdict(set)
        self._by_key: dict[str, list[int]] = defaultdict(list)
        self._by_stripped: dict[str, list[int]] = defaultdict(list)
        self._choices: list[str] = []
        for i, commune in enumerate(self._communes):
            if commune.insee in self._index:
                raise ValueError(f"duplicate INSEE code {commune.insee}")
            self._index[commune.insee] = i
            for code in commune.postal_codes:
                self._by_postal[code].append(commune)
            self._by_dep[commune.departement].add(commune.insee)
            key = name_key(commune.name)
            stripped = strip_article(key)
            self._by_key[key].append(i)
            self._by_stripped[stripped].append(i)
            self._choices.append(stripped)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, paths: Sequence[Path]) -> CommuneLayer:
        """Load and validate the given GeoJSON files; raise :class:`GeoDataError` if any is bad."""
        if not paths:
            raise GeoDataError("no geography file given")
        communes: list[Commune] = []
        geoms: list[BaseGeometry] = []
        town_halls: dict[str, tuple[float, float]] = {}
        seen: dict[str, Path] = {}
        for path in paths:
            path = Path(path)
            for number, feature in enumerate(_read_collection(path), start=1):
                commune, geom, point = _parse_feature(feature, f"{path}: feature {number}")
                if commune.insee in seen:
                    raise GeoDataError(
                        f"{path}: feature {number}: duplicate INSEE code {commune.insee} "
                        f"(also in {seen[commune.insee]})"
                    )
                seen[commune.insee] = path
                communes.append(commune)
                geoms.append(geom)
                if point is not None:
                    town_halls[commune.insee] = point
        return cls(communes, geoms, town_halls)

    # ------------------------------------------------------------------ look-ups

    def __len__(self) -> int:
        return len(self._communes)

    def __contains__(self, insee: object) -> bool:
        return insee in self._index

    def all(self) -> list[Commune]:
        """All communes, sorted by INSEE code."""
        return list(self._communes)

    def by_insee(self, code: str) -> Commune | None:
        index = self._index.get(code.strip().upper())
        return None if index is None else self._communes[index]

    def by_postal_code(self, code: str) -> list[Commune]:
        """Communes served by a postal code, sorted by INSEE code (empty if unknown)."""
        return list(self._by_postal.get(code.strip(), ()))

    def search(self, text: str, limit: int = 5) -> NameSearch:
        """Find communes by name.

        Matching ignores case, accents, hyphens/apostrophes/spaces, ``St``/``Saint``, and a
        leading article ("Roche-Morey" finds "La Roche-Morey"). If nothing matches exactly,
        ``suggestions`` lists up to ``limit`` close names, best first.
        """
        key = name_key(text)
        if not key:
            return NameSearch([], [])
        hits = self._by_key.get(key) or self._by_stripped.get(strip_article(key), [])
        if hits:
            return NameSearch([self._communes[i] for i in sorted(hits)], [])
        if limit <= 0:
            return NameSearch([], [])
        ranked = process.extract(
            strip_article(key),
            self._choices,
            scorer=_similarity,
            limit=limit,
            score_cutoff=SUGGESTION_CUTOFF,
        )
        # Ties (same score) are broken by the plain edit-distance ratio, then by INSEE code.
        ranked.sort(key=lambda r: (-r[1], -fuzz.ratio(strip_article(key), r[0]), r[2]))
        return NameSearch([], [self._communes[index] for _, _, index in ranked])

    def departements(self) -> set[str]:
        return set(self._by_dep)

    def in_departement(self, code: str) -> set[str]:
        """INSEE codes of the communes of a département (empty set if not loaded)."""
        return set(self._by_dep.get(code.strip().upper(), ()))

    def population(self, codes: Iterable[str]) -> int:
        """Total population of the given communes; unknown codes and nulls count as 0."""
        total = 0
        for code in set(codes):
            commune = self.by_insee(code)
            if commune is not None and commune.population is not None:
                total += commune.population
        return total

    # ------------------------------------------------------------------ geometry

    def _position(self, insee: str) -> int:
        try:
            return self._index[insee]
        except KeyError:
            raise KeyError(f"unknown INSEE code {insee!r}") from None

    def geometry_l93(self, insee: str) -> BaseGeometry:
        """The commune's polygon in Lambert-93 metres (KeyError if unknown)."""
        geom: BaseGeometry = self._l93[self._position(insee)]
        return geom

    def geometry_wgs84(self, insee: str) -> BaseGeometry:
        """The commune's polygon in WGS84 lon/lat, as stored (KeyError if unknown)."""
        geom: BaseGeometry = self._wgs84[self._position(insee)]
        return geom

    def reference_point(self, insee: str) -> tuple[float, float]:
        """(lat, lon) of the commune's centre: its town hall when known, else a point inside."""
        point = self._town_halls.get(insee)
        if point is not None:
            self._position(insee)
            return point
        geom = self._wgs84[self._position(insee)]
        centre = geom.centroid
        if not geom.covers(centre):
            centre = geom.representative_point()
        return (float(centre.y), float(centre.x))

    def _codes(self, indices: Iterable[Any]) -> set[str]:
        return {self._communes[int(i)].insee for i in indices}

    @staticmethod
    def _point_l93(lat: float, lon: float) -> Point:
        lat_f, lon_f = float(lat), float(lon)
        if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
            raise ValueError("latitude and longitude must be finite")
        if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
            raise ValueError(f"({lat_f}, {lon_f}) is not a valid latitude, longitude")
        x, y = _transformers()[0].transform(lon_f, lat_f)
        return Point(x, y)

    def at_point(self, lat: float, lon: float) -> Commune | None:
        """The commune containing the point, or None. On a shared border, the lowest INSEE."""
        point = self._point_l93(lat, lon)
        hits = sorted(int(i) for i in self._tree.query(point, predicate="intersects"))
        if not hits:
            return None
        return self._communes[hits[0]]

    def nearest(self, lat: float, lon: float, among: Iterable[str]) -> Commune | None:
        """The commune of ``among`` (INSEE codes) that holds the point, else the closest to
        it (a point just over the département's edge); None if ``among`` is empty."""
        point = self._point_l93(lat, lon)
        positions = sorted({self._position(code) for code in among})
        if not positions:
            return None
        distances = shapely.distance(self._l93[positions], point)
        # Lowest distance, then lowest INSEE code (positions are sorted by it): stable.
        return self._communes[positions[int(np.argmin(distances))]]

    def within_distance_of_point(self, lat: float, lon: float, meters: float) -> set[str]:
        """INSEE codes of the communes whose polygon is within ``meters`` of the point."""
        distance = _check_distance(meters)
        point = self._point_l93(lat, lon)
        return self._codes(self._tree.query(point, predicate="dwithin", distance=distance))

    def within_distance_of_commune(self, insee: str, meters: float) -> set[str]:
        """Communes within ``meters`` of that commune's boundary, the commune included."""
        return self.within_distance_of_communes([insee], meters)

    def within_distance_of_communes(self, codes: Iterable[str], meters: float) -> set[str]:
        """Communes within ``meters`` of any of the given communes, those included."""
        distance = _check_distance(meters)
        positions = sorted({self._position(code) for code in codes})
        if not positions:
            return set()
        # One query around the union: same result as one query per commune, and much cheaper
        # for many communes and long distances.
        geom = shapely.union_all(self._l93[positions])
        hits = self._tree.query(geom, predicate="dwithin", distance=distance)
        return self._codes(hits) | self._codes(positions)

    def intersecting_polygon(self, polygon_wgs84: BaseGeometry) -> set[str]:
        """Communes sharing some area with a WGS84 (lon, lat) polygon (touching is not enough)."""
        geom = to_l93(polygon_wgs84)
        candidates = self._tree.query(geom, predicate="intersects")
        if len(candidates) == 0:
            return set()
        touching = shapely.touches(self._l93[candidates], geom)
        return self._codes(candidates[~touching])

    def within_distance_of_polygon(self, polygon_wgs84: BaseGeometry, meters: float) -> set[str]:
        """Communes within ``meters`` of a WGS84 polygon (0 m: same as intersecting_polygon)."""
        distance = _check_distance(meters)
        if distance == 0:
            return self.intersecting_polygon(polygon_wgs84)
        geom = to_l93(polygon_wgs84)
        return self._codes(self._tree.query(geom, predicate="dwithin", distance=distance))

