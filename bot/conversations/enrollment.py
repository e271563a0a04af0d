"""Enrollment: consent → communities → communes → summary. Diagram: enrollment.mmd."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
)
from bot.conversations.places import Resolution, describe_commune, resolve_places
from bot.domain import NO_EFFECTS, Effects
from bot.limits import COMMUNES_PER_SUBSCRIBER
from bot.storage.conversations import ConversationState


@dataclass
class EnrollmentState:
    communities: list[str] = field(default_factory=list)  # keys, in the order chosen
    communes: list[str] = field(default_factory=list)  # INSEE codes
    consent_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnrollmentState:
        consent_at = data.get("consent_at")
        return cls(communities=list(data.get("communities", [])),
                   communes=list(data.get("communes", [])),
                   consent_at=datetime.fromisoformat(consent_at) if consent_at else None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"communities": self.communities, "communes": self.communes}
        if self.consent_at is not None:
            data["consent_at"] = self.consent_at.isoformat()
        return data


class EnrollmentFlow(Flow):
    kind = "enrollment"

    def steps(self) -> dict[str, StepHandler]:
        return {"consent": self.on_consent, "communities": self.on_communities,
                "communes": self.on_communes, "summary": self.on_summary}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        state = await open_conversation(ctx, self.kind, "consent",
                                        EnrollmentState().to_json())
        return ctx.text(ctx.t("enroll.welcome"), (choice(state, ctx.t("enroll.accept"), "yes"),
                                                  choice(state, ctx.t("enroll.refuse"), "no")))

    async def on_consent(self, ctx: Context, state: ConversationState,
                         answer: Answer) -> Effects:
        value = answer.value or _yes_no(answer.text)
        if value == "no":
            await close_conversation(ctx)
            return ctx.answer("enroll.refused")
        if value == "yes":
            fields = EnrollmentState.from_json(state.data)
            fields.consent_at = ctx.now
            keep(state, fields)
            await move_to(ctx, state, "communities")
            return self.ask_communities(ctx, state, first=True)
        await move_to(ctx, state, "consent")
        return ctx.text(ctx.t("enroll.consent_again"), (
            choice(state, ctx.t("enroll.accept"), "yes"),
            choice(state, ctx.t("enroll.refuse"), "no")))

    def ask_communities(self, ctx: Context, state: ConversationState,
                        first: bool = False) -> Effects:
        """The first time with every description; afterwards just the selection so far."""
        selected = EnrollmentState.from_json(state.data).communities
        communities = ctx.reference.communities
        options = tuple(
            choice(state, ("✅ " if key in selected else "") + c.label, f"t:{key}")
            for key, c in communities.items())
        if first:
            lines = "\n".join(f"• {c.label} — {c.description}" for c in communities.values())
            text = ctx.t("enroll.communities", list=lines)
        else:
            labels = ", ".join(communities[k].label for k in selected if k in communities)
            text = ctx.t("enroll.communities_selected", list=labels or "—")
        return ctx.text(text, (*options, choice(state, ctx.t("enroll.communities_done"), "done")))

    async def on_communities(self, ctx: Context, state: ConversationState,
                             answer: Answer) -> Effects:
        fields = EnrollmentState.from_json(state.data)
        if answer.value == "done" or _is_done(answer.text):
            return await self._communities_done(ctx, state, fields)
        said = NO_EFFECTS
        if answer.value and answer.value.startswith("t:"):
            _toggle(fields.communities, answer.value[2:])
        else:
            unknown = _add_communities_from_text(ctx, fields, answer.text)
            if unknown:
                said = ctx.answer("enroll.unknown_community", typed=", ".join(unknown),
                                  known=", ".join(ctx.reference.communities))
        keep(state, fields)
        await move_to(ctx, state, "communities")
        return said + self.ask_communities(ctx, state)

    async def _communities_done(self, ctx: Context, state: ConversationState,
                                fields: EnrollmentState) -> Effects:
        if not fields.communities:
            await move_to(ctx, state, "communities")
            return ctx.answer("enroll.need_community") + self.ask_communities(ctx, state)
        await move_to(ctx, state, "communes")
        return ctx.answer("enroll.communes")

    async def on_communes(self, ctx: Context, state: ConversationState,
                          answer: Answer) -> Effects:
        fields = EnrollmentState.from_json(state.data)
        if answer.value == "done" or (answer.value is None and _is_done(answer.text)):
            return await self._communes_done(ctx, state, fields)
        if answer.value == "clear":
            fields.communes = []
        elif answer.value and answer.value.startswith("add:"):
            _add_commune(fields, answer.value[4:])
        else:
            resolution = resolve_places(ctx.geo, ctx.t, answer.text, answer.location)
            for commune in resolution.found:
                _add_commune(fields, commune.insee)
            keep(state, fields)
            await move_to(ctx, state, "communes")
            return self._report_resolution(ctx, state, resolution)
        keep(state, fields)
        await move_to(ctx, state, "communes")
        return self._show_communes(ctx, state)

    def _report_resolution(self, ctx: Context, state: ConversationState,
                           resolution: Resolution) -> Effects:
        effects = NO_EFFECTS
        for problem in resolution.problems:
            effects += ctx.text(problem)
        if resolution.candidates:
            effects += ctx.text(ctx.t("enroll.pick_commune"), tuple(
                choice(state, describe_commune(c), f"add:{c.insee}")
                for c in resolution.candidates))
        return effects + self._show_communes(ctx, state)

    def _show_communes(self, ctx: Context, state: ConversationState) -> Effects:
        fields = EnrollmentState.from_json(state.data)
        names = [describe_commune(c) for c in _communes(ctx, fields)]
        effects = NO_EFFECTS
        if len(names) > COMMUNES_PER_SUBSCRIBER:
            effects = ctx.answer("enroll.too_many_communes", max=COMMUNES_PER_SUBSCRIBER)
        text = ctx.t("enroll.communes_so_far", list=", ".join(names)) if names else ctx.t(
            "enroll.no_commune_yet")
        return effects + ctx.text(text, (choice(state, ctx.t("enroll.communes_done"), "done"),
                                         choice(state, ctx.t("enroll.communes_clear"), "clear")))

    async def _communes_done(self, ctx: Context, state: ConversationState,
                             fields: EnrollmentState) -> Effects:
        if not fields.communes:
            await move_to(ctx, state, "communes")
            return ctx.answer("enroll.need_commune")
        fields.communes = fields.communes[:COMMUNES_PER_SUBSCRIBER]
        keep(state, fields)
        await move_to(ctx, state, "summary")
        return ctx.text(_confirmation(ctx, fields), (
            choice(state, ctx.t("enroll.confirm"), "confirm"),
            choice(state, ctx.t("enroll.restart"), "restart")))

    async def on_summary(self, ctx: Context, state: ConversationState,
                         answer: Answer) -> Effects:
        value = answer.value or ("confirm" if _yes_no(answer.text) == "yes" else None)
        if value == "restart":
            fields = EnrollmentState.from_json(state.data)
            fields.communities, fields.communes = [], []
            keep(state, fields)
            await move_to(ctx, state, "communities")
            return self.ask_communities(ctx, state, first=True)
        if value != "confirm":
            await move_to(ctx, state, "summary")
            return ctx.text(ctx.t("enroll.confirm_please"), (
                choice(state, ctx.t("enroll.confirm"), "confirm"),
                choice(state, ctx.t("enroll.restart"), "restart")))
        return await self._save(ctx, state)

    async def _save(self, ctx: Context, state: ConversationState) -> Effects:
        incoming = ctx.incoming
        fields = EnrollmentState.from_json(state.data)
        await ctx.stores.subscribers.enroll(
            incoming.sender.platform, incoming.sender.user_id, incoming.chat.chat_id,
            ctx.t.language, ctx.config.consent_version, ctx.now,
            fields.communes, fields.communities)
        await close_conversation(ctx)
        return ctx.answer("enroll.done")


def summary_text(ctx: Context, communities: list[str], communes: list[str]) -> str:
    """A subscriber's choices as /profil and /start show them: nothing to confirm."""
    return ctx.t("subscriber.summary", **_described(ctx, communities, communes))


