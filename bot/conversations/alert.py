"""Guided alert: category → perimeter → communities → facts time → text → confirm.

Diagram: alert.mmd. It ends in the same submission as the one-line ``/alerte``. A photo
sent at any step is kept for it (bot/handlers/photos.py) and attached at submission.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from bot.alert_approval import (
    AlertDraft,
    AlertInputError,
    check_issuer,
    facts_time,
    parse_communities,
    require_body,
    require_category,
    require_perimeter,
    shown_perimeter,
    submit,
)
from bot.alert_photos import drop_kept, for_new_alert, kept_photo
from bot.context import Context
from bot.conversations.engine import (
    Answer,
    Flow,
    StepHandler,
    choice,
    close_conversation,
    keep,
    move_to,
    open_conversation,
    said_yes_or_no,
)
from bot.domain import Effects
from bot.errors import UserFacingError
from bot.geo.perimeter import CommuneDoubt, grammar_label
from bot.photos import size_text
from bot.storage.conversations import ConversationState

T = TypeVar("T")
HHMM = re.compile(r"^\s*(?:depuis\s+)?(\d{1,2})\s*[:hH]\s*(\d{2})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PerimeterDoubt:
    """The perimeter as typed, and the commune name in it being asked about: where it is
    (``start``, ``end``) and the communes it may mean (INSEE codes)."""

    typed: str
    start: int
    end: int
    candidates: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PerimeterDoubt:
        return cls(str(data["typed"]), int(data["start"]), int(data["end"]),
                   tuple(str(code) for code in data["candidates"]))

    def to_json(self) -> dict[str, Any]:
        return {"typed": self.typed, "start": self.start, "end": self.end,
                "candidates": list(self.candidates)}

    def answered(self, label: str) -> str:
        """The perimeter with the chosen commune's label where the doubtful name was."""
        return self.typed[:self.start] + label + self.typed[self.end:]


@dataclass
class AlertState:
    """What the guided alert has gathered so far; a field is None until its step is done."""

    category: str | None = None  # key
    perimeter: str | None = None  # as typed: parsed again at submission
    perimeter_shown: str | None = None  # rows from before it existed show ``perimeter``
    communities: list[str] = field(default_factory=list)  # empty: everyone
    facts_at: datetime | None = None
    body: str | None = None
    doubt: PerimeterDoubt | None = None  # a commune of the perimeter being asked about
    OPTIONAL: ClassVar[tuple[str, ...]] = ("doubt",)  # written only while asking

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertState:
        facts_at = data.get("facts_at")
        doubt = data.get("doubt")
        return cls(category=data.get("category"), perimeter=data.get("perimeter"),
                   perimeter_shown=data.get("perimeter_shown"),
                   communities=list(data.get("communities", [])),
                   facts_at=datetime.fromisoformat(facts_at) if facts_at else None,
                   body=data.get("body"),
                   doubt=PerimeterDoubt.from_json(doubt) if doubt else None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"communities": self.communities}
        if self.doubt is not None:
            data["doubt"] = self.doubt.to_json()
        for key, value in (("category", self.category), ("perimeter", self.perimeter),
                           ("perimeter_shown", self.perimeter_shown), ("body", self.body)):
            if value is not None:
                data[key] = value
        if self.facts_at is not None:
            data["facts_at"] = self.facts_at.isoformat()
        return data


