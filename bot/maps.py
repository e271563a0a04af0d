"""The map attached to an approval request: a PNG drawn locally from the commune layer.

No tile server and no network: the département(s) of the targeted communes are drawn from
the layer's own polygons in Lambert-93 (EPSG:2154, metres, conformal), north up, with the
same scale on both axes. On the map:

* every commune of the département(s) concerned in light grey, with thin white borders, and
  the département outline in dark grey; communes of other loaded départements that fall
  inside the frame are drawn fainter, for context;
* the targeted communes in a strong vermillion (Okabe-Ito palette, readable with every
  common colour-vision deficiency, and much darker than the grey);
* the perimeter outline in blue: a true circle (drawn in Lambert-93) for a point with a radius;
  for a commune with a radius ("Vesoul+5km"), the commune's outline widened by the radius,
  since that is what the perimeter grammar targets (communes within the radius of the
  commune's *boundary*, not of its town hall); for a GeoJSON polygon, its outline (and,
  dashed, the widened zone if it has a radius);
* the centre point as a marker, names of the main communes, a north arrow and a scale bar
  (1, 2, 5, 10 or 20 km for one département; 50, 100 or 200 km for wider frames).

A header carries the legend's title, a footer the rest of :class:`MapLegend`. Texts come from
``bot/locales/maps.<lang>.yaml`` through a :class:`bot.i18n.Translator` (French by default).

Rendering is deterministic (same input, same bytes) and takes ~0.1 s for a département at
1000 px. :func:`render_map_image` also returns the :class:`Viewport`, so a test (or a caller)
can turn Lambert-93 coordinates into pixels of the image.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import unicodedata
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from bot.geo.communes import CommuneLayer, to_l93
from bot.geo.perimeter import Perimeter
from bot.resources import package_path
from bot.yamltext import load_yaml

__all__ = [
    "BACKGROUND",
    "COMMUNE_FILL",
    "PERIMETER_COLOUR",
    "SCALE_BAR_COLOUR",
    "SCALE_STEPS_M",
    "TARGET_FILL",
    "MapLegend",
    "RenderedMap",
    "ScaleBar",
    "Translate",
    "Viewport",
    "font_path",
    "render_map",
    "render_map_image",
    "scale_bar_metres",
    "world_to_pixel",
]

_FloatArray = npt.NDArray[np.float64]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_RGB = tuple[int, int, int]
_Box = tuple[int, int, int, int]
Translate = Callable[..., str]

# ---------------------------------------------------------------------------- style

BACKGROUND: _RGB = (255, 255, 255)
CONTEXT_FILL: _RGB = (241, 241, 241)  # communes of other départements inside the frame
COMMUNE_FILL: _RGB = (212, 212, 212)  # communes of the département(s) concerned
COMMUNE_BORDER: _RGB = (255, 255, 255)
TARGET_FILL: _RGB = (213, 94, 0)  # Okabe-Ito vermillion #D55E00
TARGET_BORDER: _RGB = (255, 226, 204)
DEPARTEMENT_BORDER: _RGB = (64, 64, 64)
PERIMETER_COLOUR: _RGB = (0, 114, 178)  # Okabe-Ito blue #0072B2
MARKER_COLOUR: _RGB = (30, 30, 30)
SCALE_BAR_COLOUR: _RGB = (0, 0, 0)  # used by nothing else, so tests can find the bar
TEXT_COLOUR: _RGB = (26, 26, 26)
MUTED_TEXT: _RGB = (85, 85, 85)
RULE_COLOUR: _RGB = (190, 190, 190)

SUPERSAMPLE = 2  # the map is drawn at twice the size and reduced: smooth lines, fast
MIN_SIZE, MAX_SIZE = 300, 2000  # 2000 px: a 4000 px (48 MB) drawing, reduced
SCALE_STEPS_M = (1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)
MAX_TARGET_LABELS = 8
MAX_CONTEXT_LABELS = 4
LABEL_ZONE_SHARE = 0.25  # names of targeted communes may cover this share of their area
CIRCLE_SEGMENTS = 360
_FRAME_MARGIN = 0.04  # of the map area's smaller side, around the framed extent
# A perimeter outline enlarges the frame beyond the départements by at most this fraction.
_OUTLINE_OVERFLOW = 0.5

_POINT_PART_RE = re.compile(r"^\s*[+-]?\d{1,3}\.\d+\s*,\s*[+-]?\d{1,3}\.\d+\s*\+")

# ---------------------------------------------------------------------------- public types


@dataclass(frozen=True, slots=True)
class MapLegend:
    """What the legend says. ``title`` e.g. "Alerte n°12 — Cambriolage"; ``perimeter`` the
    perimeter as the operator sees it; the counts are shown with thousands separators."""

    title: str
    perimeter: str
    communes: int
    subscribers: int
    groups: int
    population: int


@dataclass(frozen=True, slots=True)
class Viewport:
    """Lambert-93 metres to pixels of the image: north up, one scale for x and y.

    Pixel coordinates are continuous: a world point at ``(px, py)`` lies in the pixel
    ``(int(px), int(py))``; pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``.
    """

    left: float  # Lambert-93 x of the image's left edge (pixel x = 0)
    top: float  # Lambert-93 y of the image's top edge (pixel y = 0)
    metres_per_pixel: float
    box: _Box  # the map area in pixels: left, top, right, bottom (exclusive)

    @classmethod
    def fit(
        cls, bounds: tuple[float, float, float, float], box: _Box, margin: float = _FRAME_MARGIN
    ) -> Viewport:
        """The viewport showing ``bounds`` (minx, miny, maxx, maxy) centred in ``box``."""
        minx, miny, maxx, maxy = bounds
        pad = margin * min(box[2] - box[0], box[3] - box[1])
        avail_w = max(box[2] - box[0] - 2 * pad, 1.0)
        avail_h = max(box[3] - box[1] - 2 * pad, 1.0)
        scale = max(max(maxx - minx, 1.0) / avail_w, max(maxy - miny, 1.0) / avail_h)
        centre_x, centre_y = (minx + maxx) / 2, (miny + maxy) / 2
        pixel_x, pixel_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return cls(centre_x - pixel_x * scale, centre_y + pixel_y * scale, scale, box)

    def world_to_pixel(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.left) / self.metres_per_pixel, (self.top - y) / self.metres_per_pixel

    def pixel_to_world(self, px: float, py: float) -> tuple[float, float]:
        return self.left + px * self.metres_per_pixel, self.top - py * self.metres_per_pixel

    def to_draw(self, coords: _FloatArray, factor: int = 1) -> _FloatArray:
        """Drawing coordinates for PIL (which centres pixel k on k) on an image ``factor``
        times larger; ``coords`` is an (n, 2) array of Lambert-93 metres."""
        result = np.empty((len(coords), 2), dtype=np.float64)
        result[:, 0] = (coords[:, 0] - self.left) * (factor / self.metres_per_pixel) - 0.5
        result[:, 1] = (self.top - coords[:, 1]) * (factor / self.metres_per_pixel) - 0.5
        return result


def world_to_pixel(viewport: Viewport, x: float, y: float) -> tuple[float, float]:
    """Pixel coordinates of a Lambert-93 point (see :class:`Viewport`)."""
    return viewport.world_to_pixel(x, y)


@dataclass(frozen=True, slots=True)
class ScaleBar:
    metres: int
    label: str
    box: _Box  # the black bar, in pixels: left, top, right, bottom (exclusive)

    @property
    def pixels(self) -> int:
        return self.box[2] - self.box[0]


@dataclass(frozen=True, slots=True)
class RenderedMap:
    png: bytes
    viewport: Viewport
    departements: tuple[str, ...]  # the départements framed
    scale_bar: ScaleBar
    labels: tuple[tuple[str, _Box], ...]  # commune names written on the map, with their boxes
    marker: tuple[float, float] | None  # pixel position of the centre marker, if drawn


# ---------------------------------------------------------------------------- fonts

_FONT_FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}
_FC_PATTERNS = {False: "DejaVu Sans:style=Book", True: "DejaVu Sans:style=Bold"}
_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/truetype",
    "/usr/local/share/fonts",
    "/usr/local/share/fonts/dejavu",
    "/opt/homebrew/share/fonts",
    "/Library/Fonts",
    "~/Library/Fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "C:/Windows/Fonts",
)


@lru_cache(maxsize=2)
def font_path(bold: bool = False) -> Path | None:
    """A DejaVu Sans file (covers French accents), from the usual places or ``fc-match``."""
    name = _FONT_FILES[bold]
    for directory in _FONT_DIRS:
        candidate = Path(directory).expanduser() / name
        if candidate.is_file():
            return candidate
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", _FC_PATTERNS[bold]],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(found) if found else None
    if path is not None and path.suffix.lower() in (".ttf", ".otf", ".ttc") and path.is_file():
        return path
    return None


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> _Font:
    """The map's (and the invitation poster's) font at ``size`` pixels, cached."""
    for path in (font_path(bold), font_path(False)):
        if path is not None:
            try:
                return ImageFont.truetype(str(path), size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font, ASCII only


_ASCII_FALLBACK = {
    "—": "-",
    "–": "-",
    "…": "...",
    "’": "'",
    "«": '"',
    "»": '"',
    "°": "o",
    "·": "-",
    "\u202f": " ",
    "\u00a0": " ",
}
_LINE_BREAK_RE = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_glyphs: weakref.WeakKeyDictionary[_Font, dict[str, bool]] = weakref.WeakKeyDictionary()


def _glyph_image(font: _Font, char: str) -> bytes:
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).text((8, 8), char, font=font, fill=255)
    return image.tobytes()


def _has_glyph(font: _Font, char: str) -> bool:
    known = _glyphs.setdefault(font, {})
    found = known.get(char)
    if found is None:
        found = _glyph_image(font, char) != _glyph_image(font, "\uffff")  # \uffff: never a glyph
        known[char] = found
    return found


def _drawable(text: str, font: _Font) -> str:
    """``text`` on one line, with the characters the font cannot draw replaced (accents
    dropped...) and control characters removed."""
    text = _CONTROL_RE.sub("", _LINE_BREAK_RE.sub(" ", text))
    if text.isascii():
        return text
    out: list[str] = []
    for char in text:
        if char.isascii() or _has_glyph(font, char):
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if base and all(c.isascii() or _has_glyph(font, c) for c in base):
            out.append(base)
        else:
            out.append(_ASCII_FALLBACK.get(char, "?"))
    return "".join(out)


# ---------------------------------------------------------------------------- geometry cache


def _polygons(geom: BaseGeometry) -> list[Any]:
    """The polygons of any geometry (Polygon, MultiPolygon, collections); others dropped."""
    kind = geom.geom_type
    if kind == "Polygon":
        return [] if geom.is_empty else [geom]
    if kind in ("MultiPolygon", "GeometryCollection"):
        return [p for part in geom.geoms for p in _polygons(part)]
    return []


def _rings(geom: BaseGeometry) -> tuple[list[_FloatArray], list[_FloatArray]]:
    """Exterior rings and holes of a (multi)polygon, as (n, 2) arrays."""
    exteriors: list[_FloatArray] = []
    holes: list[_FloatArray] = []
    for polygon in _polygons(geom):
        exteriors.append(np.asarray(polygon.exterior.coords, dtype=np.float64)[:, :2])
        holes.extend(np.asarray(ring.coords, dtype=np.float64)[:, :2] for ring in polygon.interiors)
    return exteriors, holes


@dataclass(frozen=True, slots=True)
class _Shape:
    insee: str
    name: str
    departement: str
    population: int
    area: float
    exteriors: list[_FloatArray]
    holes: list[_FloatArray]
    label_point: tuple[float, float]


class _LayerCache:
    """What the maps need from an (immutable) layer, computed once per layer."""

    def __init__(self, layer: CommuneLayer) -> None:
        self.layer = layer
        self._shapes: dict[str, _Shape] = {}
        self._outlines: dict[str, BaseGeometry] = {}
        self._bounds: dict[str, tuple[float, float, float, float]] = {}
        self.departement_of = {c.insee: c.departement for c in layer.all()}

    def shape(self, insee: str) -> _Shape:
        found = self._shapes.get(insee)
        if found is None:
            commune = self.layer.by_insee(insee)
            assert commune is not None
            geom = self.layer.geometry_l93(insee)
            exteriors, holes = _rings(geom)
            point = geom.representative_point()
            found = _Shape(
                insee,
                commune.name,
                commune.departement,
                commune.population or 0,
                float(geom.area),
                exteriors,
                holes,
                (float(point.x), float(point.y)),
            )
            self._shapes[insee] = found
        return found

    def _geometries(self, code: str) -> list[BaseGeometry]:
        return [self.layer.geometry_l93(c) for c in sorted(self.layer.in_departement(code))]

    def outline(self, code: str) -> BaseGeometry:
        """The département's outline (union of its communes, ~40 ms once), in Lambert-93."""
        found = self._outlines.get(code)
        if found is None:
            found = shapely.union_all(self._geometries(code))
            self._outlines[code] = found
        return found

    def bounds(self, code: str) -> tuple[float, float, float, float]:
        """The département's bounds (minx, miny, maxx, maxy) in Lambert-93."""
        found = self._bounds.get(code)
        if found is None:
            minx, miny, maxx, maxy = (
                float(v) for v in shapely.total_bounds(self._geometries(code))
            )
            found = (minx, miny, maxx, maxy)
            self._bounds[code] = found
        return found