def _confirmation(ctx: Context, fields: EnrollmentState) -> str:
    """The choices of an enrollment, and the question its buttons answer."""
    return ctx.t("enroll.summary", **_described(ctx, fields.communities, fields.communes))


def _described(ctx: Context, communities: list[str], communes: list[str]) -> dict[str, str]:
    reference = ctx.reference.communities
    labels = ", ".join(reference[k].label for k in communities if k in reference)
    places = ", ".join(describe_commune(c) for c in
                       filter(None, (ctx.geo.by_insee(code) for code in communes)))
    return {"communities": labels, "communes": places}


def _communes(ctx: Context, fields: EnrollmentState) -> list[Any]:
    return [c for c in (ctx.geo.by_insee(code) for code in fields.communes) if c]


def _add_commune(fields: EnrollmentState, insee: str) -> None:
    if insee not in fields.communes:
        fields.communes.append(insee)


def _toggle(selected: list[str], key: str) -> None:
    if key in selected:
        selected.remove(key)
    else:
        selected.append(key)


def _add_communities_from_text(ctx: Context, fields: EnrollmentState, text: str) -> list[str]:
    unknown = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        community = ctx.reference.community(part)
        if community is None:
            unknown.append(part)
        elif community.key not in fields.communities:
            fields.communities.append(community.key)
    return unknown


YES = {"oui", "o", "yes", "y", "ok", "j'accepte", "accepte", "accepter", "confirmer", "valider"}
NO = {"non", "n", "no", "refuse", "refuser", "je refuse"}


def _yes_no(text: str) -> str | None:
    word = text.strip().lower()
    return "yes" if word in YES else "no" if word in NO else None


def _is_done(text: str) -> bool:
    return text.strip().lower() in {"terminer", "termine", "fini", "fin", "done", "valider", "ok"}
