"""Files built after commit: an event's transaction reads the data a file is made from and
writes it as a recipe (plain JSON) in the reply outbox; the reply sender builds the file in
a worker thread, outside the core's lock, and sends it. A crash before sending leaves the
recipe in the outbox: the file is built and sent at restart, the same file, from the same
data (nothing is read from the database again).

Three kinds (``DeferredKind``): the approval request's map (Pillow, 0.1-0.2 s), ``/cap``'s
CAP document (geometry and schema validation) and ``/mesdonnees``' data file.

An alert's photo (``DeferredKind.PHOTO``) is not built but read from the database when its
post goes (``load_photo``): its bytes are stored once, with the alert, not in each
officers' channel's reply row; a photo deleted meanwhile (the alert ended) is not sent.
"""

from __future__ import annotations

import json
from typing import Any

from shapely import wkt

from bot.cap import CapSource, alert_to_cap, cap_alert_from_source
from bot.context import Services
from bot.domain import Deferred
from bot.enums import DeferredKind
from bot.geo.perimeter import Perimeter
from bot.i18n import Translator
from bot.invitation_poster import PosterText, poster_png, qr_png
from bot.maps import MapLegend, render_map
from bot.photos import Photo
from bot.privacy import export_json

MAP = DeferredKind.MAP
CAP_FILENAME = "alerte-{number}.cap.xml"
MY_DATA_FILENAME = "mes-donnees.json"


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


def cap_recipe(language: str, source: CapSource) -> Deferred:
    """``/cap N``'s document: the alert's data as read in the transaction (``CapSource``)."""
    recipe = {"language": language, "source": source.as_data()}
    return Deferred(DeferredKind.CAP, CAP_FILENAME.format(number=source.alert_id),
                    "application/xml", json.dumps(recipe, ensure_ascii=False))


def my_data_recipe(language: str, data: dict[str, Any]) -> Deferred:
    """``/mesdonnees``' file: what the transaction read about the person (personal data:
    the outbox clears it once sent, docs/data-register.md)."""
    recipe = {"language": language, "data": data}
    return Deferred(DeferredKind.MY_DATA, MY_DATA_FILENAME, "application/json",
                    json.dumps(recipe, ensure_ascii=False))


def qr_recipe(invitation_id: int, language: str, link: str) -> Deferred:
    """An invitation's QR code. Its link holds the token: like a data export, the recipe
    is cleared from the outbox once sent, and never kept in memory (``is_shared``)."""
    return Deferred(DeferredKind.QR, f"invitation-{invitation_id}-qr.png", "image/png",
                    json.dumps({"language": language, "link": link}))


def poster_recipe(invitation_id: int, language: str, text: PosterText) -> Deferred:
    recipe = {"language": language, "issuer": text.issuer, "partner": text.partner,
              "community": text.community, "link": text.link,
              "matrix_line": text.matrix_line, "footer": text.footer,
              "platform": text.platform}
    return Deferred(DeferredKind.POSTER, f"invitation-{invitation_id}-affiche.png",
                    "image/png", json.dumps(recipe, ensure_ascii=False))


def is_picture(kind: DeferredKind) -> bool:
    """Maps are drawn on a thread of their own (Pillow's fonts are not thread-safe), the
    documents on another, so that an answer with a document never queues behind a batch
    of maps."""
    return kind in (DeferredKind.MAP, DeferredKind.QR, DeferredKind.POSTER)


def is_shared(kind: DeferredKind) -> bool:
    """A map (or an alert's photo) goes to every officers' channel: made once, kept for
    the other rows. A document goes to one chat and is forgotten once sent (a data export
    is personal)."""
    return kind in (DeferredKind.MAP, DeferredKind.PHOTO)


class PhotoGone(LookupError):
    """The alert's photo was deleted before its post went (the alert ended)."""


def photo_recipe(alert_id: int, photo: Photo) -> Deferred:
    """An alert's photo, to read from the database when its post goes."""
    recipe = {"alert_id": alert_id, "sha256": photo.digest}
    return Deferred(DeferredKind.PHOTO, photo.attachment(alert_id).filename,
                    photo.kind.mime_type, json.dumps(recipe))


async def load_photo(services: Services, deferred: Deferred) -> bytes:
    """The bytes of the photo a ``photo_recipe`` names, as it is stored now."""
    recipe = json.loads(deferred.recipe)
    photo = await services.stores.photos.get(int(recipe["alert_id"]))
    if photo is None or photo.digest != recipe["sha256"]:
        raise PhotoGone(f"the photo of alert {recipe['alert_id']} is no longer stored")
    return photo.data


def digest_of(deferred: Deferred) -> str:
    """The key under which transports upload a file once (an alert's photo: its SHA-256);
    "" for a file made for one message."""
    if deferred.kind is not DeferredKind.PHOTO:
        return ""
    return str(json.loads(deferred.recipe)["sha256"])


def _perimeter(data: dict[str, Any]) -> Perimeter:
    center = data["center"]
    return Perimeter(
        text=data["text"], communes=frozenset(data["communes"]),
        center=None if center is None else (float(center[0]), float(center[1])),
        radius_m=data["radius_m"],
        polygon_wgs84=None if data["polygon"] is None else wkt.loads(data["polygon"]),
        parts=tuple(data["parts"]))


def build(services: Services, deferred: Deferred) -> bytes:
    """The file's bytes; CPU work, run in a worker thread (never on the event loop, never
    in a transaction)."""
    recipe = json.loads(deferred.recipe)
    match deferred.kind:
        case DeferredKind.MAP:
            perimeter = _perimeter(recipe["perimeter"])
            return render_map(services.geo, targeted=perimeter.communes, perimeter=perimeter,
                              legend=MapLegend(**recipe["legend"]),
                              translate=Translator(services.catalog, recipe["language"]))
        case DeferredKind.CAP:
            source = CapSource.from_data(recipe["source"])
            return alert_to_cap(cap_alert_from_source(source, services.geo))
        case DeferredKind.MY_DATA:
            return export_json(recipe["data"])
        case DeferredKind.QR:
            return qr_png(recipe["link"])
        case DeferredKind.POSTER:
            platform = recipe.get("platform") or None  # rows written before it was kept
            text = PosterText(recipe["issuer"], recipe["partner"], recipe["community"],
                              recipe["link"], recipe["matrix_line"], recipe["footer"],
                              platform or "")
            return poster_png(text, Translator(services.catalog, recipe["language"], platform))
    raise ValueError(f"nothing builds a {deferred.kind!r}")


def instead_of(services: Services, deferred: Deferred) -> str | None:
    """What to send when the file could not be built: nothing for a map (it must never
    hold anything back; the request went in its own message), the apology the command
    would have had when the document was built in the handler."""
    if deferred.kind in (DeferredKind.MAP, DeferredKind.PHOTO):
        return None
    language = json.loads(deferred.recipe)["language"]
    return Translator(services.catalog, language)("core.internal_error")
