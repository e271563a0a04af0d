"""CAP 1.2 export and import (bot/cap): schema validity, round trips, hand-written messages,
every import error, and a fuzz test that only CapError ever comes out."""

from __future__ import annotations

import json
import re
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]
from shapely.geometry import box, mapping

from bot.cap import (
    CAP_NS,
    SCHEMA_PATH,
    CapAlert,
    CapDraft,
    CapError,
    CapReference,
    CapSettings,
    CapSource,
    alert_to_cap,
    cap_alert_from_alert,
    cap_alert_from_source,
    cap_categories,
    cap_levels,
    cap_source,
    cap_to_draft,
)
from bot.geo.communes import CommuneLayer
from bot.geo.perimeter import Perimeter, parse_perimeter
from bot.i18n import Catalog
from bot.reference import Reference, load_reference
from bot.storage.alerts import Alert
from tests.harness import shared_layer

ROOT = Path(__file__).resolve().parent.parent
NS = {"cap": CAP_NS}
PARIS = ZoneInfo("Europe/Paris")
SENT = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 14:00 in Paris
FACTS = datetime.fromisoformat("2026-11-24T12:40:00+00:00")
EXPIRES = datetime.fromisoformat("2026-11-25T13:00:00+00:00")

VESOUL = "70550"
GRAY = "70279"
MENDE = "48095"
VESOUL_TOWN_HALL = (47.61934, 6.15455)
SQUARE_AROUND_VESOUL = json.dumps(mapping(box(6.13, 47.60, 6.18, 47.64)))

EXPECTED_CAP_CATEGORY = {
    "vol": "Security",
    "cambriolage": "Security",
    "agression": "Security",
    "escroquerie": "Security",
    "disparition": "Rescue",
    "crue": "Met",
    "prevention": "Safety",
}


# ---------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def layer() -> CommuneLayer:
    return shared_layer()


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(ROOT / "config/communities.yaml", ROOT / "config/categories.yaml")


@pytest.fixture(scope="module")
def xsd() -> Any:
    """The schema loaded here on its own, not through bot.cap."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def perimeter_json(perimeter: Perimeter) -> str:
    """Same format as bot.alert_approval.perimeter_json (what the alerts table stores)."""
    return json.dumps({"text": perimeter.text, "center": perimeter.center,
                       "radius_m": perimeter.radius_m,
                       "polygon": None if perimeter.polygon_wgs84 is None
                       else perimeter.polygon_wgs84.wkt}, ensure_ascii=False)


def stored_alert(perimeter: Perimeter, category: str = "cambriolage", alert_id: int = 12,
                 body: str = "Cambriolage en cours rue des Lilas, deux individus en fuite.",
                 ) -> Alert:
    return Alert(
        id=alert_id, category=category, perimeter=perimeter.text,
        perimeter_json=perimeter_json(perimeter), all_communities=False, body=body,
        facts_at=FACTS, requested_by="telegram:100", request_platform="telegram",
        request_chat_id="100", status="approved", required_approvals=1, stale_override=False,
        rejection_reason=None,
        created_at=datetime.fromisoformat("2026-11-24T12:55:00+00:00"),
        decided_at=datetime.fromisoformat("2026-11-24T12:58:00+00:00"),
        broadcast_started_at=None, completed_at=None,
        expires_at=EXPIRES)


def build(layer: CommuneLayer, reference: Reference, perimeter_text: str,
          category: str = "cambriolage", **options: Any) -> tuple[CapAlert, Perimeter]:
    perimeter = parse_perimeter(perimeter_text, layer)
    alert = stored_alert(perimeter, category)
    options.setdefault("sent", SENT)
    cap = cap_alert_from_alert(alert, category=reference.categories[category],
                               communes=perimeter.communes, layer=layer,
                               audience=["Commerçants", "Élus"], **options)
    return cap, perimeter


def export_valid(cap: CapAlert, xsd: Any) -> Any:
    """Export, check against the XSD, return the parsed root."""
    data = alert_to_cap(cap)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    xsd.assertValid(root)
    return root


def text(root: Any, path: str) -> str:
    element = root.find(path, NS)
    assert element is not None, path
    return str(element.text)


def texts(root: Any, path: str) -> list[str]:
    return [str(e.text) for e in root.findall(path, NS)]


def geocodes(root: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for element in root.findall("cap:info/cap:area/cap:geocode", NS):
        found.setdefault(text(element, "cap:valueName"), []).append(text(element, "cap:value"))
    return found


def round_trip(cap: CapAlert, layer: CommuneLayer) -> CapDraft:
    return cap_to_draft(alert_to_cap(cap), layer)


def cap_message(info: str, *, status: str = "Actual", msg_type: str = "Alert",
                extra: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>fr.pref70.test.1</identifier>
  <sender>pref70@interieur.gouv.fr</sender>
  <sent>2026-11-24T15:00:00+01:00</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {extra}
  {info}
</alert>""".encode()


