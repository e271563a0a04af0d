"""Conversations as explicit states in SQLite.

Each step of a flow has a handler. Every prompt carries a fresh nonce in its choices'
data (``c:<nonce>:<value>``), so a button from an earlier step, or forged data, is
recognised as stale instead of being applied to the wrong question. The values offered
with that nonce are kept in the state too: a button's data is typed by the client, so a
value the step never offered (a made-up community key, any text as a commune code) is
refused like a stale button instead of being stored.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bot.buttons import ConversationButton, button, decode
from bot.context import Context
from bot.domain import Choice, Effects
from bot.storage.conversations import ConversationState

OFFERED = "offered"  # key of ConversationState.data: {"nonce": …, "values": […]}


@dataclass(frozen=True)
class Answer:
    """What the person gave at this step: a pressed choice value, text, or a location."""

    value: str | None
    text: str
    location: tuple[float, float] | None


class FlowState(Protocol):
    """A flow's own fields, typed; stored as JSON beside the engine's keys (``OFFERED``)."""

    def to_json(self) -> dict[str, Any]: ...


def keep(state: ConversationState, fields: FlowState) -> None:
    """Put a flow's fields into the conversation's data; the next ``move_to`` saves them.

    The engine's keys stay as they are, and so do keys a newer version may have added;
    a field the flow writes only when set (its ``OPTIONAL`` keys) is removed once unset.
    """
    data = fields.to_json()
    for key in getattr(fields, "OPTIONAL", ()):
        if key not in data:
            state.data.pop(key, None)
    state.data.update(data)


StepHandler = Callable[[Context, ConversationState, Answer], Awaitable[Effects]]


class Flow(ABC):
    kind: str

    @abstractmethod
    def steps(self) -> dict[str, StepHandler]: ...

    @abstractmethod
    async def begin(self, ctx: Context, **options: Any) -> Effects: ...


# Typed answers to a yes/no question, as people type them (see ``typed_words``).
YES = frozenset({"oui", "o", "ouais", "ok", "okay", "d'accord", "daccord", "yes", "y",
                 "j'accepte", "accepte", "accepter", "confirmer", "je confirme", "confirme",
                 "valider", "soumettre", "👍", "✅"})
NO = frozenset({"non", "n", "no", "je refuse", "refuse", "refuser", "pas d'accord", "❌"})
# Every apostrophe a keyboard makes: phones type the typographic one (J’accepte).
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'",
                             "`": "'"})


def typed_words(text: str) -> str:
    """What was typed, for comparing with a short word: one case, one apostrophe, single
    spaces, no closing punctuation (« J’accepte ! » reads « j'accepte »)."""
    return " ".join(text.translate(APOSTROPHES).casefold().split()).rstrip(" .!")


def said_yes_or_no(text: str) -> bool | None:
    """True for a typed yes (« oui », « ok », « J’accepte »), False for a typed no, None
    for anything else."""
    words = typed_words(text)
    return True if words in YES else False if words in NO else None


def choice(state: ConversationState, label: str, value: str) -> Choice:
    return button(label, ConversationButton(state.nonce, value))


def was_offered(state: ConversationState, pressed: ConversationButton) -> bool:
    """Whether the choice was shown with its nonce, the step's current one."""
    offered = state.data.get(OFFERED)
    return (state.nonce == pressed.nonce and isinstance(offered, dict)
            and offered.get("nonce") == pressed.nonce
            and pressed.value in offered.get("values", ()))


async def remember_offered(ctx: Context, effects: Effects) -> None:
    """Record, with the conversation's nonce, the choices the handler's replies show.

    Done once the handler has returned, from its replies: steps build their choices
    after ``move_to`` has saved the new nonce, and a prompt can span several messages.
    """
    shown = [payload for reply in effects.replies() for c in reply.message.choices
             if isinstance(payload := decode(c.data), ConversationButton)]
    if not shown:
        return
    state = await ctx.stores.conversations.get(ctx.who)
    if state is None:
        return
    values = [payload.value for payload in shown if payload.nonce == state.nonce]
    if values:
        state.data[OFFERED] = {"nonce": state.nonce, "values": values}
        await ctx.stores.conversations.save(state, ctx.now)


async def open_conversation(ctx: Context, kind: str, step: str,
                            data: dict[str, Any]) -> ConversationState:
    state = ConversationState(
        identity=ctx.who, platform=ctx.incoming.chat.platform, chat_id=ctx.incoming.chat.chat_id,
        kind=kind, step=step, data=data, nonce="", language=ctx.t.language,
        expires_at=ctx.now)  # set by move_to
    await move_to(ctx, state, step)
    return state


async def move_to(ctx: Context, state: ConversationState, step: str) -> None:
    """Enter ``step`` (or re-ask it): new nonce, new deadline, saved before replying."""
    state.step = step
    state.nonce = secrets.token_hex(3)
    timeout = timedelta(minutes=ctx.config.conversation.timeout_minutes)
    state.expires_at = ctx.now + timeout
    await ctx.stores.conversations.save(state, ctx.now)


async def close_conversation(ctx: Context) -> None:
    await ctx.stores.conversations.delete(ctx.who)
