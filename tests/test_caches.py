"""Per-message memories that must keep hitting however many people enrol (issue 14)."""

from __future__ import annotations

import json
import secrets

import pytest

import bot.transports.telegram as telegram_module
from bot.buttons import ConversationButton, ReceiptButton, TipButton, button
from bot.config import TelegramConfig
from bot.domain import Choice
from bot.lru import Lru
from bot.transports.telegram import REMEMBERED_KEYBOARDS, TelegramTransport
from bot.transports.telegram_http import REMEMBERED_VALUES, AiohttpRequest
from bot.transports.telegram_render import keyboard


def test_lru_keeps_what_is_used_and_lets_the_rest_through() -> None:
    memory: Lru[str, int] = Lru(3)
    memory.put("broadcast", 1)
    for n in range(100):
        memory.put(f"once{n}", n)
        assert memory.get("broadcast") == 1  # used at every message: never pushed out
    assert len(memory) == 3 and "once0" not in memory
    assert (memory.hits, memory.get("absent"), memory.misses) == (100, None, 1)
    with pytest.raises(ValueError):
        Lru(0)


def prompt(nonce: str) -> tuple[Choice, ...]:
    return tuple(button(label, ConversationButton(nonce, value)) for label, value in
                 (("Commerçants", "commercant"), ("Agriculteurs", "agriculteur"),
                  ("Valider", "valider")))


def test_the_broadcast_keyboard_survives_a_spike_of_prompts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[Choice, ...]] = []

    def counting(choices: tuple[Choice, ...]):  # type: ignore[no-untyped-def]
        built.append(choices)
        return keyboard(choices)

    monkeypatch.setattr(telegram_module, "keyboard", counting)
    transport = TelegramTransport(TelegramConfig(enabled=True, token="1:x"))
    alert = (button("Reçu", ReceiptButton(7)), button("J'ai une information", TipButton(7)))
    first = transport._keyboard_json(alert)
    for _ in range(3 * REMEMBERED_KEYBOARDS):  # 768 people enrolling, each a fresh nonce
        nonce = secrets.token_hex(3)
        encoded = transport._keyboard_json(prompt(nonce))
        assert encoded is not None and nonce in encoded
        assert transport._keyboard_json(alert) == first
    assert built.count(alert) == 1  # built once, whatever came between
    assert len(transport._keyboards) == 1  # the prompts' keyboards are not remembered
    assert json.loads(first or "")["inline_keyboard"][0][0]["callback_data"] == "ack:7"


def test_the_broadcast_text_keeps_its_encoding_through_prompts() -> None:
    request = AiohttpRequest()
    text = "Alerte cambriolage : vitrine forcée rue Carnot, soyez vigilants. " * 4
    for n in range(10 * REMEMBERED_VALUES):
        keyboard_json = json.dumps({"inline_keyboard": [[{"text": "Valider",
                                                          "callback_data": f"c:{n:06x}:v"}]]})
        request._form({"text": text, "reply_markup": keyboard_json, "chat_id": str(n)})
        assert text in request._encoded
    hits_per_message = request._encoded.hits / (10 * REMEMBERED_VALUES)
    assert hits_per_message >= 0.99  # the text, every time but the first
