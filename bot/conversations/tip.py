"""A recipient's information about an alert, forwarded to the officers. Diagram: tip.mmd."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.context import Context
from bot.conversations.engine import (
    Answer,
    Flow,
    StepHandler,
    close_conversation,
    move_to,
    open_conversation,
)
from bot.domain import Effects, Outgoing, ToOfficers
from bot.i18n import ANY_PLATFORM
from bot.limits import TIP_TEXT_CHARS
from bot.storage.conversations import ConversationState


@dataclass(frozen=True)
class TipState:
    alert: int  # the alert the information is about; every stored tip row has it

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TipState:
        return cls(alert=int(data["alert"]))

    def to_json(self) -> dict[str, Any]:
        return {"alert": self.alert}


class TipFlow(Flow):
    kind = "tip"

    def steps(self) -> dict[str, StepHandler]:
        return {"information": self.on_information}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        fields = TipState(alert=options["alert_id"])
        await open_conversation(ctx, self.kind, "information", fields.to_json())
        return ctx.answer("tip.ask", number=options["alert_id"])

    async def on_information(self, ctx: Context, state: ConversationState,
                             answer: Answer) -> Effects:
        fields = TipState.from_json(state.data)
        text = answer.text.strip()
        if not text and answer.location is None:
            await move_to(ctx, state, "information")
            return ctx.answer("tip.ask", number=fields.alert)
        if len(text) > TIP_TEXT_CHARS:
            await move_to(ctx, state, "information")
            return ctx.answer("alert.text_too_long", length=len(text), max=TIP_TEXT_CHARS)
        await close_conversation(ctx)
        return await self._forward(ctx, fields.alert, text, answer.location)

    async def _forward(self, ctx: Context, alert_id: int, text: str,
                       location: tuple[float, float] | None) -> Effects:
        chat = ctx.incoming.chat
        subscriber = ctx.subscriber.id if ctx.subscriber else None
        tip_id = await ctx.stores.tips.add(alert_id, subscriber, chat.platform, chat.chat_id,
                                           text, location, ctx.now)
        await ctx.audit("tip.received", alert_id, tip=tip_id)
        # The officers' language, not the subscriber's; one text for every officers' channel.
        staff = ctx.staff_t.on(ANY_PLATFORM)
        where = staff("tip.location", lat=f"{location[0]:.5f}", lon=f"{location[1]:.5f}") \
            if location else ""
        forwarded = staff("tip.forwarded", tip=tip_id, number=alert_id,
                          subscriber=subscriber or "?", text=text or "—", location=where)
        alert = await ctx.stores.alerts.get(alert_id)  # its organisation's officers are told
        organisation = None if alert is None else alert.organisation
        return Effects.of(ToOfficers(Outgoing(forwarded), organisation=organisation)) + \
            ctx.answer("tip.thanks", tip=tip_id)