_caches: weakref.WeakKeyDictionary[CommuneLayer, _LayerCache] = weakref.WeakKeyDictionary()


def _cache(layer: CommuneLayer) -> _LayerCache:
    found = _caches.get(layer)
    if found is None:
        found = _LayerCache(layer)
        _caches[layer] = found
    return found


# ---------------------------------------------------------------------------- what to draw


@dataclass(frozen=True, slots=True)
class _Outline:
    solid: list[_FloatArray]  # rings drawn as solid lines
    dashed: list[_FloatArray]  # rings drawn dashed (a polygon's zone widened by a radius)
    bounds: tuple[float, float, float, float] | None


def _circle(x: float, y: float, radius: float) -> _FloatArray:
    angles = np.linspace(0.0, 2 * math.pi, CIRCLE_SEGMENTS + 1)
    ring = np.column_stack([x + radius * np.cos(angles), y + radius * np.sin(angles)])
    ring[-1] = ring[0]
    return ring


def _l93_point(lat: float, lon: float) -> tuple[float, float]:
    point = to_l93(Point(lon, lat))
    return float(point.x), float(point.y)


def _bounds(rings: Iterable[_FloatArray]) -> tuple[float, float, float, float] | None:
    arrays = list(rings)
    if not arrays:
        return None
    stacked = np.concatenate(arrays)
    return (
        float(stacked[:, 0].min()),
        float(stacked[:, 1].min()),
        float(stacked[:, 0].max()),
        float(stacked[:, 1].max()),
    )


