"""Tests of the perimeter grammar (bot/geo/perimeter.py) and its locale files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from shapely.geometry import Point, box, mapping

from bot.geo.communes import CommuneLayer, to_l93
from bot.geo.perimeter import (
    MAX_PARTS,
    MAX_TEXT_LENGTH,
    Area,
    AreaKind,
    Perimeter,
    PerimeterError,
    parse_perimeter,
)

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "config" / "geo"
PATHS = [GEO / "communes-70.geojson", GEO / "communes-48.geojson"]
LOCALES = ROOT / "bot" / "locales"

VESOUL = "70550"
NOIDANS = "70388"
GRAY = "70279"
MENDE = "48095"

SQUARE_IN_VESOUL = json.dumps(mapping(box(6.150, 47.620, 6.152, 47.622)))
SQUARE_AROUND_VESOUL = json.dumps(mapping(box(6.10, 47.58, 6.20, 47.66)))
SQUARE_IN_ATLANTIC = json.dumps(mapping(box(-20.0, 40.0, -19.0, 41.0)))
BOWTIE = '{"type":"Polygon","coordinates":[[[6,47],[6.1,47.1],[6.1,47],[6,47.1],[6,47]]]}'


@pytest.fixture(scope="module")
def layer() -> CommuneLayer:
    return CommuneLayer.load(PATHS)


def _messages(lang: str) -> dict[str, str]:
    data = yaml.safe_load((LOCALES / f"perimeter.{lang}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def messages() -> dict[str, dict[str, str]]:
    return {lang: _messages(lang) for lang in ("fr", "en")}


def parse(text: str, layer: CommuneLayer, **kwargs: object) -> Perimeter:
    return parse_perimeter(text, layer, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- accepted forms


def test_single_commune(layer: CommuneLayer) -> None:
    p = parse("Vesoul", layer)
    assert p.communes == frozenset({VESOUL})
    assert p.text == "Vesoul" and p.parts == ("Vesoul",)
    assert p.radius_m is None and p.polygon_wgs84 is None
    assert p.center is not None
    assert layer.at_point(*p.center) == layer.by_insee(VESOUL)


@pytest.mark.parametrize(
    ("text", "canonical", "codes"),
    [
        ("Vesoul, Gray", "Vesoul, Gray", {VESOUL, GRAY}),
        ("vesoul;GRAY", "Vesoul, Gray", {VESOUL, GRAY}),
        (" Vesoul ,, Gray ; ", "Vesoul, Gray", {VESOUL, GRAY}),
        ("70550", "Vesoul", {VESOUL}),
        ("70550, Vesoul", "Vesoul", {VESOUL}),
        ("Roche-Morey", "La Roche-Morey", {"70373"}),
        ("st loup sur semouse", "Saint-Loup-sur-Semouse", {"70467"}),
        ("Vesoul, mende", "Vesoul, Mende", {VESOUL, MENDE}),
    ],
)
def test_lists_and_codes(layer: CommuneLayer, text: str, canonical: str, codes: set[str]) -> None:
    p = parse(text, layer)
    assert p.text == canonical
    assert p.communes == frozenset(codes)


def test_postal_code(layer: CommuneLayer) -> None:
    p = parse("70000", layer)
    assert VESOUL in p.communes and NOIDANS in p.communes
    assert p.communes == frozenset(c.insee for c in layer.by_postal_code("70000"))
    assert p.text == "70000"
    assert p.center is None  # several communes


@pytest.mark.parametrize(
    ("text", "canonical", "radius"),
    [
        ("Vesoul+5km", "Vesoul+5km", 5000.0),
        ("Vesoul + 5 km", "Vesoul+5km", 5000.0),
        ("vesoul+5KM", "Vesoul+5km", 5000.0),
        ("Vesoul+5000m", "Vesoul+5km", 5000.0),
        ("Vesoul+500m", "Vesoul+500m", 500.0),
        ("Vesoul+2,5km", "Vesoul+2.5km", 2500.0),
        ("Vesoul+2.5 km", "Vesoul+2.5km", 2500.0),
        ("70550+5 kilomètres", "Vesoul+5km", 5000.0),
    ],
)
def test_commune_with_radius(layer: CommuneLayer, text: str, canonical: str, radius: float) -> None:
    p = parse(text, layer)
    assert p.text == canonical
    assert p.radius_m == radius
    assert p.communes == frozenset(layer.within_distance_of_commune(VESOUL, radius))


def test_vesoul_5km(layer: CommuneLayer) -> None:
    p = parse("Vesoul+5km", layer)
    assert VESOUL in p.communes and NOIDANS in p.communes
    assert GRAY not in p.communes
    assert p.center is not None


def test_radius_with_decimal_comma_in_a_list(layer: CommuneLayer) -> None:
    p = parse("Vesoul+2,5km, Gray; Mende", layer)
    assert p.parts == ("Vesoul+2.5km", "Gray", "Mende")
    assert {GRAY, MENDE, VESOUL, NOIDANS} <= p.communes
    assert p.center is None and p.radius_m is None


@pytest.mark.parametrize(
    "text",
    ["47.62,6.15+10km", "47.62, 6.15 + 10 km", "47.620,6.150+10000m", " 47.62 ,6.15+10km "],
)
def test_point_with_radius(layer: CommuneLayer, text: str) -> None:
    p = parse(text, layer)
    assert p.text == "47.62,6.15+10km"
    assert p.center == (47.62, 6.15)
    assert p.radius_m == 10_000
    assert p.communes == frozenset(layer.within_distance_of_point(47.62, 6.15, 10_000))
    assert 53 <= len(p.communes) <= 57
    assert VESOUL in p.communes


def test_point_in_a_list(layer: CommuneLayer) -> None:
    p = parse("Mende, 47.62,6.15+1km; Gray", layer)
    assert p.parts == ("Mende", "47.62,6.15+1km", "Gray")
    assert {MENDE, VESOUL, GRAY} <= p.communes


def test_codes_in_a_list_are_not_coordinates(layer: CommuneLayer) -> None:
    p = parse("70550,70279", layer)
    assert p.communes == frozenset({VESOUL, GRAY})


@pytest.mark.parametrize(("text", "dep"), [("dep:70", "70"), ("DEP : 48", "48"), ("dép:70", "70")])
def test_departement(layer: CommuneLayer, text: str, dep: str) -> None:
    p = parse(text, layer)
    assert p.communes == frozenset(layer.in_departement(dep))
    assert p.text == f"dep:{dep}"


def test_departement_union(layer: CommuneLayer) -> None:
    assert len(parse("dep:70, dep:48", layer).communes) == 688
    assert parse("dep:48+1km", layer).communes == frozenset(layer.in_departement("48"))


def test_polygon_text(layer: CommuneLayer) -> None:
    p = parse(SQUARE_AROUND_VESOUL, layer)
    assert {VESOUL, NOIDANS} <= p.communes and GRAY not in p.communes
    assert p.polygon_wgs84 is not None and p.polygon_wgs84.equals(box(6.10, 47.58, 6.20, 47.66))
    assert p.center is None
    assert parse(SQUARE_IN_VESOUL, layer).communes == frozenset({VESOUL})


@pytest.mark.parametrize(
    "wrap",
    [
        lambda g: {"type": "Feature", "properties": {}, "geometry": g},
        lambda g: {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": None, "geometry": g}]},
        lambda g: {"type": "MultiPolygon", "coordinates": [g["coordinates"]]},
    ],
)
def test_polygon_wrappers(layer: CommuneLayer, wrap: object) -> None:
    geometry = json.loads(SQUARE_IN_VESOUL)
    text = json.dumps(wrap(geometry))  # type: ignore[operator]
    assert parse(text, layer).communes == frozenset({VESOUL})


def test_polygon_and_commune_list(layer: CommuneLayer) -> None:
    p = parse(f"Gray, {SQUARE_IN_VESOUL}; Mende", layer)
    assert p.communes == frozenset({GRAY, VESOUL, MENDE})
    assert len(p.parts) == 3
    assert p.polygon_wgs84 is not None


def test_polygons_are_shown_as_a_zone_around_a_commune(layer: CommuneLayer) -> None:
    around = parse(SQUARE_AROUND_VESOUL, layer)
    assert around.areas == (Area(AreaKind.ZONE, "Vesoul", VESOUL, communes=len(around.communes)),)
    mixed = parse(f"Gray, {SQUARE_IN_VESOUL}+1km", layer)
    assert mixed.areas[0] == Area(AreaKind.COMMUNE, "Gray", GRAY, communes=1)
    assert (mixed.areas[1].kind, mixed.areas[1].near, mixed.areas[1].radius_m) == (
        AreaKind.ZONE, "Vesoul", 1000)


def test_every_part_says_what_it_is_for_the_words_of_the_copy(layer: CommuneLayer) -> None:
    """What bot/place.py words: each kind of part, the commune that names it, its radius."""
    around, departement, postal, point = parse(
        "Vesoul+5km, dep:48, 70000, 47.6135,6.1299+2km", layer).areas
    assert around == Area(AreaKind.COMMUNE, "Vesoul", VESOUL, "", 5000,
                          len(parse("Vesoul+5km", layer).communes))
    assert (departement.kind, departement.code, departement.near) == (
        AreaKind.DEPARTEMENT, "48", "")
    assert (postal.kind, postal.code, postal.near) == (AreaKind.POSTAL_CODE, "70000", "Vesoul")
    assert (point.kind, point.near, point.radius_m) == (AreaKind.POINT, "Noidans-lès-Vesoul", 2000)
    by_code = parse("70550", layer).areas[0]
    assert (by_code.kind, by_code.near) == (AreaKind.COMMUNE, "Vesoul")


def test_a_point_outside_every_commune_is_named_after_the_nearest(layer: CommuneLayer) -> None:
    # In the Doubs, north of Besançon, just south of Haute-Saône: no commune of the layer
    # holds it, the radius reaches some.
    lat, lon = 47.30, 6.05
    assert layer.at_point(lat, lon) is None
    point = parse(f"{lat},{lon}+8km", layer)
    nearest = point.areas[0].near_insee
    assert nearest in point.communes
    here = to_l93(Point(lon, lat))
    distances = {code: layer.geometry_l93(code).distance(here) for code in point.communes}
    assert distances[nearest] == min(distances.values())


def test_zone_whose_centroid_is_not_targeted_is_named_after_its_largest_commune(
        layer: CommuneLayer) -> None:
    # Two small squares, in Vesoul and in Gray: the centroid lies between them, elsewhere.
    two = {"type": "MultiPolygon", "coordinates": [
        mapping(box(6.150, 47.620, 6.152, 47.622))["coordinates"],
        mapping(box(5.590, 47.445, 5.592, 47.447))["coordinates"]]}
    perimeter = parse(json.dumps(two), layer)
    assert perimeter.communes == frozenset({VESOUL, GRAY})
    assert perimeter.areas == (Area(AreaKind.ZONE, "Vesoul", VESOUL, communes=2),)  # more populous


def test_polygon_file(layer: CommuneLayer, tmp_path: Path) -> None:
    path = tmp_path / "zone.geojson"
    path.write_text(SQUARE_AROUND_VESOUL, encoding="utf-8")
    p = parse(f"fichier:{path}", layer)
    assert {VESOUL, NOIDANS} <= p.communes
    assert p.text == f"fichier:{path}"
    assert parse(str(path), layer).communes == p.communes  # a path ending in .geojson
    relative = parse("fichier:zone.geojson", layer, files_dir=tmp_path)
    assert relative.communes == p.communes
    with_radius = parse(f"fichier:{path}+5km", layer)
    assert p.communes < with_radius.communes


@pytest.mark.parametrize(
    "text",
    [
        "Vesoul",
        "Vesoul+5km, Gray",
        "70000+1km",
        "47.62,6.15+3km",
        "dep:48",
        "Vesoul+2,5km",
        SQUARE_IN_VESOUL,
        f"{SQUARE_IN_VESOUL}+2km, Mende",
    ],
)
def test_canonical_text_parses_back(layer: CommuneLayer, text: str) -> None:
    first = parse(text, layer)
    again = parse(first.text, layer)
    assert again.communes == first.communes
    assert again.text == first.text


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "key", "params"),
    [
        ("Vesoulx", "perimeter.unknown_commune", {"part": "Vesoulx"}),
        ("Vesoul, Grayy", "perimeter.unknown_commune", {"part": "Grayy"}),
        ("xqzw kjhg", "perimeter.unknown_commune_no_suggestion", {"part": "xqzw kjhg"}),
        ("99999", "perimeter.unknown_code", {"code": "99999"}),
        ("2A004", "perimeter.unknown_code", {"code": "2A004"}),
        ("7055", "perimeter.bad_code", {"part": "7055"}),
        ("Vesoul+0km", "perimeter.radius_not_positive", {"part": "Vesoul+0km"}),
        ("Vesoul+0,0m", "perimeter.radius_not_positive", {}),
        ("Vesoul+250km", "perimeter.radius_too_large", {"max_km": "200"}),
        ("Vesoul+10", "perimeter.bad_radius_unit", {"part": "Vesoul+10"}),
        ("Vesoul+10 miles", "perimeter.bad_radius_unit", {"unit": "miles"}),
        ("Vesoul+abc", "perimeter.bad_radius", {"part": "Vesoul+abc"}),
        ("Vesoul+-5km", "perimeter.bad_radius", {}),
        ("Vesoul+5km+2km", "perimeter.bad_radius", {}),
        ("+5km", "perimeter.bad_part", {}),
        ("47.62,6.15", "perimeter.point_needs_radius", {"part": "47.62,6.15"}),
        ("95.5,6.15+5km", "perimeter.bad_coordinates", {}),
        ("47.62,186.15+5km", "perimeter.bad_coordinates", {}),
        ("6.15,47.62+5km", "perimeter.point_outside", {"part": "6.15,47.62+5km"}),
        ("48.8566,2.3522+5km", "perimeter.point_outside", {}),
        ("dep:25", "perimeter.unknown_departement", {"code": "25", "known": "48, 70"}),
        ("dep:", "perimeter.unknown_departement", {}),
        ('{"type": "Polygon", "coordinates": [[[6', "perimeter.geojson_bad_json", {}),
        ('{"type": "Point", "coordinates": [6, 47]}', "perimeter.geojson_bad_type",
         {"type": "Point"}),
        ("{}", "perimeter.geojson_bad_type", {}),
        ('{"type": "Polygon", "coordinates": [[[6, 47], [7, 47]]]}',
         "perimeter.geojson_invalid_geometry", {}),
        ('{"type": "Polygon", "coordinates": []}', "perimeter.geojson_invalid_geometry", {}),
        (BOWTIE, "perimeter.geojson_invalid_geometry", {}),
        ('{"type": "Polygon", "coordinates": [[[700000, 6700000], [700100, 6700000], '
         "[700100, 6700100], [700000, 6700000]]]}", "perimeter.geojson_bad_coordinates", {}),
        (SQUARE_IN_ATLANTIC, "perimeter.polygon_no_commune", {}),
        (SQUARE_IN_VESOUL + " Gray", "perimeter.bad_part", {}),
        ("fichier:/nonexistent/zone.geojson", "perimeter.file_not_found",
         {"path": "/nonexistent/zone.geojson"}),
        ("zone-absente.geojson", "perimeter.file_not_found", {}),
        ("", "perimeter.empty", {}),
        ("  ,; ,", "perimeter.empty", {}),
        ("x" * (MAX_TEXT_LENGTH + 1), "perimeter.too_long", {"max": str(MAX_TEXT_LENGTH)}),
        (", ".join(["Vesoul"] * (MAX_PARTS + 1)), "perimeter.too_many_parts", {}),
    ],
)
def test_errors(
    layer: CommuneLayer,
    messages: dict[str, dict[str, str]],
    text: str,
    key: str,
    params: dict[str, str],
) -> None:
    with pytest.raises(PerimeterError) as info:
        parse(text, layer)
    error = info.value
    assert error.key == key, error
    for name, value in params.items():
        assert error.params.get(name) == value, error
    assert "part" in error.params
    for lang in ("fr", "en"):  # every error renders in both languages
        rendered = messages[lang][error.key].format(**error.params)
        assert rendered and "{" not in messages[lang][error.key].format_map(
            {k: "" for k in error.params}
        )
        assert error.render(messages[lang]) == rendered


def test_unknown_commune_suggestions_are_ranked(layer: CommuneLayer) -> None:
    with pytest.raises(PerimeterError) as info:
        parse("Vesoulx+5km", layer)
    assert info.value.params["part"] == "Vesoulx+5km"
    assert info.value.params["suggestions"].startswith("Vesoul — 70000")
    with pytest.raises(PerimeterError) as info:
        parse("Noidans", layer)
    assert "Noidans-lès-Vesoul — 70000" in info.value.params["suggestions"]


def test_ambiguous_name_lists_codes(tmp_path: Path) -> None:
    def feature(insee: str, name: str, postal: str, lon: float, lat: float) -> dict[str, object]:
        return {
            "type": "Feature",
            "properties": {"insee": insee, "nom": name, "departement": insee[:2],
                           "codes_postaux": [postal], "population": None},
            "geometry": mapping(box(lon, lat, lon + 0.01, lat + 0.01)),
        }

    path = tmp_path / "homonyms.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        feature("70901", "Saint-Martin", "70100", 6.0, 47.0),
        feature("48901", "Saint-Martin", "48100", 3.0, 44.5),
    ]}), encoding="utf-8")
    homonyms = CommuneLayer.load([path])
    with pytest.raises(PerimeterError) as info:
        parse_perimeter("St Martin", homonyms)
    assert info.value.key == "perimeter.ambiguous_commune"
    candidates = info.value.params["candidates"]
    assert "Saint-Martin — 48100 (INSEE 48901)" in candidates
    assert "Saint-Martin — 70100 (INSEE 70901)" in candidates
    # retyping the INSEE code works, and its canonical form stays the code
    p = parse_perimeter("70901", homonyms)
    assert p.communes == frozenset({"70901"}) and p.text == "70901"


def test_file_errors(layer: CommuneLayer, tmp_path: Path) -> None:
    big = tmp_path / "big.geojson"
    big.write_bytes(b" " * (2 * 1024 * 1024 + 1))
    with pytest.raises(PerimeterError) as info:
        parse(f"fichier:{big}", layer)
    assert info.value.key == "perimeter.file_too_large"
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PerimeterError) as info:
        parse(f"fichier:{bad}", layer)
    assert info.value.key == "perimeter.geojson_bad_json"
    binary = tmp_path / "binary.geojson"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PerimeterError) as info:
        parse(str(binary), layer)
    assert info.value.key == "perimeter.geojson_bad_json"
    with pytest.raises(PerimeterError) as info:
        parse(f"fichier:{tmp_path}", layer)  # a directory
    assert info.value.key == "perimeter.file_not_found"
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "zone.geojson").write_text(SQUARE_IN_VESOUL, encoding="utf-8")
    with pytest.raises(PerimeterError) as info:  # may not leave files_dir
        parse("fichier:../zone.geojson", layer, files_dir=inner)
    assert info.value.key == "perimeter.file_not_found"


def test_max_radius_is_configurable(layer: CommuneLayer) -> None:
    assert parse("Vesoul+20km", layer, max_radius_km=20).radius_m == 20_000
    with pytest.raises(PerimeterError) as info:
        parse("Vesoul+21km", layer, max_radius_km=20)
    assert info.value.params["max_km"] == "20"


# ---------------------------------------------------------------------------- locales


def test_every_key_in_code_exists_in_both_locales(messages: dict[str, dict[str, str]]) -> None:
    source = (ROOT / "bot" / "geo" / "perimeter.py").read_text(encoding="utf-8")
    keys = set(re.findall(r'"(perimeter\.[a-z_]+)"', source))
    assert len(keys) >= 20
    for lang, catalogue in messages.items():
        missing = keys - set(catalogue)
        assert not missing, f"{lang}: {sorted(missing)}"
    assert set(messages["fr"]) == set(messages["en"])
    for lang, catalogue in messages.items():
        for key, template in catalogue.items():
            assert isinstance(template, str) and template.strip(), (lang, key)


def test_locale_placeholders_match(messages: dict[str, dict[str, str]]) -> None:
    def fields(template: str) -> set[str]:
        return set(re.findall(r"{(\w+)}", template))

    for key, template in messages["fr"].items():
        assert fields(template) == fields(messages["en"][key]), key


# ---------------------------------------------------------------------------- fuzzing


def test_fuzz_only_perimeter_errors(layer: CommuneLayer) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    alphabet = st.sampled_from(list("Vesoul Gray,;+-.:{}[]\"0123456789kmdep:fichier/éÉ'’ \t\n\x00"))
    pieces = st.sampled_from(
        ["Vesoul", "70550", "70000", "+5km", "+2,5km", ",", ";", "47.62,6.15", "dep:70",
         '{"type":"Polygon","coordinates":', "[[[6,47],[6.1,47],[6.1,47.1],[6,47]]]", "}",
         "fichier:", ".geojson", "+", " ", "1e999", "NaN", "-"]
    )
    texts = st.one_of(
        st.text(max_size=60),
        st.text(alphabet=alphabet, max_size=60),
        st.lists(pieces, max_size=8).map("".join),
    )

    @hypothesis.settings(max_examples=400, deadline=None, database=None)  # type: ignore[untyped-decorator]
    @hypothesis.given(texts)  # type: ignore[untyped-decorator]
    def check(text: str) -> None:
        try:
            p = parse_perimeter(text, layer)
        except PerimeterError as error:
            assert error.key.startswith("perimeter.")
        else:
            assert p.communes

    check()
