"""The approval-request map: what is drawn where, checked on the pixels of the PNG."""

from __future__ import annotations

import io
import math
import re
import string
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import shapely
import yaml
from PIL import Image, ImageFont
from shapely.geometry import Point

from bot.geo.communes import CommuneLayer, to_l93
from bot.geo.perimeter import Perimeter, parse_perimeter
from bot.i18n import Catalog, Translator
from bot.maps import (
    COMMUNE_FILL,
    PERIMETER_COLOUR,
    SCALE_BAR_COLOUR,
    TARGET_FILL,
    MapLegend,
    RenderedMap,
    Viewport,
    _drawable,
    font_path,
    render_map,
    render_map_image,
    scale_bar_metres,
    world_to_pixel,
)
from tests.harness import ROOT, shared_layer

VESOUL = "70550"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The perimeter line is 4 px wide at 1000 px: its pixels lie within 2 px of the true line,
# plus up to half a pixel's diagonal.
LINE_TOLERANCE_PX = 2.75
# A quadrilateral around Gray (Haute-Saône), lon/lat.
GRAY_POLYGON = (
    '{"type":"Polygon","coordinates":[[[5.55,47.40],[5.75,47.38],[5.80,47.50],'
    "[5.62,47.55],[5.55,47.40]]]}"
)

Pixels = npt.NDArray[np.uint8]


def legend_for(layer: CommuneLayer, perimeter: Perimeter, title: str = "Alerte n°12") -> MapLegend:
    return MapLegend(
        title=f"{title} — Cambriolage",
        perimeter=perimeter.text,
        communes=len(perimeter.communes),
        subscribers=1234,
        groups=3,
        population=layer.population(perimeter.communes),
    )


def render(text: str, **kwargs: object) -> tuple[Perimeter, RenderedMap, Pixels]:
    layer = shared_layer()
    perimeter = parse_perimeter(text, layer)
    result = render_map_image(
        layer,
        targeted=perimeter.communes,
        perimeter=perimeter,
        legend=legend_for(layer, perimeter),
        **kwargs,  # type: ignore[arg-type]
    )
    pixels = np.asarray(Image.open(io.BytesIO(result.png)).convert("RGB"))
    return perimeter, result, pixels


def pixel_of(viewport: Viewport, x: float, y: float) -> tuple[int, int]:
    px, py = world_to_pixel(viewport, x, y)
    return int(px), int(py)


def colour_at(pixels: Pixels, xy: tuple[int, int]) -> tuple[int, int, int]:
    r, g, b = pixels[xy[1], xy[0]]
    return int(r), int(g), int(b)


def clear_interior_points(
    result: RenderedMap,
    codes: Iterable[str],
    avoid_px: float = 4.0,
    lines: Iterable[shapely.LineString] = (),
) -> list[tuple[str, tuple[int, int]]]:
    """Pixels of the communes' interior points that no border, name, marker or perimeter line
    (``lines``, in pixels) can cover: ``avoid_px`` pixels inside the commune, away from the
    rest (perimeter lines: 4 pixels more, for the line's width and its halo)."""
    layer = shared_layer()
    lines = list(lines)
    viewport = result.viewport
    margin = avoid_px * viewport.metres_per_pixel
    points = []
    for code in sorted(codes):
        geom = layer.geometry_l93(code)
        point = geom.representative_point()
        if geom.boundary.distance(point) < margin:
            continue
        xy = pixel_of(viewport, point.x, point.y)
        if any(
            box[0] - avoid_px <= xy[0] <= box[2] + avoid_px
            and box[1] - avoid_px <= xy[1] <= box[3] + avoid_px
            for _, box in result.labels
        ):
            continue
        if result.marker is not None and math.dist(result.marker, xy) < 20:
            continue
        centre = Point(xy[0] + 0.5, xy[1] + 0.5)
        if any(line.distance(centre) < avoid_px + 4 for line in lines):
            continue
        points.append((code, xy))
    return points