def info_block(area: str, *, event: str = "Cambriolages en série",
               category: str = "Security", language: str = "fr-FR") -> str:
    return f"""<info>
    <language>{language}</language>
    <category>{category}</category>
    <event>{event}</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <onset>2026-11-24T14:30:00+01:00</onset>
    <expires>2026-11-25T14:30:00+01:00</expires>
    <headline>Vague de cambriolages</headline>
    <description>Soyez vigilants.</description>
    {area}
  </info>"""


def area_block(*, polygons: tuple[str, ...] = (), circles: tuple[str, ...] = (),
               codes: tuple[tuple[str, str], ...] = (), desc: str = "Zone test") -> str:
    parts = [f"<areaDesc>{desc}</areaDesc>"]
    parts += [f"<polygon>{p}</polygon>" for p in polygons]
    parts += [f"<circle>{c}</circle>" for c in circles]
    parts += [f"<geocode><valueName>{n}</valueName><value>{v}</value></geocode>"
              for n, v in codes]
    return "<area>" + "".join(parts) + "</area>"


def cap_polygon(geometry: Any) -> str:
    """A shapely polygon as CAP "lat,lon" pairs."""
    return " ".join(f"{lat},{lon}" for lon, lat in geometry.exterior.coords)


# ---------------------------------------------------------------------------- the schema


def test_schema_file_is_the_oasis_cap12_schema(xsd: Any) -> None:
    source = SCHEMA_PATH.read_text(encoding="utf-8")
    assert "<!-- Copyright OASIS Open 2010 All Rights Reserved -->" in source
    assert "docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.xsd" in source
    assert "google/cap-library" in source
    tree = etree.parse(str(SCHEMA_PATH))
    schema_root = tree.getroot()
    assert schema_root.get("targetNamespace") == CAP_NS
    assert schema_root.get("version") == "1.2"
    xs = "{http://www.w3.org/2001/XMLSchema}"
    names = {e.get("name") for e in schema_root.iter(f"{xs}element")}
    assert {"alert", "info", "area", "polygon", "circle", "geocode", "references",
            "valueName", "value"} <= names
    # CAP 1.2 additions over 1.1: responseType Avoid and AllClear.
    enumerations = {e.get("value") for e in schema_root.iter(f"{xs}enumeration")}
    assert {"Avoid", "AllClear", "Rescue", "CBRNE", "Exercise"} <= enumerations


# ---------------------------------------------------------------------------- export