class GuidedAlertFlow(Flow):
    kind = "alert"

    def steps(self) -> dict[str, StepHandler]:
        return {"category": self.on_category, "perimeter": self.on_perimeter,
                "perimeter_choice": self.on_perimeter_choice,
                "communities": self.on_communities, "facts": self.on_facts,
                "text": self.on_text, "confirm": self.on_confirm}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        state = await open_conversation(ctx, self.kind, "category", AlertState().to_json())
        return self.ask_category(ctx, state)

    def ask_category(self, ctx: Context, state: ConversationState) -> Effects:
        return ctx.text(ctx.t("guided.category"), tuple(
            choice(state, c.label, c.key) for c in ctx.reference.categories.values()))

    async def on_category(self, ctx: Context, state: ConversationState,
                          answer: Answer) -> Effects:
        try:
            category = require_category(ctx.reference, answer.value or answer.text)
        except AlertInputError as error:
            await move_to(ctx, state, "category")
            return ctx.text(ctx.t(error.key, **error.params)) + self.ask_category(ctx, state)
        fields = AlertState.from_json(state.data)
        fields.category = category.key
        keep(state, fields)
        await move_to(ctx, state, "perimeter")
        return ctx.answer("guided.perimeter")

    async def on_perimeter(self, ctx: Context, state: ConversationState,
                           answer: Answer) -> Effects:
        text = answer.text
        if answer.location is not None:
            text = f"{answer.location[0]:.5f},{answer.location[1]:.5f}+5km"
        return await self._settle_perimeter(ctx, state, text)

    async def _settle_perimeter(self, ctx: Context, state: ConversationState,
                                text: str) -> Effects:
        fields = AlertState.from_json(state.data)
        text = text.strip()  # as parsed: a doubtful name's place is counted in this text
        try:
            perimeter = require_perimeter(ctx, text)
        except CommuneDoubt as doubt:
            fields.doubt = PerimeterDoubt(text, *doubt.span,
                                          tuple(c.insee for c in doubt.candidates))
            keep(state, fields)
            await move_to(ctx, state, "perimeter_choice")
            return self._ask_commune(ctx, state, doubt)
        except UserFacingError as error:
            fields.doubt = None
            keep(state, fields)
            await move_to(ctx, state, "perimeter")
            return ctx.text(ctx.t(error.key, **error.params) + "\n" + ctx.t("guided.perimeter"))
        fields.perimeter = perimeter.text
        fields.perimeter_shown = shown_perimeter(ctx, perimeter)
        fields.doubt = None
        keep(state, fields)
        category = ctx.reference.categories[_required(fields.category)]
        if category.all_communities:
            return await self._to_facts(ctx, state)
        await move_to(ctx, state, "communities")
        return self.ask_communities(ctx, state)

    def _ask_commune(self, ctx: Context, state: ConversationState,
                     doubt: CommuneDoubt) -> Effects:
        """One commune of the perimeter at a time, with its own choices."""
        fields = AlertState.from_json(state.data)
        asked = _required(fields.doubt)
        name = asked.typed[asked.start:asked.end]
        key = "places.ask_homonyms" if doubt.key == "perimeter.ambiguous_commune" \
            else "places.ask_unknown"
        options = [choice(state, c.label(), f"add:{c.insee}") for c in doubt.candidates]
        options.append(choice(state, ctx.t("guided.retype_perimeter"), "retype"))
        return ctx.text(ctx.t(key, name=name), tuple(options))

    async def on_perimeter_choice(self, ctx: Context, state: ConversationState,
                                  answer: Answer) -> Effects:
        """A commune chosen goes where its doubtful name was, and the perimeter is read
        again (the next doubtful name, if any, is the next question); anything typed
        is a new perimeter."""
        doubt = AlertState.from_json(state.data).doubt
        value = answer.value or ""
        chosen = ctx.geo.by_insee(value[4:]) if value.startswith("add:") else None
        if doubt is not None and chosen is not None and chosen.insee in doubt.candidates:
            return await self._settle_perimeter(
                ctx, state, doubt.answered(grammar_label(ctx.geo, chosen)))
        if answer.value is None:
            return await self.on_perimeter(ctx, state, answer)
        await move_to(ctx, state, "perimeter")
        return ctx.answer("guided.perimeter")

    def ask_communities(self, ctx: Context, state: ConversationState) -> Effects:
        selected = set(AlertState.from_json(state.data).communities)
        options = [choice(state, ("✅ " if c.key in selected else "") + c.label, f"t:{c.key}")
                   for c in ctx.reference.communities.values()]
        options += [choice(state, ctx.t("guided.everyone"), "all"),
                    choice(state, ctx.t("guided.communities_done"), "done")]
        return ctx.text(ctx.t("guided.communities"), tuple(options))

    async def on_communities(self, ctx: Context, state: ConversationState,
                             answer: Answer) -> Effects:
        value = answer.value
        fields = AlertState.from_json(state.data)
        if value == "all":
            fields.communities = []
        elif value and value.startswith("t:"):
            selected = fields.communities
            key = value[2:]
            selected.remove(key) if key in selected else selected.append(key)
            keep(state, fields)
            await move_to(ctx, state, "communities")
            return self.ask_communities(ctx, state)
        elif value != "done":
            try:
                keys, everyone = parse_communities(ctx.reference, answer.text)
            except AlertInputError as error:
                await move_to(ctx, state, "communities")
                return ctx.text(ctx.t(error.key, **error.params))
            fields.communities = [] if everyone else sorted(keys)
        keep(state, fields)
        return await self._to_facts(ctx, state)

    async def _to_facts(self, ctx: Context, state: ConversationState) -> Effects:
        await move_to(ctx, state, "facts")
        return ctx.text(ctx.t("guided.facts"), (choice(state, ctx.t("guided.facts_now"), "now"),))

    async def on_facts(self, ctx: Context, state: ConversationState, answer: Answer) -> Effects:
        try:
            moment = self._facts_moment(ctx, answer)
        except AlertInputError as error:
            await move_to(ctx, state, "facts")
            return ctx.text(ctx.t(error.key, **error.params) + "\n" + ctx.t("guided.facts"),
                            (choice(state, ctx.t("guided.facts_now"), "now"),))
        fields = AlertState.from_json(state.data)
        fields.facts_at = moment
        keep(state, fields)
        await move_to(ctx, state, "text")
        return ctx.text(ctx.t("guided.text") + "\n" + ctx.t("photo.guided_hint"))

    def _facts_moment(self, ctx: Context, answer: Answer) -> datetime:
        if answer.value == "now" or answer.text.strip().lower() in {"maintenant", "now"}:
            return ctx.now
        match = HHMM.match(answer.text)
        if match is None:
            raise AlertInputError("guided.bad_time")
        return facts_time(ctx, int(match.group(1)), int(match.group(2)), ctx.now)

    async def on_text(self, ctx: Context, state: ConversationState, answer: Answer) -> Effects:
        fields = AlertState.from_json(state.data)
        try:
            fields.body = require_body(answer.text)
        except AlertInputError as error:
            await move_to(ctx, state, "text")
            return ctx.answer(error.key, **error.params)
        keep(state, fields)
        await move_to(ctx, state, "confirm")
        shown = fields.perimeter_shown or fields.perimeter
        summary = ctx.t("guided.confirm", category=fields.category, perimeter=shown,
                        body=fields.body)
        photo = await kept_photo(ctx)
        if photo is not None:
            summary += "\n" + ctx.t("photo.guided_attached", size=size_text(ctx.t, photo.size))
        return ctx.text(summary,
                        (choice(state, ctx.t("guided.submit"), "submit"),
                         choice(state, ctx.t("guided.abandon"), "abandon")))

    async def on_confirm(self, ctx: Context, state: ConversationState,
                         answer: Answer) -> Effects:
        said = said_yes_or_no(answer.text)
        value = answer.value or (None if said is None else "submit" if said else "abandon")
        if value == "abandon":
            await close_conversation(ctx)
            await drop_kept(ctx)
            return ctx.answer("conversation.cancelled")
        if value != "submit":
            await move_to(ctx, state, "confirm")
            return ctx.text(ctx.t("guided.confirm_please"), (
                choice(state, ctx.t("guided.submit"), "submit"),
                choice(state, ctx.t("guided.abandon"), "abandon")))
        await close_conversation(ctx)
        draft = self._draft(ctx, state)
        issuer = await check_issuer(ctx, draft)
        if isinstance(issuer, Effects):
            await drop_kept(ctx)
            return issuer
        photo, refused = await for_new_alert(ctx)  # the photo kept during the flow
        return (await submit(ctx, draft, photo=photo)).effects + refused

    def _draft(self, ctx: Context, state: ConversationState) -> AlertDraft:
        fields = AlertState.from_json(state.data)
        category = ctx.reference.categories[_required(fields.category)]
        keys = frozenset(fields.communities) or frozenset(ctx.reference.communities)
        everyone = category.all_communities or not fields.communities
        return AlertDraft(category, require_perimeter(ctx, _required(fields.perimeter)),
                          keys, everyone, _required(fields.facts_at), _required(fields.body))


def _required(value: T | None) -> T:
    """A field the steps before this one always set (a KeyError before, as now)."""
    if value is None:
        raise KeyError("conversation state lacks a field an earlier step sets")
    return value
