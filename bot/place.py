"""Where an alert goes, in words people read: « Vesoul et 5 km alentour (32 communes) »,
« secteur de Noidans-lès-Vesoul, rayon 2 km », « zone tracée autour de Gray (14 communes) »,
« toute la Haute-Saône », « Vesoul, Gray et Lure » — never ``47.62,6.15+2km``, ``dep:70``
or GeoJSON.

The perimeter grammar says what each part is (``bot.geo.perimeter.Area``); the alert keeps
those areas in ``perimeter_json`` so that every copy, preview and list words them in its
reader's language. Alerts stored before have only their text (``alerts.perimeter``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.geo.communes import CommuneLayer
from bot.geo.departements import Article, departement
from bot.geo.perimeter import Area, AreaKind
from bot.i18n import Translator

NAMES_IN_A_LIST = 4  # a list of communes longer than this reads « A, B, C et 5 autres communes »
DEPARTEMENT_KEYS = {
    Article.LE: "place.departement_le", Article.LA: "place.departement_la",
    Article.LES: "place.departement_les", Article.L_MASCULINE: "place.departement_l_m",
    Article.L_FEMININE: "place.departement_l_f", Article.NONE_MASCULINE: "place.departement_m",
    Article.NONE_FEMININE: "place.departement_f",
}


# -- stored with the alert -------------------------------------------------------------------


def areas_to_json(areas: Sequence[Area]) -> list[dict[str, Any]]:
    return [{"kind": a.kind.value, "near": a.near, "near_insee": a.near_insee, "code": a.code,
             "radius_m": a.radius_m, "communes": a.communes,
             **({"excluded": True} if a.excluded else {})} for a in areas]


def areas_from_json(perimeter_json: str) -> tuple[Area, ...]:
    """The areas stored with an alert; () for an alert stored before they were."""
    try:
        stored = json.loads(perimeter_json).get("areas") or []
        return tuple(Area(AreaKind(item["kind"]), str(item["near"]), str(item["near_insee"]),
                          str(item["code"]), item["radius_m"], int(item["communes"]),
                          bool(item.get("excluded", False)))
                     for item in stored)
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


# -- in words --------------------------------------------------------------------------------


def place_text(t: Translator, areas: Sequence[Area], counted: bool = True) -> str:
    """The perimeter as a phrase; ``counted`` adds how many communes a part reaches where
    its words do not say it (« Vesoul et 5 km alentour (32 communes) »); the parts after
    « sauf » follow (« toute la Lozère sauf Mende »)."""
    kept = [area for area in areas if not area.excluded]
    taken = [area for area in areas if area.excluded]
    text = _places(t, kept, counted)
    return text + t("place.except", place=_places(t, taken, False)) if taken else text


def _places(t: Translator, areas: Sequence[Area], counted: bool) -> str:
    phrases: list[str] = []
    named: list[str] = []  # consecutive communes without a radius make one list
    for area in areas:
        if area.kind is AreaKind.COMMUNE and area.radius_m is None:
            named.append(area.near)
            continue
        if named:
            phrases.append(name_list(t, named))
            named = []
        phrases.append(_phrase(t, area, counted))
    if named:
        phrases.append(name_list(t, named))
    return t("place.joiner").join(phrases)


def name_list(t: Translator, names: Sequence[str], limit: int = NAMES_IN_A_LIST) -> str:
    """« Vesoul », « Vesoul et Gray », « Vesoul, Gray et Lure », and past ``limit`` names
    « Vesoul, Gray, Lure et 5 autres communes »."""
    if len(names) > limit:  # so at least 2 are hidden: « et 1 autre » never reads
        rest = t("place.other_communes", count=len(names) - (limit - 1))
        return ", ".join(names[:limit - 1]) + t("place.and") + rest
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + t("place.and") + names[-1]


def distance(t: Translator, meters: float) -> str:
    """« 5 km », « 2,5 km », « 800 m » (the decimal mark of the reader's language)."""
    if meters < 1000:
        return t("place.meters", value=f"{meters:.0f}")
    figure = f"{meters / 1000:.1f}".removesuffix(".0")
    return t("place.kilometres", value=figure.replace(".", t("place.decimal_mark")))


def _phrase(t: Translator, area: Area, counted: bool) -> str:
    around = area.radius_m is not None
    if area.kind is AreaKind.POINT:  # the radius says the extent: no count
        return t("place.point", near=area.near, distance=distance(t, area.radius_m or 0))
    if area.kind is AreaKind.DEPARTEMENT:
        text = _whole_departement(t, area.code)
    elif area.kind is AreaKind.POSTAL_CODE:
        text = t("place.postal_code", code=area.code, near=area.near)
    elif area.kind is AreaKind.ZONE:
        text = t("place.zone_within" if area.communes == 1 and not around else "place.zone",
                 near=area.near)
    else:
        text = area.near
    if around:
        text = t("place.around", place=text, distance=distance(t, area.radius_m or 0))
    count = counted and (around or area.kind in (AreaKind.POSTAL_CODE, AreaKind.ZONE))
    return text + t("place.count", count=area.communes) if count and area.communes > 1 \
        else text


def _whole_departement(t: Translator, code: str) -> str:
    known = departement(code)
    if known is None:
        return t("place.departement_code", code=code)
    return t(DEPARTEMENT_KEYS[known.article], name=known.name)


# -- the communes, named ones first ------------------------------------------------------------


def named_first(areas: Sequence[Area], communes: Iterable[str],
                layer: CommuneLayer) -> list[str]:
    """The names of ``communes`` (INSEE codes), those the operator named first (the communes
    typed, the commune under a point, a zone's or a postal code's own) in the order typed,
    then the others, most populous first: the ones an operator recognises, to check the
    target at a glance."""
    codes = set(communes)
    anchors = [a.near_insee for a in areas if a.near_insee in codes]
    first = list(dict.fromkeys(anchors))
    known = [c for c in map(layer.by_insee, sorted(codes - set(first))) if c is not None]
    others = sorted(known, key=lambda c: (-(c.population or 0), c.name))
    named = [c.name for c in map(layer.by_insee, first) if c is not None]
    return named + [c.name for c in others]