def test_export_radius_perimeter(layer: CommuneLayer, reference: Reference, xsd: Any) -> None:
    cap, perimeter = build(layer, reference, "47.62,6.155+3km")
    root = export_valid(cap, xsd)
    assert text(root, "cap:identifier") == "fr.gendarmerie.70.alerte.12"
    assert text(root, "cap:sender") == "alerte-70@gendarmerie.interieur.gouv.fr"
    assert text(root, "cap:sent") == "2026-11-24T14:00:00+01:00"
    assert text(root, "cap:status") == "Actual"
    assert text(root, "cap:msgType") == "Alert"
    assert text(root, "cap:scope") == "Public"
    assert root.find("cap:references", NS) is None
    assert text(root, "cap:info/cap:language") == "fr-FR"
    assert texts(root, "cap:info/cap:category") == ["Security"]
    assert text(root, "cap:info/cap:event") == "Cambriolage"
    assert text(root, "cap:info/cap:urgency") == "Immediate"
    assert text(root, "cap:info/cap:severity") == "Severe"
    assert text(root, "cap:info/cap:certainty") == "Observed"
    assert text(root, "cap:info/cap:audience") == "Commerçants, Élus"
    assert text(root, "cap:info/cap:onset") == "2026-11-24T13:40:00+01:00"
    assert text(root, "cap:info/cap:expires") == "2026-11-25T14:00:00+01:00"
    assert text(root, "cap:info/cap:senderName").startswith("Gendarmerie nationale")
    assert text(root, "cap:info/cap:headline") == "Cambriolage — 47.62,6.155+3km"
    assert text(root, "cap:info/cap:description").startswith("Cambriolage en cours")
    assert texts(root, "cap:info/cap:area/cap:circle") == ["47.62,6.155 3"]
    assert root.find("cap:info/cap:area/cap:polygon", NS) is None
    assert sorted(geocodes(root)["INSEE"]) == sorted(perimeter.communes)
    area_desc = text(root, "cap:info/cap:area/cap:areaDesc")
    assert area_desc.startswith("47.62,6.155+3km : ") and "Vesoul" in area_desc

    draft = round_trip(cap, layer)
    assert draft.communes == perimeter.communes
    assert VESOUL in draft.communes
    assert draft.category == "cambriolage"
    assert draft.msg_type == "Alert" and draft.status == "Actual"
    assert draft.identifier == cap.identifier and draft.sender == cap.sender
    assert draft.sent == SENT
    assert draft.onset == FACTS
    assert draft.expires == EXPIRES
    assert draft.description == cap.description
    assert draft.headline == "Cambriolage — 47.62,6.155+3km"
    assert [(c.lat, c.lon, c.radius_m) for c in draft.circles] == [(47.62, 6.155, 3000.0)]
    assert draft.polygon is None
    # The perimeter text is in the operator's grammar: it parses back to the same communes.
    assert parse_perimeter(draft.perimeter_text, layer).communes == perimeter.communes


def test_export_polygon_perimeter(layer: CommuneLayer, reference: Reference, xsd: Any) -> None:
    cap, perimeter = build(layer, reference, SQUARE_AROUND_VESOUL, category="vol")
    root = export_valid(cap, xsd)
    assert texts(root, "cap:info/cap:category") == ["Security"]
    assert text(root, "cap:info/cap:urgency") == "Expected"
    assert text(root, "cap:info/cap:severity") == "Moderate"
    assert text(root, "cap:info/cap:certainty") == "Likely"
    polygons = texts(root, "cap:info/cap:area/cap:polygon")
    assert len(polygons) == 1
    pairs = polygons[0].split()
    assert len(pairs) >= 4 and pairs[0] == pairs[-1]
    lats = [float(p.split(",")[0]) for p in pairs]
    lons = [float(p.split(",")[1]) for p in pairs]
    assert min(lats) == 47.60 and max(lats) == 47.64  # latitude first
    assert min(lons) == 6.13 and max(lons) == 6.18
    assert root.find("cap:info/cap:area/cap:circle", NS) is None
    assert sorted(geocodes(root)["INSEE"]) == sorted(perimeter.communes)

    draft = round_trip(cap, layer)
    assert draft.communes == perimeter.communes
    assert draft.category == "vol"
    assert draft.polygon is not None
    assert draft.polygon.equals(perimeter.polygon_wgs84)
    assert draft.perimeter_text.startswith("cap:polygon")

    # The polygon alone (no geocodes) finds the same communes.
    without_codes = cap_message(info_block(area_block(polygons=(polygons[0],))))
    assert cap_to_draft(without_codes, layer).communes == perimeter.communes


def test_export_polygon_with_radius_is_widened(layer: CommuneLayer, reference: Reference,
                                               xsd: Any) -> None:
    square = json.dumps(mapping(box(6.150, 47.620, 6.152, 47.622)))
    cap, perimeter = build(layer, reference, square + "+2km")
    root = export_valid(cap, xsd)
    draft = cap_to_draft(cap_message(info_block(area_block(
        polygons=tuple(texts(root, "cap:info/cap:area/cap:polygon"))))), layer)
    assert draft.polygon is not None
    assert draft.polygon.contains(shapely.from_geojson(square))
    assert draft.communes <= perimeter.communes
    assert len(draft.communes) > 1  # wider than the square, which lies inside Vesoul
    assert round_trip(cap, layer).communes == perimeter.communes


def test_export_communes_only(layer: CommuneLayer, reference: Reference, xsd: Any) -> None:
    cap, perimeter = build(layer, reference, "Vesoul, Gray", category="escroquerie")
    root = export_valid(cap, xsd)
    assert root.find("cap:info/cap:area/cap:polygon", NS) is None
    assert root.find("cap:info/cap:area/cap:circle", NS) is None
    assert geocodes(root) == {"INSEE": [GRAY, VESOUL]}
    assert text(root, "cap:info/cap:area/cap:areaDesc") == "Vesoul, Gray : Gray, Vesoul"
    draft = round_trip(cap, layer)
    assert draft.communes == perimeter.communes == {VESOUL, GRAY}
    assert draft.category == "escroquerie"
    assert draft.perimeter_text == f"{GRAY}, {VESOUL}"
    assert draft.circles == () and draft.polygon is None