def _outline(cache: _LayerCache, perimeter: Perimeter | None, targeted: list[str]) -> _Outline:
    """The perimeter's outline in Lambert-93 (see the module docstring)."""
    if perimeter is None:
        return _Outline([], [], None)
    solid: list[_FloatArray] = []
    dashed: list[_FloatArray] = []
    radius = perimeter.radius_m
    if perimeter.polygon_wgs84 is not None:
        polygon = to_l93(perimeter.polygon_wgs84)
        exteriors, holes = _rings(polygon)
        solid = exteriors + holes
        if radius:
            exteriors, holes = _rings(shapely.buffer(shapely.union_all(_polygons(polygon)), radius))
            dashed = exteriors + holes
    elif perimeter.center is not None and radius:
        lat, lon = perimeter.center
        is_point = len(perimeter.parts) == 1 and _POINT_PART_RE.match(perimeter.parts[0])
        base = None
        if not is_point:  # a commune with a radius: its centre is its reference point
            base = next((c for c in targeted if cache.layer.reference_point(c) == (lat, lon)), None)
        if base is not None:
            zone = shapely.buffer(cache.layer.geometry_l93(base), radius, quad_segs=32)
            exteriors, holes = _rings(zone)
            solid = exteriors + holes
        else:
            solid = [_circle(*_l93_point(lat, lon), radius)]
    return _Outline(solid, dashed, _bounds(solid + dashed))


