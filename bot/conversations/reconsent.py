"""A new version of the privacy notice: existing subscribers are asked again."""

from __future__ import annotations

from typing import Any

from bot.context import Context
from bot.conversations.engine import (
    Answer,
    Flow,
    StepHandler,
    choice,
    close_conversation,
    move_to,
    open_conversation,
    said_yes_or_no,
)
from bot.domain import Effects
from bot.privacy import erase_subscriber
from bot.storage.conversations import ConversationState


class ReconsentFlow(Flow):
    kind = "reconsent"

    def steps(self) -> dict[str, StepHandler]:
        return {"confirm": self.on_confirm}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        state = await open_conversation(ctx, self.kind, "confirm", {})
        return self._ask(ctx, state, "consent.changed")

    def _ask(self, ctx: Context, state: ConversationState, key: str) -> Effects:
        return ctx.text(ctx.t(key, version=ctx.config.consent_version), (
            choice(state, ctx.t("enroll.accept"), "yes"),
            choice(state, ctx.t("enroll.refuse"), "no")))

    async def on_confirm(self, ctx: Context, state: ConversationState,
                         answer: Answer) -> Effects:
        said = said_yes_or_no(answer.text)
        value = answer.value or (None if said is None else "yes" if said else "no")
        if value is None or ctx.subscriber is None:
            await move_to(ctx, state, "confirm")
            return self._ask(ctx, state, "consent.again")
        await close_conversation(ctx)
        if value == "yes":
            await ctx.stores.subscribers.renew_consent(
                ctx.subscriber, ctx.config.consent_version, ctx.now)
            await ctx.audit("subscriber.consent_renewed", version=ctx.config.consent_version)
            return ctx.answer("consent.renewed")
        await ctx.audit("subscriber.consent_refused")
        await erase_subscriber(ctx.services, ctx.subscriber)
        return ctx.answer("subscriber.stopped")