def test_export_update_with_references(layer: CommuneLayer, reference: Reference,
                                       xsd: Any) -> None:
    first, perimeter = build(layer, reference, "Vesoul+2km")
    previous = CapReference(first.sender, first.identifier, first.sent)
    update, _ = build(layer, reference, "Vesoul+2km", msg_type="Update",
                      references=[previous], revision=1,
                      sent=SENT + timedelta(minutes=30))
    root = export_valid(update, xsd)
    assert text(root, "cap:identifier") == "fr.gendarmerie.70.alerte.12.1"
    assert text(root, "cap:msgType") == "Update"
    assert text(root, "cap:references") == (
        "alerte-70@gendarmerie.interieur.gouv.fr,fr.gendarmerie.70.alerte.12,"
        "2026-11-24T14:00:00+01:00")
    assert text(root, "cap:incidents") == "fr.gendarmerie.70.alerte.12"
    assert text(root, "cap:sent") == "2026-11-24T14:30:00+01:00"
    draft = round_trip(update, layer)
    assert draft.msg_type == "Update"
    assert draft.references == (previous,)
    assert draft.communes == perimeter.communes


def test_export_cancel(layer: CommuneLayer, reference: Reference, xsd: Any) -> None:
    first, perimeter = build(layer, reference, "Gray")
    update_ref = CapReference(first.sender, first.identifier + ".1", SENT + timedelta(hours=1))
    refs = [CapReference(first.sender, first.identifier, first.sent), update_ref]
    cancel, _ = build(layer, reference, "Gray", msg_type="Cancel", references=refs,
                      revision=2, note="Alerte levée : individus interpellés.")
    root = export_valid(cancel, xsd)
    assert text(root, "cap:msgType") == "Cancel"
    assert text(root, "cap:note") == "Alerte levée : individus interpellés."
    assert len(text(root, "cap:references").split()) == 2
    draft = round_trip(cancel, layer)
    assert draft.msg_type == "Cancel"
    assert draft.references == tuple(refs)
    assert draft.communes == perimeter.communes == {GRAY}


def test_export_exercise(layer: CommuneLayer, reference: Reference, xsd: Any) -> None:
    cap, perimeter = build(layer, reference, "Mende", category="crue", status="Exercise")
    root = export_valid(cap, xsd)
    assert text(root, "cap:status") == "Exercise"
    assert texts(root, "cap:info/cap:category") == ["Met"]
    draft = round_trip(cap, layer)
    assert draft.status == "Exercise"
    assert draft.category == "crue"
    assert draft.communes == perimeter.communes == {MENDE}


@pytest.mark.parametrize("perimeter_text", ["Vesoul+2km", "Gray", "Vesoul, Gray+3km"])
def test_the_source_stored_in_the_outbox_makes_the_same_document(
        perimeter_text: str, layer: CommuneLayer, reference: Reference) -> None:
    """/cap's document is made after commit from ``CapSource`` as JSON (bot/deferred.py):
    the same bytes as from the source itself, whatever the time zones and references."""
    perimeter = parse_perimeter(perimeter_text, layer)
    alert = stored_alert(perimeter, "cambriolage", body="Vitrine forcée — « deux » <individus>")
    old = datetime(1900, 1, 1, 12, tzinfo=PARIS)  # an offset with seconds (LMT)
    source = cap_source(
        alert, category=reference.categories["cambriolage"], communes=perimeter.communes,
        sent=SENT.astimezone(PARIS), audience=["Commerçants"], msg_type="Cancel",
        references=[CapReference("a@b.fr", "fr.gendarmerie.70.alerte.12", SENT),
                    CapReference("a@b.fr", "fr.gendarmerie.70.alerte.12.1", old)],
        revision=2, note="Levée", settings=CapSettings(web="https://example.org",
                                                       contact="17", timezone="Europe/Paris"))
    again = CapSource.from_data(json.loads(json.dumps(source.as_data())))
    assert again == source
    assert alert_to_cap(cap_alert_from_source(again, layer)) == alert_to_cap(
        cap_alert_from_source(source, layer))