def perimeter_pixels(result: RenderedMap, pixels: Pixels) -> npt.NDArray[np.float64]:
    """(x, y) centres of the pixels of exactly the perimeter colour, inside the map area."""
    left, top, right, bottom = result.viewport.box
    area = pixels[top:bottom, left:right]
    ys, xs = np.nonzero(np.all(area == np.array(PERIMETER_COLOUR, dtype=np.uint8), axis=2))
    return np.column_stack([xs + left + 0.5, ys + top + 0.5]).astype(np.float64)


def ring_in_pixels(viewport: Viewport, ring: shapely.LineString) -> shapely.LineString:
    coords = np.asarray(ring.coords)
    return shapely.LineString([world_to_pixel(viewport, x, y) for x, y in coords])


def assert_all_round(
    result: RenderedMap, expected: shapely.LineString, drawn: npt.NDArray[np.float64]
) -> None:
    """The drawn line follows the whole expected line, except where a name is written."""
    checked = 0
    for fraction in np.linspace(0, 1, 60, endpoint=False):
        point = expected.interpolate(fraction, normalized=True)
        if any(
            box[0] - 3 <= point.x <= box[2] + 3 and box[1] - 3 <= point.y <= box[3] + 3
            for _, box in result.labels
        ):
            continue
        checked += 1
        nearest = np.hypot(drawn[:, 0] - point.x, drawn[:, 1] - point.y).min()
        assert nearest <= 1.5, (fraction, point)
    assert checked >= 45


# ---------------------------------------------------------------------------- the image


def test_png_signature_and_dimensions() -> None:
    layer = shared_layer()
    perimeter = parse_perimeter("Vesoul+5km", layer)
    for size in (1000, 640):
        png = render_map(
            layer,
            targeted=perimeter.communes,
            perimeter=perimeter,
            legend=legend_for(layer, perimeter),
            size=size,
        )
        assert png.startswith(PNG_SIGNATURE)
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert image.mode == "RGB"


def test_rendering_is_deterministic() -> None:
    _, first, _ = render("Vesoul+5km")
    _, second, _ = render("Vesoul+5km")
    assert first.png == second.png


@pytest.mark.parametrize("size", [0, 100, 5000, True, 1000.0])
def test_unreasonable_sizes_are_refused(size: object) -> None:
    layer = shared_layer()
    perimeter = parse_perimeter("Vesoul", layer)
    with pytest.raises(ValueError, match="size"):
        render_map(
            layer,
            targeted=perimeter.communes,
            perimeter=perimeter,
            legend=legend_for(layer, perimeter),
            size=size,  # type: ignore[arg-type]
        )


# ---------------------------------------------------------------------------- communes


def test_targeted_communes_are_highlighted_and_the_others_grey() -> None:
    layer = shared_layer()
    perimeter, result, pixels = render("Vesoul+5km")
    assert result.departements == ("70",)
    zone = ring_in_pixels(result.viewport, layer.geometry_l93(VESOUL).buffer(5000).exterior)
    targeted = clear_interior_points(result, perimeter.communes, lines=[zone])
    assert len(targeted) >= 8, targeted
    for code, xy in targeted:
        assert colour_at(pixels, xy) == TARGET_FILL, (code, xy)

    others = sorted(layer.in_departement("70") - perimeter.communes)
    sample = clear_interior_points(result, others[::25], lines=[zone])
    assert len(sample) >= 12, sample
    for code, xy in sample:
        assert colour_at(pixels, xy) == COMMUNE_FILL, (code, xy)


def test_unknown_codes_are_ignored_and_nothing_targeted_still_draws_a_map() -> None:
    layer = shared_layer()
    legend = MapLegend("Alerte n°1", "—", 0, 0, 0, 0)
    single = render_map_image(layer, targeted={"99999", VESOUL}, perimeter=None, legend=legend)
    assert single.departements == ("70",)
    assert single.marker is not None  # a single commune: its town hall is marked
    hall = to_l93(Point(*reversed(layer.reference_point(VESOUL))))
    assert math.dist(single.marker, world_to_pixel(single.viewport, hall.x, hall.y)) < 0.01

    codes = {"99999", "70019", "70285", "70002", "70003"}
    result = render_map_image(layer, targeted=codes, perimeter=None, legend=legend)
    pixels = np.asarray(Image.open(io.BytesIO(result.png)).convert("RGB"))
    assert result.marker is None
    points = clear_interior_points(result, codes - {"99999"})
    assert len(points) >= 3
    for _, xy in points:
        assert colour_at(pixels, xy) == TARGET_FILL

    empty = render_map_image(layer, targeted=(), perimeter=None, legend=legend)
    assert empty.departements == ("48", "70")  # nothing to frame on: all that is loaded
    assert empty.png.startswith(PNG_SIGNATURE)


