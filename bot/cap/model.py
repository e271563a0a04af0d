"""Value types shared by CAP export and import."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

import shapely
from shapely.geometry.base import BaseGeometry

from bot.cap.schema import format_time
from bot.geo.communes import to_l93, to_wgs84

__all__ = ["CapCircle", "CapReference", "check_aware", "check_token", "number"]

# CAP 1.2: identifier and sender "MUST NOT include spaces, commas or restricted characters
# (< and &)".
_TOKEN_RE = re.compile(r"^[^\s,<&]+$")


def check_token(what: str, value: str) -> None:
    if not _TOKEN_RE.match(value):
        raise ValueError(f"CAP {what} must be non-empty, without spaces, ',', '<' or '&': "
                         f"{value!r}")


def check_aware(what: str, moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"CAP {what} must be timezone-aware, not {moment!r}")


def number(value: float, decimals: int = 6) -> str:
    """A short decimal: at most ``decimals`` places, no trailing zeros, never "-0"."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True, slots=True)
class CapReference:
    """An earlier message an Update or Cancel refers to."""

    sender: str
    identifier: str
    sent: datetime

    def __post_init__(self) -> None:
        check_token("reference sender", self.sender)
        check_token("reference identifier", self.identifier)
        check_aware("reference sent", self.sent)

    def text(self) -> str:
        return f"{self.sender},{self.identifier},{format_time(self.sent)}"


@dataclass(frozen=True, slots=True)
class CapCircle:
    """A CAP circle: centre in WGS84 degrees, radius in metres."""

    lat: float
    lon: float
    radius_m: float

    def __post_init__(self) -> None:
        values = (self.lat, self.lon, self.radius_m)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"circle values must be finite: {values!r}")
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180 and self.radius_m >= 0):
            raise ValueError(f"not a valid circle: {values!r}")

    def text(self) -> str:
        return f"{number(self.lat)},{number(self.lon)} {number(self.radius_m / 1000, 3)}"

    def area_wgs84(self) -> BaseGeometry:
        """The disc as a WGS84 (lon, lat) polygon, drawn in Lambert-93 metres."""
        centre = to_l93(shapely.Point(self.lon, self.lat))
        return to_wgs84(centre.buffer(self.radius_m, quad_segs=16))