@pytest.mark.parametrize("key", sorted(EXPECTED_CAP_CATEGORY))
def test_every_category_maps_and_comes_back(key: str, layer: CommuneLayer,
                                            reference: Reference, xsd: Any) -> None:
    category = reference.categories[key]
    cap, _ = build(layer, reference, "Vesoul", category=key)
    root = export_valid(cap, xsd)
    assert texts(root, "cap:info/cap:category") == [EXPECTED_CAP_CATEGORY[key]]
    assert cap_categories(key) == (EXPECTED_CAP_CATEGORY[key],)
    urgency, severity, certainty = cap_levels(category.severity)
    assert text(root, "cap:info/cap:urgency") == urgency
    assert text(root, "cap:info/cap:severity") == severity
    assert text(root, "cap:info/cap:certainty") == certainty
    assert text(root, "cap:info/cap:event") == category.label
    assert round_trip(cap, layer).category == key
    # Without our event code, the label alone still gives the category back.
    foreign = cap_message(info_block(area_block(codes=(("INSEE", VESOUL),)),
                                     event=category.label, category="Other"))
    assert cap_to_draft(foreign, layer).category == key


def test_severity_mapping() -> None:
    assert cap_levels("high") == ("Immediate", "Severe", "Observed")
    assert cap_levels("medium") == ("Expected", "Moderate", "Likely")
    assert cap_levels("low") == ("Future", "Minor", "Possible")
    assert cap_levels("nonsense") == ("Unknown", "Unknown", "Unknown")
    assert cap_categories("nouvelle_categorie") == ("Other",)


def test_export_long_and_dirty_text(layer: CommuneLayer, reference: Reference,
                                    xsd: Any) -> None:
    perimeter = parse_perimeter("dep:70", layer)
    alert = stored_alert(perimeter, "disparition",
                         body="Enfant disparu\x00\x07 près de l'école.\nSignalez au 17.")
    cap = cap_alert_from_alert(alert, category=reference.categories["disparition"],
                               communes=perimeter.communes, layer=layer, sent=SENT)
    cap = replace(cap, headline="Disparition inquiétante — " + "très long texte " * 30)
    root = export_valid(cap, xsd)
    headline = text(root, "cap:info/cap:headline")
    assert len(headline) <= 160 and headline.endswith("…")
    assert text(root, "cap:info/cap:description") == (
        "Enfant disparu   près de l'école.\nSignalez au 17.")
    assert root.find("cap:info/cap:audience", NS) is None
    assert len(geocodes(root)["INSEE"]) == len(perimeter.communes) > 500
    assert round_trip(cap, layer).communes == perimeter.communes


def test_export_times(layer: CommuneLayer, reference: Reference, xsd: Any) -> None:
    cap, _ = build(layer, reference, "Vesoul")
    summer = datetime(2026, 7, 14, 10, 30, 15, 999_999, tzinfo=UTC)
    root = export_valid(replace(cap, sent=summer.astimezone(PARIS), onset=summer,
                                expires=summer + timedelta(days=1)), xsd)
    assert text(root, "cap:sent") == "2026-07-14T12:30:15+02:00"
    assert text(root, "cap:info/cap:onset") == "2026-07-14T10:30:15+00:00"


def test_cap_alert_refuses_what_cap_forbids(layer: CommuneLayer, reference: Reference) -> None:
    cap, _ = build(layer, reference, "Vesoul")
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(cap, sent=datetime(2026, 11, 24, 14, 0))
    with pytest.raises(ValueError, match="reference"):
        replace(cap, msg_type="Update")
    with pytest.raises(ValueError, match="identifier"):
        replace(cap, identifier="alerte 12")
    with pytest.raises(ValueError, match="sender"):
        replace(cap, sender="a,b@example.org")
    with pytest.raises(ValueError, match="status"):
        replace(cap, status="Test")
    with pytest.raises(ValueError, match="sender"):
        CapSettings(sender="gendarmerie 70")
    settings_ = CapSettings(sender="alerte-48@gendarmerie.interieur.gouv.fr",
                            identifier_prefix="fr.gendarmerie.48")
    assert settings_.identifier(7) == "fr.gendarmerie.48.alerte.7"
    assert settings_.identifier(7, 3) == "fr.gendarmerie.48.alerte.7.3"


# ---------------------------------------------------------------------------- import