def _marker(
    cache: _LayerCache, perimeter: Perimeter | None, targeted: list[str]
) -> tuple[float, float] | None:
    if perimeter is not None and perimeter.center is not None:
        return _l93_point(*perimeter.center)
    if len(targeted) == 1:
        return _l93_point(*cache.layer.reference_point(targeted[0]))
    return None


def _departements(
    cache: _LayerCache, targeted: list[str], perimeter: Perimeter | None
) -> tuple[str, ...]:
    """Those of the targeted communes; else that of the perimeter's centre; else all."""
    deps = {cache.departement_of[c] for c in targeted}
    if not deps and perimeter is not None and perimeter.center is not None:
        commune = cache.layer.at_point(*perimeter.center)
        if commune is not None:
            deps.add(commune.departement)
    if not deps:
        deps = cache.layer.departements()
    return tuple(sorted(deps))


def _frame(
    cache: _LayerCache, deps: Sequence[str], outline: _Outline
) -> tuple[float, float, float, float]:
    boxes = [cache.bounds(code) for code in deps]
    minx = min(b[0] for b in boxes)
    miny = min(b[1] for b in boxes)
    maxx = max(b[2] for b in boxes)
    maxy = max(b[3] for b in boxes)
    if outline.bounds is not None:  # show the outline, within reason (a huge polygon...)
        dx, dy = (maxx - minx) * _OUTLINE_OVERFLOW, (maxy - miny) * _OUTLINE_OVERFLOW
        ominx, ominy, omaxx, omaxy = outline.bounds
        minx = min(minx, max(ominx, minx - dx))
        miny = min(miny, max(ominy, miny - dy))
        maxx = max(maxx, min(omaxx, maxx + dx))
        maxy = max(maxy, min(omaxy, maxy + dy))
    return minx, miny, maxx, maxy


def _context_communes(cache: _LayerCache, viewport: Viewport, deps: Sequence[str]) -> list[str]:
    """Communes of other loaded départements that show in the frame."""
    others = [d for d in sorted(cache.layer.departements()) if d not in deps]
    left, top, right, bottom = viewport.box
    x0, y0 = viewport.pixel_to_world(left, bottom)
    x1, y1 = viewport.pixel_to_world(right, top)
    frame = shapely.box(x0, y0, x1, y1)
    codes: list[str] = []
    for code in others:
        minx, miny, maxx, maxy = cache.bounds(code)
        if maxx < x0 or minx > x1 or maxy < y0 or miny > y1:
            continue
        for insee in sorted(cache.layer.in_departement(code)):
            if cache.layer.geometry_l93(insee).intersects(frame):
                codes.append(insee)
    return codes


# ---------------------------------------------------------------------------- text helpers


def _thousands(number: int, separator: str) -> str:
    return f"{number:,}".replace(",", separator)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: _Font) -> float:
    return draw.textlength(text, font=font)


def _ellipsize(draw: ImageDraw.ImageDraw, text: str, font: _Font, width: float) -> str:
    if _text_width(draw, text, font) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if _text_width(draw, text[:middle].rstrip() + "…", font) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: _Font, width: float, max_lines: int
) -> list[str]:
    """Lines of at most ``width`` pixels, broken at spaces when possible (else anywhere);
    the last line is ellipsized if text remains."""
    text = re.sub(" +", " ", text).strip()
    lines: list[str] = []
    pos = 0
    while pos < len(text) and len(lines) < max_lines:
        if len(lines) == max_lines - 1:
            lines.append(_ellipsize(draw, text[pos:], font, width))
            break
        low, high = pos + 1, len(text)  # longest text[pos:end] that fits (at least 1 char)
        while low < high:
            middle = (low + high + 1) // 2
            if _text_width(draw, text[pos:middle], font) <= width:
                low = middle
            else:
                high = middle - 1
        end = low
        if end < len(text) and text[end] != " ":
            space = text.rfind(" ", pos, end)
            if space > pos and _text_width(draw, text[pos:space], font) >= width / 2:
                end = space  # else a long unbreakable run (GeoJSON...): cut it anywhere
        lines.append(text[pos:end].rstrip())
        pos = end
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return lines or [""]


