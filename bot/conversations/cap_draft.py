"""A CAP file sent by an operator, shown as the equivalent /alerte and submitted on request.
Diagram: cap_draft.mmd."""

from __future__ import annotations

from typing import Any

from bot.alert_approval import parse_alert_command, submit
from bot.context import Context
from bot.conversations.engine import (
    Answer,
    Flow,
    StepHandler,
    choice,
    close_conversation,
    open_conversation,
)
from bot.errors import UserFacingError
from bot.storage.conversations import ConversationState


class CapDraftFlow(Flow):
    kind = "cap_draft"

    def steps(self) -> dict[str, StepHandler]:
        return {"confirm": self.on_confirm}

    async def begin(self, ctx: Context, **options: Any) -> None:
        state = await open_conversation(ctx, self.kind, "confirm",
                                        {"command": options["command"]})
        hint = "" if options["guessed"] else "\n" + ctx.t("capcmd.category_guessed")
        ctx.reply(ctx.t("capcmd.draft", command=options["command"][:3000]) + hint, (
            choice(state, ctx.t("guided.submit"), "submit"),
            choice(state, ctx.t("guided.abandon"), "abandon")))

    async def on_confirm(self, ctx: Context, state: ConversationState, answer: Answer) -> None:
        if answer.value != "submit":
            await close_conversation(ctx)
            ctx.say("conversation.cancelled")
            return
        await close_conversation(ctx)
        try:
            draft = parse_alert_command(ctx.services, state.data["command"], ctx.now)
        except UserFacingError as error:
            ctx.reply(ctx.t(error.key, **error.params))
            return
        await submit(ctx, draft)


CAP_DRAFT = CapDraftFlow()