def test_import_circle_around_vesoul(layer: CommuneLayer) -> None:
    lat, lon = VESOUL_TOWN_HALL
    message = cap_message(info_block(area_block(circles=(f"{lat},{lon} 5",),
                                                desc="Vesoul et alentours (5 km)")))
    draft = cap_to_draft(message, layer)
    assert draft.communes == layer.within_distance_of_point(lat, lon, 5000)
    assert VESOUL in draft.communes and len(draft.communes) > 10
    assert draft.category == "cambriolage"  # from the event text
    assert draft.headline == "Vague de cambriolages"
    assert draft.description == "Soyez vigilants."
    assert draft.onset == datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
    assert draft.expires == datetime(2026, 11, 25, 13, 30, tzinfo=UTC)
    assert draft.sent == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert (draft.urgency, draft.severity, draft.certainty) == ("Expected", "Moderate", "Likely")
    assert draft.area_desc == "Vesoul et alentours (5 km)"
    assert draft.perimeter_text == f"{lat},{lon}+5km"
    assert parse_perimeter(draft.perimeter_text, layer).communes == draft.communes
    assert draft.circles[0].radius_m == 5000
    disc = draft.circles[0].area_wgs84()
    assert disc.contains(shapely.Point(lon, lat))
    assert not disc.contains(shapely.Point(lon + 0.1, lat))  # ~7.5 km east


def test_import_geocodes(layer: CommuneLayer) -> None:
    english = info_block(area_block(codes=(("INSEE", GRAY),)), event="Burglary",
                         language="en-US")
    french = info_block(area_block(codes=(
        ("INSEE", VESOUL), ("insee_com", GRAY), ("EMMA_ID", "FR432"),
        ("INSEE", "2A004"), ("INSEE", "75056"))), event="Arnaque aux faux policiers")
    draft = cap_to_draft(cap_message(english + french), layer)
    assert draft.language == "fr-FR"  # the French block is chosen
    assert draft.communes == {VESOUL, GRAY}
    assert draft.ignored_codes == ("2A004", "75056")  # départements not loaded
    assert draft.category == "escroquerie"
    assert draft.perimeter_text == f"{GRAY}, {VESOUL}"
    assert draft.circles == () and draft.polygon is None


def test_import_polygon(layer: CommuneLayer) -> None:
    centre = layer.geometry_wgs84(MENDE).representative_point()
    square = box(centre.x - 0.005, centre.y - 0.005, centre.x + 0.005, centre.y + 0.005)
    message = cap_message(info_block(area_block(polygons=(cap_polygon(square),),
                                                desc="Mende centre"),
                                     event="Vigilance orange crues", category="Met"))
    draft = cap_to_draft(message, layer)
    assert MENDE in draft.communes
    assert draft.communes == layer.intersecting_polygon(square)
    assert draft.category == "crue"
    assert draft.polygon is not None and draft.polygon.equals(square)
    assert draft.perimeter_text == "cap:polygon"


def test_import_category_guesses(layer: CommuneLayer) -> None:
    def guess(event: str, category: str = "Other") -> str | None:
        message = cap_message(info_block(area_block(codes=(("INSEE", VESOUL),)),
                                         event=event, category=category))
        return cap_to_draft(message, layer).category

    assert guess("Vol à l'étalage") == "vol"
    assert guess("Agressions nocturnes") == "agression"
    assert guess("Alerte enlèvement") == "disparition"
    assert guess("Inondation") == "crue"
    assert guess("Volcanic ash") is None  # "vol" only as a word
    assert guess("Tempête", "Met") == "crue"  # the only category using Met
    assert guess("Opération", "Rescue") == "disparition"
    assert guess("Incident", "Security") is None  # shared by four categories
    # A restricted catalogue: only its keys may come back.
    message = cap_message(info_block(area_block(codes=(("INSEE", VESOUL),)), event="Vol"))
    assert cap_to_draft(message, layer, categories={"crue": "Crue"}).category is None


# ---------------------------------------------------------------------------- import errors


