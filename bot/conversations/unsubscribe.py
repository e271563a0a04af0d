"""Unsubscribing asks once for confirmation: a mistaken /stop must not lose a profile."""

from __future__ import annotations

from typing import Any

from bot.context import Context
from bot.conversations.engine import (
    Answer,
    Flow,
    StepHandler,
    choice,
    close_conversation,
    open_conversation,
    said_yes_or_no,
)
from bot.domain import Effects
from bot.privacy import erase_subscriber
from bot.storage.conversations import ConversationState


class UnsubscribeFlow(Flow):
    kind = "unsubscribe"

    def steps(self) -> dict[str, StepHandler]:
        return {"confirm": self.on_confirm}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        state = await open_conversation(ctx, self.kind, "confirm", {})
        return ctx.text(ctx.t("subscriber.stop_confirm"), (
            choice(state, ctx.t("subscriber.stop_yes"), "yes"),
            choice(state, ctx.t("subscriber.stop_no"), "no")))

    async def on_confirm(self, ctx: Context, state: ConversationState,
                         answer: Answer) -> Effects:
        await close_conversation(ctx)
        confirmed = answer.value == "yes" or said_yes_or_no(answer.text) is True
        if not confirmed or ctx.subscriber is None:
            return ctx.answer("subscriber.stop_kept")
        await ctx.audit("subscriber.unsubscribed")  # before: the pseudonym needs no data
        await erase_subscriber(ctx.services, ctx.subscriber)
        return ctx.answer("subscriber.stopped")