# ---------------------------------------------------------------------------- drawing


def _line(draw: ImageDraw.ImageDraw, points: _FloatArray, colour: _RGB, width: int) -> None:
    if len(points) >= 2:
        draw.line(points.ravel().tolist(), fill=colour, width=width, joint="curve")


def _dashed(
    draw: ImageDraw.ImageDraw, points: _FloatArray, colour: _RGB, width: int, dash: float
) -> None:
    """A polyline drawn as dashes of ``dash`` pixels separated by gaps of the same length."""
    if len(points) < 2:
        return
    steps = np.hypot(*np.diff(points, axis=0).T)
    distance = np.concatenate([[0.0], np.cumsum(steps)])
    total = float(distance[-1])
    start = 0.0
    while start < total:
        end = min(start + dash, total)
        inside = (distance > start) & (distance < end)
        xs = np.interp([start, *distance[inside], end], distance, points[:, 0])
        ys = np.interp([start, *distance[inside], end], distance, points[:, 1])
        _line(draw, np.column_stack([xs, ys]), colour, width)
        start += 2 * dash


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: _Font,
    fill: _RGB,
    anchor: str = "ls",
    halo: int = 0,
) -> None:
    draw.text(
        xy,
        _drawable(text, font),
        font=font,
        fill=fill,
        anchor=anchor,
        stroke_width=halo,
        stroke_fill=BACKGROUND if halo else None,
    )


