"""Inline GeoJSON in an alert command ends where the JSON decoder says, not where braces
balance: a brace or « : » inside a string value is text, not structure."""

from __future__ import annotations

import json

import pytest

from tests.harness import TestBot

OPERATOR = "telegram:100"
SQUARE = ('"geometry": {"type": "Polygon", "coordinates": [[[6.1, 47.6], [6.2, 47.6],'
          ' [6.2, 47.65], [6.1, 47.65], [6.1, 47.6]]]}')


@pytest.mark.parametrize("name", ["{", "}", "} : x", "{ : }", "}\"} : x"])
async def test_braces_and_colons_inside_a_geojson_string_are_not_structure(
        bot: TestBot, name: str) -> None:
    properties = json.dumps({"n": name})
    feature = '{"type": "Feature", "properties": ' + properties + ", " + SQUARE + "}"
    reply = await bot.say(OPERATOR, f"/alerte vol {feature} : Vol de gasoil")
    assert "aperçu" in reply, reply
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and alert.body == "Vol de gasoil"
