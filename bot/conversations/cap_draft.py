"""A CAP file sent by an operator, shown as the equivalent /alerte and submitted on request.
Diagram: cap_draft.mmd."""

from __future__ import annotations

from typing import Any

from bot.alert_approval import check_issuer, parse_alert_command, submit
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
from bot.errors import UserFacingError
from bot.storage.conversations import ConversationState


class CapDraftFlow(Flow):
    kind = "cap_draft"

    def steps(self) -> dict[str, StepHandler]:
        return {"confirm": self.on_confirm}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        state = await open_conversation(ctx, self.kind, "confirm",
                                        {"command": options["command"]})
        hint = "" if options["guessed"] else "\n" + ctx.t("capcmd.category_guessed")
        return ctx.text(ctx.t("capcmd.draft", command=options["command"][:3000]) + hint, (
            choice(state, ctx.t("guided.submit"), "submit"),
            choice(state, ctx.t("guided.abandon"), "abandon")))

    async def on_confirm(self, ctx: Context, state: ConversationState,
                         answer: Answer) -> Effects:
        await close_conversation(ctx)
        if answer.value != "submit" and said_yes_or_no(answer.text) is not True:
            return ctx.answer("conversation.cancelled")
        try:
            draft = parse_alert_command(ctx, state.data["command"], ctx.now)
        except UserFacingError as error:
            return ctx.text(ctx.t(error.key, **error.params))
        issuer = await check_issuer(ctx, draft)
        if isinstance(issuer, Effects):
            return issuer
        return (await submit(ctx, draft)).effects


CAP_DRAFT = CapDraftFlow()