def _overlaps(a: _Box, b: _Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _pixel_box(x: float, y: float, half: float) -> _Box:
    return (int(x - half), int(y - half), math.ceil(x + half), math.ceil(y + half))


def scale_bar_metres(metres_per_pixel: float, max_pixels: float) -> int:
    """The longest of :data:`SCALE_STEPS_M` that fits in ``max_pixels`` (else the shortest)."""
    fitting = [m for m in SCALE_STEPS_M if m / metres_per_pixel <= max_pixels]
    return fitting[-1] if fitting else SCALE_STEPS_M[0]


def _default_translate() -> Translate:
    messages = _french_messages()

    def translate(key: str, **params: object) -> str:
        template = messages[key]
        return template.format(**params) if params else template

    return translate


@lru_cache(maxsize=1)
def _french_messages() -> dict[str, str]:
    path = package_path("bot", "locales/maps.fr.yaml")
    entries = load_yaml(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in entries.items()}


# ---------------------------------------------------------------------------- rendering


def render_map(
    layer: CommuneLayer,
    *,
    targeted: Collection[str],
    perimeter: Perimeter | None,
    legend: MapLegend,
    size: int = 1000,
    translate: Translate | None = None,
) -> bytes:
    """A ``size`` x ``size`` PNG of the alert's communes, for the officers' approval request.

    ``targeted``: INSEE codes to highlight (codes the layer does not know are ignored);
    ``translate``: a :class:`bot.i18n.Translator` for the map's texts (French by default).
    """
    return render_map_image(
        layer,
        targeted=targeted,
        perimeter=perimeter,
        legend=legend,
        size=size,
        translate=translate,
    ).png


@dataclass(frozen=True, slots=True)
class _Layout:
    size: int
    unit: float  # 1 at 1000 px
    pad: int
    row: int
    swatch: int
    header: int
    title_font: _Font
    body_font: _Font
    label_font: _Font
    context_font: _Font
    small_font: _Font

    @property
    def text_left(self) -> int:
        return self.pad + self.swatch + round(14 * self.unit)

    @property
    def column(self) -> int:
        return round(self.size * 0.52)

    def px(self, value: float) -> int:
        return round(value * self.unit)


def _layout(size: int) -> _Layout:
    unit = size / 1000
    return _Layout(
        size=size,
        unit=unit,
        pad=round(24 * unit),
        row=round(38 * unit),
        swatch=round(26 * unit),
        header=round(72 * unit),
        title_font=font(max(12, round(34 * unit)), bold=True),
        body_font=font(max(10, round(26 * unit))),
        label_font=font(max(10, round(21 * unit)), bold=True),
        context_font=font(max(9, round(19 * unit))),
        small_font=font(max(9, round(22 * unit)), bold=True),
    )


@dataclass(frozen=True, slots=True)
class _Footer:
    perimeter_lines: list[str]
    left: list[tuple[str, str]]  # (swatch kind, text)
    right: list[str]
    outline_swatch: bool

    def rows(self) -> int:
        return len(self.perimeter_lines) + max(len(self.left), len(self.right))


def _footer(
    layout: _Layout, legend: MapLegend, t: Translate, has_marker: bool, has_outline: bool
) -> _Footer:
    sep = t("maps.thousands_separator")
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = layout.body_font
    lines = _wrap(
        measure,
        _drawable(t("maps.perimeter", text=legend.perimeter), font),
        font,
        layout.size - layout.text_left - layout.pad,
        2,
    )
    left = [("fill", t("maps.targeted", count=_thousands(legend.communes, sep)))]
    if has_marker:
        left.append(("marker", t("maps.center")))
    right = [
        t(
            "maps.audience",
            subscribers=_thousands(legend.subscribers, sep),
            groups=_thousands(legend.groups, sep),
        ),
        t("maps.population", population=_thousands(legend.population, sep)),
    ]
    return _Footer(lines, left, right, has_outline)


@dataclass(frozen=True, slots=True)
class _Scene:
    """What the map shows, in Lambert-93, and where it is framed."""

    viewport: Viewport
    departements: tuple[str, ...]
    shapes: list[_Shape]  # largest first: enclaves are drawn after the communes around them
    targeted: frozenset[str]
    outline: _Outline
    marker: tuple[float, float] | None

    def fill(self, shape: _Shape) -> _RGB:
        if shape.insee in self.targeted:
            return TARGET_FILL
        if shape.departement in self.departements:
            return COMMUNE_FILL
        return CONTEXT_FILL


def _draw_map(scene: _Scene, cache: _LayerCache, layout: _Layout) -> Image.Image:
    """Communes, outlines, marker and north arrow, drawn supersampled then reduced."""
    f = SUPERSAMPLE
    unit, viewport = layout.unit, scene.viewport
    big = Image.new("RGB", (layout.size * f, layout.size * f), BACKGROUND)
    draw = ImageDraw.Draw(big)
    for shape in scene.shapes:
        fill = scene.fill(shape)
        for ring in shape.exteriors:
            draw.polygon(viewport.to_draw(ring, f).ravel().tolist(), fill=fill)
        for ring in shape.holes:
            draw.polygon(viewport.to_draw(ring, f).ravel().tolist(), fill=BACKGROUND)
    border = max(1, round(1.2 * unit * f))
    for shape in scene.shapes:
        colour = TARGET_BORDER if shape.insee in scene.targeted else COMMUNE_BORDER
        for ring in (*shape.exteriors, *shape.holes):
            _line(draw, viewport.to_draw(ring, f), colour, border)
    dep_width = max(2, round(2.5 * unit * f))
    for code in scene.departements:
        exteriors, holes = _rings(cache.outline(code))
        for ring in (*exteriors, *holes):
            _line(draw, viewport.to_draw(ring, f), DEPARTEMENT_BORDER, dep_width)

    width, halo, dash = _outline_widths(layout)
    outline = scene.outline
    for colour, line_width in ((BACKGROUND, halo * f), (PERIMETER_COLOUR, width * f)):
        for ring in outline.solid:
            _line(draw, viewport.to_draw(ring, f), colour, line_width)
        for ring in outline.dashed:
            _dashed(draw, viewport.to_draw(ring, f), colour, line_width, dash * f)

    if scene.marker is not None:
        px, py = viewport.world_to_pixel(*scene.marker)
        mx, my = px * f - 0.5, py * f - 0.5
        r_out, r_in, r_halo = 11 * unit * f, 4 * unit * f, (11 * unit + 2) * f
        draw.ellipse((mx - r_halo, my - r_halo, mx + r_halo, my + r_halo), fill=BACKGROUND)
        draw.ellipse(
            (mx - r_out, my - r_out, mx + r_out, my + r_out),
            fill=BACKGROUND,
            outline=MARKER_COLOUR,
            width=max(2, round(3.5 * unit * f)),
        )
        draw.ellipse((mx - r_in, my - r_in, mx + r_in, my + r_in), fill=MARKER_COLOUR)

    x, top, height, half = _north_arrow(layout, viewport.box)
    draw.polygon(
        [
            (x * f, top * f),
            ((x + half) * f, (top + height) * f),
            (x * f, (top + height * 0.72) * f),
            ((x - half) * f, (top + height) * f),
        ],
        fill=TEXT_COLOUR,
        outline=BACKGROUND,
        width=max(1, round(unit * f)),
    )
    return big.reduce(f)


def _outline_widths(layout: _Layout) -> tuple[int, int, float]:
    """Perimeter line width, halo width and dash length, in output pixels."""
    width = max(2, round(3.5 * layout.unit))
    return width, width + max(2, round(3 * layout.unit)), 14 * layout.unit


def _north_arrow(layout: _Layout, box: _Box) -> tuple[int, int, int, int]:
    """x of the tip, top, height and half-width of the north arrow."""
    return (
        box[2] - layout.pad - layout.px(14),
        box[1] + layout.px(14),
        layout.px(30),
        layout.px(11),
    )


def _draw_north_label(draw: ImageDraw.ImageDraw, layout: _Layout, box: _Box, t: Translate) -> _Box:
    x, top, height, half = _north_arrow(layout, box)
    y = top + height + layout.px(4)
    _text(draw, (x, y), t("maps.north"), layout.small_font, TEXT_COLOUR, "mt", 2)
    return (x - half - 4, top - 4, x + half + 4, y + layout.row)


def _draw_scale_bar(
    draw: ImageDraw.ImageDraw, layout: _Layout, viewport: Viewport, t: Translate
) -> tuple[ScaleBar, _Box]:
    """The scale bar, bottom left of the map, at full resolution (exact length)."""
    box = viewport.box
    metres = scale_bar_metres(viewport.metres_per_pixel, 0.3 * (box[2] - box[0]))
    length = round(metres / viewport.metres_per_pixel)
    height = max(4, layout.px(8))
    x = box[0] + layout.pad
    y = box[3] - layout.pad - height
    label = t("maps.scale_km", km=_thousands(metres // 1000, t("maps.thousands_separator")))
    label_y = y - layout.px(8)
    backdrop: _Box = (
        x - layout.px(10),
        label_y - layout.px(24) - layout.px(6),
        x + length + layout.px(10),
        y + height + layout.px(8),
    )
    draw.rounded_rectangle(
        backdrop, radius=layout.px(6), fill=BACKGROUND, outline=RULE_COLOUR, width=1
    )
    bar: _Box = (x, y, x + length, y + height)
    draw.rectangle((bar[0], bar[1], bar[2] - 1, bar[3] - 1), fill=SCALE_BAR_COLOUR)
    tick = layout.px(6)
    draw.rectangle((bar[0], y - tick, bar[0] + 1, y - 1), fill=TEXT_COLOUR)
    draw.rectangle((bar[2] - 2, y - tick, bar[2] - 1, y - 1), fill=TEXT_COLOUR)
    _text(draw, (x + length / 2, label_y), label, layout.small_font, TEXT_COLOUR, "ms")
    return ScaleBar(metres, label, bar), backdrop


def _draw_labels(
    draw: ImageDraw.ImageDraw,
    layout: _Layout,
    scene: _Scene,
    cache: _LayerCache,
    reserved: list[_Box],
    highlighted: npt.NDArray[np.bool_],
) -> list[tuple[str, _Box]]:
    """Names of the biggest targeted communes, then of a few others for orientation.

    A name never overlaps another, the marker, the scale bar or the north arrow; it avoids the
    perimeter line if it can (a targeted commune's name may cross it as a last resort); names
    of targeted communes beyond the first cover at most LABEL_ZONE_SHARE of the zone.
    """
    viewport, unit = scene.viewport, layout.unit
    box = viewport.box
    inner: _Box = (box[0] + 4, box[1] + 4, box[2] - 4, box[3] - 4)
    by_size = sorted(scene.shapes, key=lambda s: (-s.population, s.insee))
    chosen = [s for s in by_size if s.insee in scene.targeted][:MAX_TARGET_LABELS]
    chosen += [
        s for s in by_size if s.insee not in scene.targeted and s.departement in scene.departements
    ][:MAX_CONTEXT_LABELS]
    zone_px = int(highlighted.sum())
    rings_px = [viewport.to_draw(r) + 0.5 for r in (*scene.outline.solid, *scene.outline.dashed)]
    outline_px = shapely.MultiLineString(rings_px) if rings_px else None
    clearance = _outline_widths(layout)[1] / 2 + 2
    covered = 0.0
    labels: list[tuple[str, _Box]] = []
    offsets = [o * unit for o in (0.0, -26.0, 26.0, -48.0, 48.0)]
    for shape in chosen:
        targeted = shape.insee in scene.targeted
        font = layout.label_font if targeted else layout.context_font
        name = _drawable(shape.name, font)
        px, py = viewport.world_to_pixel(*shape.label_point)
        candidates: list[tuple[float, _Box, bool]] = []
        geometry = cache.layer.geometry_l93(shape.insee)
        for offset in offsets:
            anchor = Point(viewport.pixel_to_world(px, py + offset))
            if offset and geometry.distance(anchor) > 16 * unit * viewport.metres_per_pixel:
                continue  # a name stays on (or right next to) its commune
            left, top, right, bottom = draw.textbbox(
                (px, py + offset), name, font=font, anchor="mm", stroke_width=3
            )
            found: _Box = (int(left) - 2, int(top) - 2, int(right) + 3, int(bottom) + 3)
            inside = (
                found[0] >= inner[0]
                and found[1] >= inner[1]
                and found[2] <= inner[2]
                and found[3] <= inner[3]
            )
            if inside and not any(_overlaps(found, other) for other in reserved):
                crosses = outline_px is not None and bool(
                    outline_px.distance(shapely.box(*found)) <= clearance
                )
                candidates.append((offset, found, crosses))
        clear = [c for c in candidates if not c[2]]
        pick = clear[0] if clear else (candidates[0] if candidates and targeted else None)
        if pick is None:
            continue
        offset, found, _ = pick
        area = int(highlighted[found[1] : found[3], found[0] : found[2]].sum())
        if targeted:
            if labels and covered + area > LABEL_ZONE_SHARE * zone_px:
                continue
            covered += area
        colour = TEXT_COLOUR if targeted else MUTED_TEXT
        _text(draw, (px, py + offset), name, font, colour, "mm", 3)
        reserved.append(found)
        labels.append((shape.name, found))
    return labels


def _draw_header_footer(
    draw: ImageDraw.ImageDraw, layout: _Layout, box: _Box, title: str, footer: _Footer
) -> None:
    size, pad, row, swatch = layout.size, layout.pad, layout.row, layout.swatch
    draw.rectangle((0, 0, size - 1, box[1] - 1), fill=BACKGROUND)
    draw.rectangle((0, box[3], size - 1, size - 1), fill=BACKGROUND)
    draw.line((0, box[1] - 1, size - 1, box[1] - 1), fill=RULE_COLOUR, width=1)
    draw.line((0, box[3], size - 1, box[3]), fill=RULE_COLOUR, width=1)
    font = layout.title_font
    title = _ellipsize(draw, _drawable(title, font), font, size - 2 * pad - layout.px(40))
    _text(draw, (pad, box[1] // 2), title, font, TEXT_COLOUR, "lm")

    font = layout.body_font
    y = box[3] + layout.px(16)
    if footer.outline_swatch:
        middle = y + row // 2
        draw.line(
            (pad, middle, pad + swatch, middle),
            fill=PERIMETER_COLOUR,
            width=max(2, layout.px(4)),
        )
    for line in footer.perimeter_lines:
        _text(draw, (layout.text_left, y + row // 2), line, font, TEXT_COLOUR, "lm")
        y += row
    column = layout.column
    for index, (kind, text) in enumerate(footer.left):
        middle = y + index * row + row // 2
        if kind == "fill":
            draw.rectangle(
                (pad, middle - swatch // 2 + 2, pad + swatch, middle + swatch // 2 - 2),
                fill=TARGET_FILL,
            )
        else:
            r, cx = swatch // 2 - 2, pad + swatch // 2
            draw.ellipse(
                (cx - r, middle - r, cx + r, middle + r),
                fill=BACKGROUND,
                outline=MARKER_COLOUR,
                width=max(2, layout.px(3)),
            )
            dot = r // 3
            draw.ellipse((cx - dot, middle - dot, cx + dot, middle + dot), fill=MARKER_COLOUR)
        text = _ellipsize(draw, _drawable(text, font), font, column - layout.text_left - pad)
        _text(draw, (layout.text_left, middle), text, font, TEXT_COLOUR, "lm")
    for index, text in enumerate(footer.right):
        middle = y + index * row + row // 2
        text = _ellipsize(draw, _drawable(text, font), font, size - column - pad)
        _text(draw, (column, middle), text, font, TEXT_COLOUR, "lm")


def render_map_image(
    layer: CommuneLayer,
    *,
    targeted: Collection[str],
    perimeter: Perimeter | None,
    legend: MapLegend,
    size: int = 1000,
    translate: Translate | None = None,
) -> RenderedMap:
    """Like :func:`render_map`, with the viewport and what was placed where."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}, not {size!r}")
    t = translate or _default_translate()
    cache = _cache(layer)
    codes = sorted({c for c in targeted if c in cache.departement_of})
    marker = _marker(cache, perimeter, codes)
    outline = _outline(cache, perimeter, codes)
    deps = _departements(cache, codes, perimeter)

    layout = _layout(size)
    has_outline = bool(outline.solid or outline.dashed)
    footer = _footer(layout, legend, t, marker is not None, has_outline)
    footer_height = footer.rows() * layout.row + 2 * layout.px(16)
    box: _Box = (0, layout.header, size, size - footer_height)
    viewport = Viewport.fit(_frame(cache, deps, outline), box)

    dep_codes = sorted(c for d in deps for c in cache.layer.in_departement(d))
    shapes = [cache.shape(c) for c in (*dep_codes, *_context_communes(cache, viewport, deps))]
    shapes.sort(key=lambda s: (-s.area, s.insee))
    scene = _Scene(viewport, deps, shapes, frozenset(codes), outline, marker)

    image = _draw_map(scene, cache, layout)
    draw = ImageDraw.Draw(image)
    reserved = [_draw_north_label(draw, layout, box, t)]
    marker_px = None if marker is None else viewport.world_to_pixel(*marker)
    if marker_px is not None:
        reserved.append(_pixel_box(*marker_px, 15 * layout.unit))
    scale_bar, backdrop = _draw_scale_bar(draw, layout, viewport, t)
    reserved.append(backdrop)
    # Highlighted pixels, before any name is written: names may hide only a share of them.
    pixels = np.asarray(image)
    highlighted = (
        (pixels[:, :, 0] == TARGET_FILL[0])
        & (pixels[:, :, 1] == TARGET_FILL[1])
        & (pixels[:, :, 2] == TARGET_FILL[2])
    )
    labels = _draw_labels(draw, layout, scene, cache, reserved, highlighted)
    _draw_header_footer(draw, layout, box, legend.title, footer)

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)  # 6: 10 % smaller, twice as slow
    return RenderedMap(buffer.getvalue(), viewport, deps, scale_bar, tuple(labels), marker_px)
