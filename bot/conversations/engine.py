"""Conversations as explicit states in SQLite.

Each step of a flow has a handler. Every prompt carries a fresh nonce in its choices'
data (``c:<nonce>:<value>``), so a button from an earlier step, or forged data, is
recognised as stale instead of being applied to the wrong question.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.context import Context
from bot.domain import Choice
from bot.storage.conversations import ConversationState

CHOICE_PREFIX = "c"


@dataclass(frozen=True)
class Answer:
    """What the person gave at this step: a pressed choice value, text, or a location."""

    value: str | None
    text: str
    location: tuple[float, float] | None


StepHandler = Callable[[Context, ConversationState, Answer], Awaitable[None]]


class Flow(ABC):
    kind: str

    @abstractmethod
    def steps(self) -> dict[str, StepHandler]: ...

    @abstractmethod
    async def begin(self, ctx: Context, **options: Any) -> None: ...


def choice(state: ConversationState, label: str, value: str) -> Choice:
    return Choice(label, f"{CHOICE_PREFIX}:{state.nonce}:{value}")


def parse_choice(data: str) -> tuple[str, str] | None:
    prefix, _, rest = data.partition(":")
    nonce, _, value = rest.partition(":")
    if prefix != CHOICE_PREFIX or not nonce or not value:
        return None
    return nonce, value


async def open_conversation(ctx: Context, kind: str, step: str,
                            data: dict[str, Any]) -> ConversationState:
    state = ConversationState(
        identity=ctx.who, platform=ctx.incoming.chat.platform, chat_id=ctx.incoming.chat.chat_id,
        kind=kind, step=step, data=data, nonce="", language=ctx.t.language, expires_at="")
    await move_to(ctx, state, step)
    return state


async def move_to(ctx: Context, state: ConversationState, step: str) -> None:
    """Enter ``step`` (or re-ask it): new nonce, new deadline, saved before replying."""
    state.step = step
    state.nonce = secrets.token_hex(3)
    timeout = timedelta(minutes=ctx.services.config.conversation.timeout_minutes)
    state.expires_at = (ctx.now + timeout).isoformat()
    await ctx.stores.conversations.save(state, ctx.now)


async def close_conversation(ctx: Context) -> None:
    await ctx.stores.conversations.delete(ctx.who)
