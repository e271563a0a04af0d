"""Files made after commit: an event's transaction writes what to draw (a recipe, read
in the transaction), the reply sender draws it in a worker thread, outside the core's
lock, and sends it. A crash before sending leaves the recipe in the reply outbox: it is
drawn and sent at restart, from the same data.

An alert's photo is not drawn but read from the database when its post goes
(``load_photo``): its bytes are stored once, with the alert, not in each officers'
channel's reply row. A photo deleted meanwhile (the alert ended) is not sent."""

from __future__ import annotations

import json
from typing import Any

from shapely import wkt

from bot.context import Services
from bot.domain import Attachment, Deferred
from bot.geo.perimeter import Perimeter
from bot.i18n import Translator
from bot.maps import MapLegend, render_map
from bot.photos import Photo

MAP = "map"
PHOTO = "photo"


class PhotoGone(LookupError):
    """The alert's photo was deleted before its post went (the alert ended)."""


def map_recipe(filename: str, language: str, perimeter: Perimeter,
               legend: MapLegend) -> Deferred:
    """What the approval request's map needs, as data: the targeted communes, the
    perimeter's geometry, the legend's figures and the language of its texts."""
    polygon = perimeter.polygon_wgs84
    recipe = {
        "language": language,
        "perimeter": {"text": perimeter.text, "communes": sorted(perimeter.communes),
                      "center": perimeter.center, "radius_m": perimeter.radius_m,
                      "polygon": None if polygon is None else polygon.wkt,
                      "parts": list(perimeter.parts)},
        "legend": {"title": legend.title, "perimeter": legend.perimeter,
                   "communes": legend.communes, "subscribers": legend.subscribers,
                   "groups": legend.groups, "population": legend.population},
    }
    return Deferred(MAP, filename, "image/png", json.dumps(recipe, ensure_ascii=False))


def _perimeter(data: dict[str, Any]) -> Perimeter:
    center = data["center"]
    return Perimeter(
        text=data["text"], communes=frozenset(data["communes"]),
        center=None if center is None else (float(center[0]), float(center[1])),
        radius_m=data["radius_m"],
        polygon_wgs84=None if data["polygon"] is None else wkt.loads(data["polygon"]),
        parts=tuple(data["parts"]))


def draw(services: Services, deferred: Deferred) -> bytes:
    """The file's bytes; CPU work, run in a worker thread (never on the event loop)."""
    if deferred.kind != MAP:
        raise ValueError(f"nothing draws a {deferred.kind!r}")
    recipe = json.loads(deferred.recipe)
    perimeter = _perimeter(recipe["perimeter"])
    return render_map(services.geo, targeted=perimeter.communes, perimeter=perimeter,
                      legend=MapLegend(**recipe["legend"]),
                      translate=Translator(services.catalog, recipe["language"]))


def photo_recipe(alert_id: int, photo: Photo) -> Deferred:
    """An alert's photo, to read from the database when its post goes."""
    recipe = {"alert_id": alert_id, "sha256": photo.digest}
    return Deferred(PHOTO, photo.attachment(alert_id).filename, photo.kind.mime_type,
                    json.dumps(recipe))


async def load_photo(services: Services, deferred: Deferred) -> Attachment:
    """The photo a ``photo_recipe`` names, as it is stored now."""
    recipe = json.loads(deferred.recipe)
    photo = await services.stores.photos.get(int(recipe["alert_id"]))
    if photo is None or photo.digest != recipe["sha256"]:
        raise PhotoGone(f"the photo of alert {recipe['alert_id']} is no longer stored")
    return photo.attachment(int(recipe["alert_id"]))
