"""The button codec: today's literal formats decode, every payload round-trips, and
anything else (malformed, oversized, forged beyond the formats) decodes to None."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.buttons import (
    ApprovalButton,
    ButtonDataError,
    ButtonPayload,
    ConversationButton,
    ReceiptButton,
    TipButton,
    button,
    decode,
    encode,
)
from bot.limits import CALLBACK_DATA_BYTES

# Data of buttons already sitting in people's chats: they must keep meaning the same.
LITERALS: list[tuple[str, ButtonPayload]] = [
    ("ap:7:ok", ApprovalButton(7, True)),
    ("ap:123456789:no", ApprovalButton(123456789, False)),
    ("ack:42", ReceiptButton(42)),
    ("tip:42", TipButton(42)),
    ("c:a1b2c3:yes", ConversationButton("a1b2c3", "yes")),
    ("c:a1b2c3:t:commercant", ConversationButton("a1b2c3", "t:commercant")),
    ("c:0f0f0f:add:70550", ConversationButton("0f0f0f", "add:70550")),
]


@pytest.mark.parametrize(("data", "payload"), LITERALS)
def test_todays_button_data_decodes_and_encodes_byte_identically(
        data: str, payload: ButtonPayload) -> None:
    assert decode(data) == payload
    assert encode(payload) == data


@pytest.mark.parametrize("data", [
    "", "ap", "ap:7", "ap:7:", "ap:7:OK", "ap:7:maybe", "ap::ok", "ap:0:ok", "ap:007:ok",
    "ap:-1:ok", "ap:1234567890:ok", "ap:٣:ok", "ap:7:ok ", " ap:7:ok", "ack:", "ack:x",
    "ack:9999999999", "tip:٣", "tip:1:2", "ACK:1", "c:", "c::yes", "c:abc:", "c:abc",
    "x:abc:yes", "c:" + "a" * 70 + ":yes", "\ud800", "ack:1\n",
])
def test_malformed_or_oversized_data_decodes_to_none(data: str) -> None:
    assert decode(data) is None


payloads = st.one_of(
    st.builds(ApprovalButton, st.integers(1, 999_999_999), st.booleans()),
    st.builds(ReceiptButton, st.integers(1, 999_999_999)),
    st.builds(TipButton, st.integers(1, 999_999_999)),
    st.builds(ConversationButton, st.text("0123456789abcdef", min_size=1, max_size=6),
              st.text(min_size=1, max_size=20)),
)


@given(payloads)
def test_every_payload_round_trips(payload: ButtonPayload) -> None:
    assert decode(encode(payload)) == payload


@given(st.text(max_size=80))
def test_whatever_decodes_encodes_back_to_the_same_data(data: str) -> None:
    payload = decode(data)
    if payload is not None:
        assert encode(payload) == data


def test_the_size_limit_is_checked_when_a_button_is_made() -> None:
    fits = ConversationButton("1", "é" * ((CALLBACK_DATA_BYTES - len("c:1:")) // 2))
    assert len(button("ok", fits).data.encode()) == CALLBACK_DATA_BYTES
    with pytest.raises(ButtonDataError, match="66 bytes"):
        encode(ConversationButton("1", "é" * 31))


@pytest.mark.parametrize("payload", [
    ApprovalButton(0, True), ReceiptButton(-1), TipButton(10**9),
    ConversationButton("", "yes"), ConversationButton("a:b", "yes"),
    ConversationButton("abc", ""),
])
def test_a_payload_without_a_faithful_encoding_is_refused(payload: ButtonPayload) -> None:
    with pytest.raises(ButtonDataError):
        encode(payload)
