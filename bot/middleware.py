"""Middleware: what every event goes through around the router, in the event's transaction.

Each layer is ``async (ctx, after) -> Effects``: it answers by itself (flood control, an
input too long, the consent question) or calls ``after`` — the next layer, the router
last — and may add to what comes back (the choices offered, the repaired-text remark).
The core builds the chain once (``chain``), outermost first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.commands import CommandRegistry, split_command
from bot.context import Context
from bot.conversations.engine import Flow, remember_offered
from bot.domain import NO_EFFECTS, Effects
from bot.enums import Verdict
from bot.limits import INPUT_CHARS
from bot.people import remember_platform_name
from bot.roles import Role
from bot.throttle import Throttle

Next = Callable[[Context], Awaitable[Effects]]
Middleware = Callable[[Context, Next], Awaitable[Effects]]

STAFF_WEIGHT = 0.2  # people with a role type more (approvals, follow-ups): a lighter count
# What a subscriber may still do before agreeing to a new privacy notice.
WITHOUT_CONSENT = ("stop", "mesdonnees")


def chain(layers: Sequence[Middleware], last: Next) -> Next:
    """``layers`` around ``last``: the first layer sees the event first."""
    handler = last
    for layer in reversed(layers):
        handler = _bound(layer, handler)
    return handler


def _bound(layer: Middleware, after: Next) -> Next:
    async def run(ctx: Context) -> Effects:
        return await layer(ctx, after)
    return run


class FloodControl:
    """A person typing faster than the throttle allows is told once, then ignored."""

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    async def __call__(self, ctx: Context, after: Next) -> Effects:
        if ctx.incoming.about_chat:
            return await after(ctx)  # platform events, not a person typing
        staff = bool(ctx.roles - {Role.SUBSCRIBER})
        verdict = self.throttle.admit(ctx.who, ctx.now, weight=STAFF_WEIGHT if staff else 1.0)
        if verdict is Verdict.ALLOW:
            return await after(ctx)
        if verdict is Verdict.WARN and ctx.is_private:
            return ctx.answer("throttle.slow_down")
        return NO_EFFECTS


async def repair_notice(ctx: Context, after: Next) -> Effects:
    return with_repair_notice(ctx, await after(ctx))


def with_repair_notice(ctx: Context, effects: Effects) -> Effects:
    """Say which characters were replaced, whenever the bot answers at all (chatter in a
    group gets no answer, so no remark either)."""
    count = ctx.repaired
    if not count or not effects.replies():
        return effects
    return effects + ctx.answer("core.text_repaired_one" if count == 1
                                else "core.text_repaired", count=count)


async def offered_choices(ctx: Context, after: Next) -> Effects:
    """The conversation remembers the choices its replies show (``remember_offered``)."""
    effects = await after(ctx)
    await remember_offered(ctx, effects)
    return effects


async def input_limit(ctx: Context, after: Next) -> Effects:
    """Text longer than any command needs is refused before it is parsed."""
    if ctx.incoming.about_chat or len(ctx.incoming.text) <= INPUT_CHARS:
        return await after(ctx)
    return ctx.answer("core.too_long", max=INPUT_CHARS) if ctx.is_private else NO_EFFECTS


async def staff_name(ctx: Context, after: Next) -> Effects:
    """A staff member's platform display name is kept at their first message with a role,
    before the handler runs: what it answers already names them (bot/people.py)."""
    if ctx.incoming.sender_name:
        await remember_platform_name(ctx.services, ctx.identity, ctx.incoming.sender_name,
                                     ctx.now)
    return await after(ctx)


class ConsentCheck:
    """A subscriber who agreed to an older privacy notice is asked again before anything
    else they type (except leaving or seeing their data)."""

    def __init__(self, registry: CommandRegistry, reconsent: Flow) -> None:
        self.registry = registry
        self.reconsent = reconsent

    async def __call__(self, ctx: Context, after: Next) -> Effects:
        if await self._outdated(ctx):
            return await self.reconsent.begin(ctx)
        return await after(ctx)

    async def _outdated(self, ctx: Context) -> bool:
        subscriber, incoming = ctx.subscriber, ctx.incoming
        if subscriber is None or not ctx.is_private or incoming.about_chat \
                or incoming.choice is not None:
            return False
        if subscriber.consent_version == ctx.config.consent_version:
            return False
        parsed = split_command(incoming.text)
        command = self.registry.find(parsed[0]) if parsed else None
        if command is not None and command.name in WITHOUT_CONSENT:
            return False
        state = await ctx.stores.conversations.get(ctx.who)
        # The answer to the question: let the conversation take it.
        return not (state is not None and state.kind == "reconsent" and parsed is None)
