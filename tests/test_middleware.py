"""The middleware chain: layers in order around the router, each able to answer alone."""

from __future__ import annotations

from typing import cast

from bot.context import Context
from bot.domain import Effects, Outgoing, Reply
from bot.middleware import Next, chain


def said(text: str) -> Effects:
    return Effects.of(Reply(Outgoing(text)))


async def test_layers_run_outermost_first_and_may_answer_alone() -> None:
    seen: list[str] = []

    def layer(name: str, stop: bool = False):  # type: ignore[no-untyped-def]
        async def run(ctx: Context, after: Next) -> Effects:
            seen.append(name)
            return said(name) if stop else await after(ctx) + said(f"after {name}")
        return run

    async def router(ctx: Context) -> Effects:
        seen.append("router")
        return said("routed")

    ctx = cast(Context, object())  # the layers here never look at it
    effects = await chain([layer("outer"), layer("inner")], router)(ctx)
    assert seen == ["outer", "inner", "router"]
    assert [r.message.text for r in effects.replies()] == ["routed", "after inner", "after outer"]
    seen.clear()
    effects = await chain([layer("outer"), layer("gate", stop=True), layer("inner")], router)(ctx)
    assert seen == ["outer", "gate"]
    assert [r.message.text for r in effects.replies()] == ["gate", "after outer"]
