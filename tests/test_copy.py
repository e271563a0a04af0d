"""The copy's rules (bot/alert_copy.py) and the perimeter in words (bot/place.py), one by
one; tests/test_copy_golden.py shows whole copies on each platform."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.alert_approval import perimeter_json
from bot.alert_copy import delivered_alert, facts_line
from bot.enums import AlertKind, AlertStatus
from bot.geo.departements import DEPARTEMENTS, Article
from bot.geo.perimeter import Area, AreaKind, parse_perimeter
from bot.i18n import Catalog, Translator
from bot.place import distance, name_list, named_first, place_text
from bot.reference import Category
from bot.storage.alerts import Alert
from tests.harness import shared_layer

CATALOG = Catalog.load()
FR, EN = Translator(CATALOG, "fr"), Translator(CATALOG, "en")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 14:00 in Paris
NOIDANS = "47.6135,6.1299"


def category(severity: str = "high", max_age: int | None = 60,
             protected: bool = False) -> Category:
    return Category("cambriolage", "Cambriolage", severity,
                    None if max_age is None else timedelta(minutes=max_age),
                    timedelta(hours=24), 1, False, protected)


def alert(perimeter: str = "Vesoul+5km", facts_at: datetime = NOW - timedelta(minutes=25),
          stated: bool = True, kind: AlertKind = AlertKind.ALERT, body: str = "Texte") -> Alert:
    parsed = parse_perimeter(perimeter, shared_layer())
    return Alert(1, "cambriolage", "(texte stocké)", perimeter_json(parsed), False, body,
                 facts_at, "telegram:100", "telegram", "100", AlertStatus.APPROVED, 1, False,
                 None, NOW, NOW, None, None, NOW + timedelta(days=1), kind=kind,
                 facts_stated=stated)


def words(perimeter: str, t: Translator = FR, counted: bool = True) -> str:
    return place_text(t, parse_perimeter(perimeter, shared_layer()).areas, counted)


@pytest.mark.parametrize(("perimeter", "french", "english"), [
    ("Vesoul", "Vesoul", "Vesoul"),
    ("Vesoul, Gray", "Vesoul et Gray", "Vesoul and Gray"),
    ("Vesoul+5km", "Vesoul et 5 km alentour (32 communes)",
     "Vesoul and 5 km around (32 communes)"),
    ("Gray+2,5km", "Gray et 2,5 km alentour (23 communes)",
     "Gray and 2.5 km around (23 communes)"),
    (f"{NOIDANS}+2km", "secteur de Noidans-lès-Vesoul, rayon 2 km",
     "area of Noidans-lès-Vesoul, 2 km radius"),
    (f"{NOIDANS}+800m", "secteur de Noidans-lès-Vesoul, rayon 800 m",
     "area of Noidans-lès-Vesoul, 800 m radius"),
    ("dep:70", "toute la Haute-Saône", "all of Haute-Saône"),
    ("dep:48+2km", "toute la Lozère et 2 km alentour (152 communes)",
     "all of Lozère and 2 km around (152 communes)"),
    ("70000", "code postal 70000, autour de Vesoul (42 communes)",
     "postcode 70000, around Vesoul (42 communes)"),
    ("Vesoul+5km, dep:48", "Vesoul et 5 km alentour (32 communes) ; toute la Lozère",
     "Vesoul and 5 km around (32 communes); all of Lozère"),
])
def test_each_kind_of_part_in_words(perimeter: str, french: str, english: str) -> None:
    assert words(perimeter) == french
    assert words(perimeter, EN) == english


def test_a_drawn_zone_is_named_after_its_commune() -> None:
    square = ('{"type":"Polygon","coordinates":[[[5.56,47.415],[5.62,47.415],[5.62,47.475],'
              '[5.56,47.475],[5.56,47.415]]]}')
    assert words(square) == "zone tracée autour de Gray (8 communes)"
    inside = ('{"type":"Polygon","coordinates":[[[6.150,47.620],[6.152,47.620],[6.152,47.622],'
              '[6.150,47.622],[6.150,47.620]]]}')
    assert words(inside) == "zone tracée dans Vesoul"
    assert words(f"{inside}+1km").startswith("zone tracée autour de Vesoul et 1 km alentour (")


def test_counts_can_be_left_to_the_sentence_around() -> None:
    assert words("Vesoul+5km", counted=False) == "Vesoul et 5 km alentour"
    assert words("70000", counted=False) == "code postal 70000, autour de Vesoul"


def test_long_lists_of_communes_stay_short() -> None:
    assert name_list(FR, ["A", "B", "C", "D"]) == "A, B, C et D"
    assert name_list(FR, ["A", "B", "C", "D", "E"]) == "A, B, C et 2 autres communes"
    assert name_list(EN, ["A", "B", "C", "D", "E"]) == "A, B, C and 2 other communes"
    assert name_list(FR, ["A", "B", "C"], limit=2) == "A et 2 autres communes"


def test_distances_in_each_language() -> None:
    assert (distance(FR, 5000), distance(FR, 2500), distance(FR, 800)) == (
        "5 km", "2,5 km", "800 m")
    assert distance(EN, 2500) == "2.5 km"


def test_every_departement_reads_with_its_article() -> None:
    spoken = {code: place_text(FR, [Area(AreaKind.DEPARTEMENT, code=code)])
              for code in DEPARTEMENTS}
    assert spoken["70"] == "toute la Haute-Saône" and spoken["25"] == "tout le Doubs"
    assert spoken["88"] == "toutes les Vosges" and spoken["01"] == "tout l'Ain"
    assert spoken["07"] == "toute l'Ardèche" and spoken["75"] == "tout Paris"
    assert spoken["974"] == "toute La Réunion"
    assert len(DEPARTEMENTS) == 101 and {d.article for d in DEPARTEMENTS.values()} == set(Article)
    assert place_text(FR, [Area(AreaKind.DEPARTEMENT, code="99")]) == \
        "tout le département 99"


def test_the_preview_names_the_typed_communes_first_then_the_largest() -> None:
    layer = shared_layer()
    perimeter = parse_perimeter("Gray, Vesoul+5km", layer)
    names = named_first(perimeter.areas, perimeter.communes, layer)
    assert names[:3] == ["Gray", "Vesoul", "Échenoz-la-Méline"]  # then by population
    assert sorted(names) == sorted(c.name for c in map(layer.by_insee, perimeter.communes)
                                   if c is not None)


# -- the copy's rules --------------------------------------------------------------------


def test_facts_say_when_in_words_people_use() -> None:
    cases = {
        timedelta(minutes=25): "Faits : aujourd'hui vers 13:35 (il y a 25 min)",
        timedelta(seconds=20): "Faits : aujourd'hui vers 13:59 (à l'instant)",
        timedelta(hours=2): "Faits : aujourd'hui vers 12:00 (il y a 2 h)",
        timedelta(hours=2, minutes=5): "Faits : aujourd'hui vers 11:55 (il y a 2 h 05)",
        timedelta(hours=14, minutes=30): "Faits : hier vers 23:30 (il y a 14 h 30)",
        timedelta(days=3): "Faits : le 21/11 vers 14:00",
    }
    for age, expected in cases.items():
        assert facts_line(FR, alert(facts_at=NOW - age), category(), NOW, PARIS) == expected
    assert facts_line(EN, alert(), category(), NOW, PARIS) == \
        "Facts: today at about 13:35 (25 min ago)"


def test_no_facts_line_without_a_stated_time_for_prevention_or_a_follow_up() -> None:
    assert facts_line(FR, alert(stated=False), category(), NOW, PARIS) == ""
    assert facts_line(FR, alert(), category("low", None), NOW, PARIS) == ""
    assert facts_line(FR, alert(kind=AlertKind.UPDATE), category(), NOW, PARIS) == ""


def test_icon_and_words_follow_the_severity() -> None:
    high = delivered_alert(FR, alert(), category("high"), "Gendarmerie", NOW, PARIS)
    medium = delivered_alert(FR, alert(), category("medium"), "Gendarmerie", NOW, PARIS)
    advice = delivered_alert(FR, alert(), category("low", None), "Gendarmerie", NOW, PARIS)
    assert high.text.startswith("🚨 Cambriolage — Vesoul et 5 km alentour (32 communes)\n"
                                "Faits : ")
    assert medium.text.startswith("⚠️ Cambriolage — ")
    assert advice.text.startswith("ℹ️ Cambriolage — Vesoul et 5 km alentour (32 communes)\n\n")
    assert "🚨" not in advice.text and "Faits" not in advice.text
    assert advice.text.endswith("Gendarmerie · message de prévention n°1 · 24/11 à 14:00")
    assert high.text.endswith("Gendarmerie · alerte n°1 · 24/11 à 14:00")
    assert (high.tone.value, advice.tone.value) == ("normal", "quiet")


def test_the_signature_is_the_one_given() -> None:
    copy = delivered_alert(FR, alert(), category(), "Police nationale — Mende", NOW, PARIS)
    assert copy.text.endswith("Police nationale — Mende · alerte n°1 · 24/11 à 14:00")
    assert "<i>Police nationale — Mende · alerte n°1" in (copy.html or "")


def test_the_raw_perimeter_is_never_the_headline() -> None:
    for perimeter in (f"{NOIDANS}+2km", "dep:70", "70550+3km"):
        copy = delivered_alert(FR, alert(perimeter), category(), "Gendarmerie", NOW, PARIS)
        headline = copy.text.splitlines()[0]
        assert perimeter not in headline and "+" not in headline and "dep:" not in headline


def test_copies_are_worded_in_the_readers_language() -> None:
    copy = delivered_alert(EN, alert(), category(), "Gendarmerie", NOW, PARIS)
    assert copy.text.startswith("🚨 Cambriolage — Vesoul and 5 km around (32 communes)\n"
                                "Facts: today at about 13:35 (25 min ago)")


def test_an_alert_stored_before_the_words_keeps_its_text() -> None:
    old = dataclasses.replace(alert(), perimeter_json='{"text": "Vesoul+5km"}',
                              perimeter="Vesoul+5km")
    copy = delivered_alert(FR, old, category(), "Gendarmerie", NOW, PARIS)
    assert copy.text.startswith("🚨 Cambriolage — Vesoul+5km\n")


def test_user_text_is_escaped_in_the_html() -> None:
    copy = delivered_alert(FR, alert(body="<b>x</b> & y"), category(), "Gendarmerie", NOW,
                           PARIS)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in (copy.html or "")
