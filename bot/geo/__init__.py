"""Geography layer: communes (look-ups, spatial queries) and the perimeter grammar."""

from bot.geo.communes import Commune, CommuneLayer, GeoDataError, NameSearch
from bot.geo.perimeter import Perimeter, PerimeterError, parse_perimeter

__all__ = [
    "Commune",
    "CommuneLayer",
    "GeoDataError",
    "NameSearch",
    "Perimeter",
    "PerimeterError",
    "parse_perimeter",
]