def minimal(area: str) -> bytes:
    return cap_message(info_block(area))


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&secret;</identifier></alert>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&lol2;</alert>"""
VALID_AREA = area_block(codes=(("INSEE", VESOUL),))

ERROR_CASES: list[tuple[str, object, str, dict[str, str]]] = [
    ("empty", b"", "cap.empty", {}),
    ("blank", b"  \n ", "cap.empty", {}),
    ("not xml", b"hello, world", "cap.not_xml", {}),
    ("truncated", minimal(VALID_AREA)[:200], "cap.not_xml", {}),
    ("not bytes", 12, "cap.not_xml", {}),
    ("xxe", XXE, "cap.dtd_forbidden", {}),
    ("billion laughs", LAUGHS, "cap.dtd_forbidden", {}),
    ("doctype in utf-16",
     ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]>'
      '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>').encode("utf-16"),
     "cap.dtd_forbidden", {}),
    ("cap 1.1", minimal(VALID_AREA).replace(b"cap:1.2", b"cap:1.1"), "cap.not_cap12",
     {"found": "{urn:oasis:names:tc:emergency:cap:1.1}alert"}),
    ("no namespace", b"<alert><identifier>x</identifier></alert>", "cap.not_cap12",
     {"found": "alert"}),
    ("bad status", cap_message(info_block(VALID_AREA), status="BOGUS"),
     "cap.schema_invalid", {"line": "6"}),
    ("time without offset", minimal(VALID_AREA).replace(b"15:00:00+01:00", b"15:00:00"),
     "cap.schema_invalid", {}),
    ("hour 24", minimal(VALID_AREA).replace(b"2026-11-24T14:30:00+01:00",
                                            b"2026-11-24T24:00:00+01:00"),
     "cap.bad_date", {"field": "onset"}),
    ("bad references", cap_message(info_block(VALID_AREA), msg_type="Update",
                                   extra="<references>pas-une-reference</references>"),
     "cap.bad_references", {"value": "pas-une-reference"}),
    ("no info", cap_message(""), "cap.no_info", {}),
    ("no area", minimal(""), "cap.no_area", {}),
    ("no usable area", minimal(area_block(codes=(("EMMA_ID", "FR432"),))), "cap.no_area", {}),
    ("outside (circle in Paris)", minimal(area_block(circles=("48.8566,2.3522 5",))),
     "cap.outside_area", {"area": "Zone test"}),
    ("outside (codes elsewhere)", minimal(area_block(codes=(("INSEE", "75056"),))),
     "cap.outside_area", {}),
    ("unknown insee", minimal(area_block(codes=(("INSEE", VESOUL), ("INSEE", "70999"),
                                                ("INSEE", "ABC")))),
     "cap.unknown_insee", {"codes": "70999, ABC"}),
    ("polygon too short", minimal(area_block(polygons=("47.6,6.1 47.7,6.2 47.6,6.1",))),
     "cap.polygon_too_few_points", {"count": "3"}),
    ("polygon not closed", minimal(area_block(polygons=("47.6,6.1 47.7,6.2 47.6,6.2 47.5,6.0",))),
     "cap.polygon_not_closed", {}),
    ("polygon syntax", minimal(area_block(polygons=("47.6;6.1 47.7,6.2 47.6,6.2 47.6;6.1",))),
     "cap.polygon_syntax", {"pair": "47.6;6.1"}),
    ("polygon latitude", minimal(area_block(polygons=("147.6,6.1 47.7,6.2 47.6,6.2 147.6,6.1",))),
     "cap.polygon_syntax", {"pair": "147.6,6.1"}),
    ("polygon flat", minimal(area_block(polygons=("47.6,6.1 47.7,6.2 47.8,6.3 47.6,6.1",))),
     "cap.polygon_invalid", {}),
    ("circle without radius", minimal(area_block(circles=("47.62,6.15",))), "cap.circle_syntax",
     {"circle": "47.62,6.15"}),
    ("circle negative", minimal(area_block(circles=("47.62,6.15 -3",))), "cap.circle_syntax", {}),
    ("circle longitude", minimal(area_block(circles=("47.62,600 3",))), "cap.circle_syntax", {}),
    ("circle too large", minimal(area_block(circles=("47.62,6.15 5000",))),
     "cap.circle_radius_too_large", {"max_km": "200"}),
]


@pytest.mark.parametrize(("data", "key", "params"), [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_import_errors(data: bytes, key: str, params: dict[str, str],
                       layer: CommuneLayer) -> None:
    with pytest.raises(CapError) as caught:
        cap_to_draft(data, layer)
    error = caught.value
    assert error.key == key, str(error)
    for name, value in params.items():
        assert error.params[name] == value
    assert all(isinstance(v, str) for v in error.params.values())
    catalog = Catalog.load()
    for language in ("fr", "en"):
        rendered = catalog.text(language, error.key, **error.params)
        assert all(value in rendered for value in error.params.values())


def test_schema_error_names_the_element(layer: CommuneLayer) -> None:
    with pytest.raises(CapError) as caught:
        cap_to_draft(cap_message(info_block(VALID_AREA), status="BOGUS"), layer)
    assert "status" in caught.value.params["error"]
    assert "BOGUS" in caught.value.params["error"]


def test_import_too_large(layer: CommuneLayer) -> None:
    message = minimal(VALID_AREA)
    assert cap_to_draft(message, layer, max_bytes=len(message)).communes == {VESOUL}
    with pytest.raises(CapError) as caught:
        cap_to_draft(message, layer, max_bytes=len(message) - 1)
    assert caught.value.key == "cap.too_large"
    assert caught.value.params == {"size": str(len(message)), "max": str(len(message) - 1)}
    with pytest.raises(CapError) as caught:
        cap_to_draft(b" " * 256_001, layer)
    assert caught.value.key == "cap.too_large"


def test_xxe_never_reads_the_file(layer: CommuneLayer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    document = XXE.replace(b"file:///etc/passwd", secret.as_uri().encode())
    with pytest.raises(CapError) as caught:
        cap_to_draft(document, layer)
    assert caught.value.key == "cap.dtd_forbidden"
    assert "TOP-SECRET" not in str(caught.value)


def test_error_messages_exist_in_both_languages() -> None:
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "bot" / "cap").glob("*.py"))
    used = set(re.findall(r'CapError\(\s*"(cap\.[a-z_0-9]+)"', source))
    assert len(used) >= 18
    catalog = Catalog.load()
    cap_keys = {k for k in catalog.keys("fr") if k.startswith("cap.")}
    assert used <= cap_keys
    assert cap_keys == {k for k in catalog.keys("en") if k.startswith("cap.")}
    formatter = string.Formatter()
    for key in cap_keys:
        fields = [{f for _, f, _, _ in formatter.parse(catalog.text(lang, key)) if f}
                  for lang in ("fr", "en")]
        assert fields[0] == fields[1], key


def test_error_render() -> None:
    error = CapError("cap.too_large", size="300000", max="256000")
    assert error.render({"cap.too_large": "{size} > {max}"}) == "300000 > 256000"
    assert error.render({}) == str(error) == "cap.too_large (size='300000', max='256000')"


# ---------------------------------------------------------------------------- fuzzing


def _valid_message() -> bytes:
    lat, lon = VESOUL_TOWN_HALL
    return cap_message(info_block(area_block(
        circles=(f"{lat},{lon} 2",), polygons=("47.6,6.1 47.7,6.2 47.6,6.2 47.6,6.1",),
        codes=(("INSEE", VESOUL), ("INSEE", "2A004")))))


VALID = _valid_message()


def _check_only_cap_error(data: object, layer: CommuneLayer) -> None:
    try:
        draft = cap_to_draft(data, layer)  # type: ignore[arg-type]
    except CapError as error:
        assert error.key != "cap.unreadable", f"unexpected failure: {error}"
        assert error.key.startswith("cap.")
    else:
        assert draft.communes


FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=3000))
def test_fuzz_bytes(data: bytes) -> None:
    _check_only_cap_error(data, shared_layer())


@FUZZ
@given(st.text(max_size=2000))
def test_fuzz_text(data: str) -> None:
    _check_only_cap_error(data, shared_layer())


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 40),
                          st.binary(max_size=12)), max_size=6))
def test_fuzz_mutated_cap(edits: list[tuple[int, int, bytes]]) -> None:
    """Splices into a real CAP message reach the deeper checks, not only the XML parser."""
    data = bytearray(VALID)
    for position, length, insert in edits:
        data[position:position + length] = insert
    _check_only_cap_error(bytes(data), shared_layer())


_COORD = st.one_of(st.floats(-200, 200), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from(["", "x", "1e999", "-0", "47,6"])).map(str)


@FUZZ
@given(st.lists(st.tuples(_COORD, _COORD), max_size=8), st.tuples(_COORD, _COORD, _COORD))
def test_fuzz_geometry(points: list[tuple[str, str]], circle: tuple[str, str, str]) -> None:
    polygon = " ".join(f"{a},{b}" for a, b in points)
    message = minimal(area_block(polygons=(polygon,), circles=(f"{circle[0]},{circle[1]} "
                                                                f"{circle[2]}",)))
    _check_only_cap_error(message, shared_layer())