# ---------------------------------------------------------------------------- perimeter


def test_commune_radius_outline_is_the_commune_widened_by_the_radius() -> None:
    """Vesoul+5km targets the communes within 5 km of Vesoul's boundary: that is the line."""
    layer = shared_layer()
    _, result, pixels = render("Vesoul+5km")
    viewport = result.viewport
    zone = layer.geometry_l93(VESOUL).buffer(5000)
    expected = ring_in_pixels(viewport, zone.exterior)
    drawn = perimeter_pixels(result, pixels)
    assert len(drawn) > 200
    distances = shapely.distance(shapely.points(drawn), expected)
    assert float(distances.max()) <= LINE_TOLERANCE_PX
    assert float(distances.mean()) <= 1.2  # centred on the true line
    assert_all_round(result, expected, drawn)


def test_point_radius_outline_is_a_true_circle_around_the_marker() -> None:
    perimeter, result, pixels = render("47.62,6.15+5km")
    assert perimeter.center == (47.62, 6.15)
    viewport = result.viewport
    centre = to_l93(Point(6.15, 47.62))
    cx, cy = world_to_pixel(viewport, centre.x, centre.y)
    assert result.marker is not None
    assert math.dist(result.marker, (cx, cy)) < 0.01
    radius_px = 5000 / viewport.metres_per_pixel
    drawn = perimeter_pixels(result, pixels)
    assert len(drawn) > 100
    distances = np.hypot(drawn[:, 0] - cx, drawn[:, 1] - cy)
    errors = distances - radius_px
    assert np.abs(errors).max() <= LINE_TOLERANCE_PX, (distances.min(), distances.max(), radius_px)
    assert abs(float(errors.mean())) <= 0.5  # centred on the true circle
    angles = np.degrees(np.arctan2(drawn[:, 1] - cy, drawn[:, 0] - cx)) % 360
    assert set((angles // 30).astype(int)) == set(range(12))  # all round
    # The marker: a dark dot at the centre.
    assert max(colour_at(pixels, (int(cx), int(cy)))) < 80


def test_polygon_perimeter_outline_and_communes() -> None:
    layer = shared_layer()
    perimeter, result, pixels = render(GRAY_POLYGON)
    assert perimeter.polygon_wgs84 is not None and perimeter.radius_m is None
    assert result.marker is None
    viewport = result.viewport
    polygon = to_l93(perimeter.polygon_wgs84)
    expected = ring_in_pixels(viewport, polygon.exterior)
    drawn = perimeter_pixels(result, pixels)
    assert len(drawn) > 200
    assert float(shapely.distance(shapely.points(drawn), expected).max()) <= LINE_TOLERANCE_PX
    assert_all_round(result, expected, drawn)

    targeted = clear_interior_points(result, perimeter.communes, lines=[expected])
    assert len(targeted) >= 8
    for code, xy in targeted:
        assert colour_at(pixels, xy) == TARGET_FILL, code
    others = sorted(layer.in_departement("70") - perimeter.communes)
    far = clear_interior_points(result, others[::40], lines=[expected])
    assert far
    for code, xy in far:
        assert colour_at(pixels, xy) == COMMUNE_FILL, code


def test_polygon_with_radius_draws_the_widened_zone_too() -> None:
    perimeter, result, pixels = render(GRAY_POLYGON + "+2km")
    assert perimeter.radius_m == 2000
    assert perimeter.polygon_wgs84 is not None
    polygon = to_l93(perimeter.polygon_wgs84)
    viewport = result.viewport
    inner = ring_in_pixels(viewport, polygon.exterior)
    outer = ring_in_pixels(viewport, polygon.buffer(2000).exterior)
    drawn = shapely.points(perimeter_pixels(result, pixels))
    near_outer = shapely.distance(drawn, outer) <= LINE_TOLERANCE_PX
    near_inner = shapely.distance(drawn, inner) <= LINE_TOLERANCE_PX
    assert bool(np.all(near_outer | near_inner))
    assert near_outer.sum() > 50 and near_inner.sum() > 100


# ---------------------------------------------------------------------------- framing, scale


def fill_extent(result: RenderedMap, pixels: Pixels) -> tuple[int, int, int, int]:
    """Pixel columns and rows covered by commune fills (grey or highlighted) in the map."""
    left, top, right, bottom = result.viewport.box
    area = pixels[top:bottom, left:right]
    mask = np.zeros(area.shape[:2], dtype=bool)
    for colour in (COMMUNE_FILL, TARGET_FILL):
        mask |= np.all(area == np.array(colour, dtype=np.uint8), axis=2)
    ys, xs = np.nonzero(mask)
    return int(xs.min()) + left, int(ys.min()) + top, int(xs.max()) + left, int(ys.max()) + top


def departement_bounds(layer: CommuneLayer, code: str) -> tuple[float, float, float, float]:
    geoms = [layer.geometry_l93(c) for c in layer.in_departement(code)]
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return float(minx), float(miny), float(maxx), float(maxy)


def test_lozere_perimeter_frames_lozere_not_haute_saone() -> None:
    layer = shared_layer()
    perimeter, result, pixels = render("dep:48")
    assert result.departements == ("48",)
    assert perimeter.communes == frozenset(layer.in_departement("48"))
    viewport = result.viewport
    left, top, right, bottom = viewport.box
    # Lozère fills the map area (with a margin); Vesoul is far off the image.
    x0, y0, x1, y1 = fill_extent(result, pixels)
    assert max((x1 - x0) / (right - left), (y1 - y0) / (bottom - top)) > 0.85
    vx, vy = world_to_pixel(viewport, *layer.geometry_l93(VESOUL).representative_point().coords[0])
    assert not (0 <= vx < 1000 and 0 <= vy < 1000)
    minx, miny, maxx, maxy = departement_bounds(layer, "48")
    for x, y in ((minx, miny), (maxx, maxy)):
        px, py = world_to_pixel(viewport, x, y)
        assert left <= px <= right and top <= py <= bottom
    points = clear_interior_points(result, sorted(perimeter.communes)[::10])
    assert len(points) >= 8
    for code, xy in points:
        assert colour_at(pixels, xy) == TARGET_FILL, code


def test_scale_bar_length_matches_its_label() -> None:
    layer = shared_layer()
    _, result, pixels = render("Vesoul+5km")
    bar = result.scale_bar
    match = re.fullmatch(r"(\d+)\s*km", bar.label.replace("\u202f", "").replace("\u00a0", " "))
    assert match, bar.label
    km = int(match.group(1))
    assert km in (1, 2, 5, 10, 20)
    assert bar.metres == km * 1000

    # Metres per pixel measured on the image: Haute-Saône's drawn width against its real one.
    minx, _, maxx, _ = departement_bounds(layer, "70")
    x0, _, x1, _ = fill_extent(result, pixels)
    measured_mpp = (maxx - minx) / (x1 - x0 + 1)
    assert measured_mpp == pytest.approx(result.viewport.metres_per_pixel, rel=0.01)

    # The bar on the image: the longest horizontal run of its colour in the map area.
    left, top, right, bottom = result.viewport.box
    mask = np.all(pixels[top:bottom, left:right] == SCALE_BAR_COLOUR, axis=2)
    longest = 0
    for row in mask:
        padded = np.concatenate([[0], row.astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(padded))
        if len(edges):
            longest = max(longest, int((edges[1::2] - edges[::2]).max()))
    assert longest == bar.pixels
    assert longest * measured_mpp == pytest.approx(km * 1000, rel=0.02)
    # Chosen to fit: the next step would be more than 30 % of the map's width.
    assert longest <= 0.3 * (right - left)


def test_scale_bar_steps() -> None:
    assert scale_bar_metres(121.0, 300) == 20000
    assert scale_bar_metres(20.0, 300) == 5000
    assert scale_bar_metres(5.0, 300) == 1000
    assert scale_bar_metres(1.0, 300) == 1000  # never below 1 km
    assert scale_bar_metres(900.0, 300) == 200000  # several départements


def test_rendering_time() -> None:
    """Under a second, the first time (fresh layer: nothing cached) as well as the next."""
    layer = CommuneLayer.load([ROOT / "config/geo/communes-70.geojson"])
    for text in ("Vesoul+5km", "dep:70"):
        perimeter = parse_perimeter(text, layer)
        legend = legend_for(layer, perimeter)
        for _ in range(2):
            start = time.perf_counter()
            render_map(layer, targeted=perimeter.communes, perimeter=perimeter, legend=legend)
            assert time.perf_counter() - start < 1.0, text


# ---------------------------------------------------------------------------- texts


def header(png: bytes) -> Pixels:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))[:60]


def test_accented_text_is_drawn_with_its_accents() -> None:
    """The title "É..." must not look like "E...": the font draws accents."""
    if font_path() is None:
        pytest.skip("no DejaVu Sans on this machine")
    layer = shared_layer()
    perimeter = parse_perimeter("Vesoul", layer)
    images = []
    for title in ("Évacuation été", "Evacuation ete", "Évacuation été"):
        legend = legend_for(layer, perimeter, title=title)
        images.append(
            render_map(layer, targeted=perimeter.communes, perimeter=perimeter, legend=legend)
        )
    assert not np.array_equal(header(images[0]), header(images[1]))
    assert np.array_equal(header(images[0]), header(images[2]))


def test_fallback_font_gets_plain_letters_not_boxes() -> None:
    font = ImageFont.load_default(size=20)
    drawn = _drawable("Échenoz-la-Méline — n°12", font)
    assert drawn.startswith("Echenoz-la-Meline")  # Pillow's own font has no accents
    assert _drawable("Vesoul", font) == "Vesoul"


def test_long_or_multiline_texts_stay_on_their_lines() -> None:
    layer = shared_layer()
    perimeter = parse_perimeter("Vesoul", layer)
    title = "Alerte n°3 —\nVol\x00 " + "très long titre " * 20  # line breaks, controls
    legend = MapLegend(title, "Vesoul,\r\n" * 2000, 1, 2, 3, 4)
    result = render_map_image(
        layer, targeted=perimeter.communes, perimeter=perimeter, legend=legend
    )
    _, top, _, bottom = result.viewport.box
    assert bottom - top > 700  # two lines of perimeter at most


def test_english_texts() -> None:
    layer = shared_layer()
    perimeter = parse_perimeter("Vesoul+5km", layer)
    legend = legend_for(layer, perimeter)
    catalog = Catalog.load()
    french = render_map(layer, targeted=perimeter.communes, perimeter=perimeter, legend=legend)
    english = render_map(
        layer,
        targeted=perimeter.communes,
        perimeter=perimeter,
        legend=legend,
        translate=Translator(catalog, "en"),
    )
    same_as_default = render_map(
        layer,
        targeted=perimeter.communes,
        perimeter=perimeter,
        legend=legend,
        translate=Translator(catalog, "fr"),
    )
    assert english != french
    assert same_as_default == french


def test_map_messages_exist_in_both_languages() -> None:
    locales = ROOT / "bot/locales"
    source = (ROOT / "bot/maps.py").read_text(encoding="utf-8")
    used = set(re.findall(r"""["'](maps\.[a-z_]+)["']""", source))
    assert len(used) >= 6
    catalogues = {}
    for language in ("fr", "en"):
        path: Path = locales / f"maps.{language}.yaml"
        catalogues[language] = {
            str(k): str(v) for k, v in yaml.safe_load(path.read_text(encoding="utf-8")).items()
        }
        assert used <= set(catalogues[language]), language
        assert all(key.startswith("maps.") for key in catalogues[language])
    assert set(catalogues["fr"]) == set(catalogues["en"])
    for key, french in catalogues["fr"].items():
        fields = {f for _, f, _, _ in string.Formatter().parse(french) if f}
        english = {f for _, f, _, _ in string.Formatter().parse(catalogues["en"][key]) if f}
        assert fields == english, key
