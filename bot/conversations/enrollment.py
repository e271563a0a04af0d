"""Enrollment: consent → communities → communes → summary. Diagram: enrollment.mmd."""

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
)
from bot.conversations.places import Resolution, describe_commune, resolve_places
from bot.limits import COMMUNES_PER_SUBSCRIBER
from bot.storage.conversations import ConversationState


class EnrollmentFlow(Flow):
    kind = "enrollment"

    def steps(self) -> dict[str, StepHandler]:
        return {"consent": self.on_consent, "communities": self.on_communities,
                "communes": self.on_communes, "summary": self.on_summary}

    async def begin(self, ctx: Context, **options: Any) -> None:
        state = await open_conversation(ctx, self.kind, "consent",
                                        {"communities": [], "communes": []})
        ctx.reply(ctx.t("enroll.welcome"), (choice(state, ctx.t("enroll.accept"), "yes"),
                                            choice(state, ctx.t("enroll.refuse"), "no")))

    async def on_consent(self, ctx: Context, state: ConversationState, answer: Answer) -> None:
        value = answer.value or _yes_no(answer.text)
        if value == "no":
            await close_conversation(ctx)
            ctx.say("enroll.refused")
        elif value == "yes":
            state.data["consent_at"] = ctx.now.isoformat()
            await move_to(ctx, state, "communities")
            self.ask_communities(ctx, state, first=True)
        else:
            await move_to(ctx, state, "consent")
            ctx.reply(ctx.t("enroll.consent_again"), (
                choice(state, ctx.t("enroll.accept"), "yes"),
                choice(state, ctx.t("enroll.refuse"), "no")))

    def ask_communities(self, ctx: Context, state: ConversationState,
                        first: bool = False) -> None:
        """The first time with every description; afterwards just the selection so far."""
        selected = state.data["communities"]
        communities = ctx.services.reference.communities
        options = tuple(
            choice(state, ("✅ " if key in selected else "") + c.label, f"t:{key}")
            for key, c in communities.items())
        if first:
            lines = "\n".join(f"• {c.label} — {c.description}" for c in communities.values())
            text = ctx.t("enroll.communities", list=lines)
        else:
            labels = ", ".join(communities[k].label for k in selected if k in communities)
            text = ctx.t("enroll.communities_selected", list=labels or "—")
        ctx.reply(text, (*options, choice(state, ctx.t("enroll.communities_done"), "done")))

    async def on_communities(self, ctx: Context, state: ConversationState,
                             answer: Answer) -> None:
        if answer.value == "done" or _is_done(answer.text):
            await self._communities_done(ctx, state)
            return
        if answer.value and answer.value.startswith("t:"):
            _toggle(state.data["communities"], answer.value[2:])
        else:
            unknown = _add_communities_from_text(ctx, state, answer.text)
            if unknown:
                ctx.say("enroll.unknown_community", typed=", ".join(unknown),
                        known=", ".join(ctx.services.reference.communities))
        await move_to(ctx, state, "communities")
        self.ask_communities(ctx, state)

    async def _communities_done(self, ctx: Context, state: ConversationState) -> None:
        if not state.data["communities"]:
            ctx.say("enroll.need_community")
            await move_to(ctx, state, "communities")
            self.ask_communities(ctx, state)
            return
        await move_to(ctx, state, "communes")
        ctx.say("enroll.communes")

    async def on_communes(self, ctx: Context, state: ConversationState, answer: Answer) -> None:
        if answer.value == "done" or (answer.value is None and _is_done(answer.text)):
            await self._communes_done(ctx, state)
            return
        if answer.value == "clear":
            state.data["communes"] = []
        elif answer.value and answer.value.startswith("add:"):
            _add_commune(state, answer.value[4:])
        else:
            resolution = resolve_places(ctx, answer.text, answer.location)
            for commune in resolution.found:
                _add_commune(state, commune.insee)
            await move_to(ctx, state, "communes")
            self._report_resolution(ctx, state, resolution)
            return
        await move_to(ctx, state, "communes")
        self._show_communes(ctx, state)

    def _report_resolution(self, ctx: Context, state: ConversationState,
                           resolution: Resolution) -> None:
        for problem in resolution.problems:
            ctx.reply(problem)
        if resolution.candidates:
            ctx.reply(ctx.t("enroll.pick_commune"), tuple(
                choice(state, describe_commune(c), f"add:{c.insee}")
                for c in resolution.candidates))
        self._show_communes(ctx, state)

    def _show_communes(self, ctx: Context, state: ConversationState) -> None:
        names = [describe_commune(c) for c in _communes(ctx, state)]
        if len(names) > COMMUNES_PER_SUBSCRIBER:
            ctx.say("enroll.too_many_communes", max=COMMUNES_PER_SUBSCRIBER)
        text = ctx.t("enroll.communes_so_far", list=", ".join(names)) if names else ctx.t(
            "enroll.no_commune_yet")
        ctx.reply(text, (choice(state, ctx.t("enroll.communes_done"), "done"),
                         choice(state, ctx.t("enroll.communes_clear"), "clear")))

    async def _communes_done(self, ctx: Context, state: ConversationState) -> None:
        if not state.data["communes"]:
            await move_to(ctx, state, "communes")
            ctx.say("enroll.need_commune")
            return
        state.data["communes"] = state.data["communes"][:COMMUNES_PER_SUBSCRIBER]
        await move_to(ctx, state, "summary")
        ctx.reply(summary_text(ctx, state.data["communities"], state.data["communes"]), (
            choice(state, ctx.t("enroll.confirm"), "confirm"),
            choice(state, ctx.t("enroll.restart"), "restart")))

    async def on_summary(self, ctx: Context, state: ConversationState, answer: Answer) -> None:
        value = answer.value or ("confirm" if _yes_no(answer.text) == "yes" else None)
        if value == "restart":
            state.data.update(communities=[], communes=[])
            await move_to(ctx, state, "communities")
            self.ask_communities(ctx, state, first=True)
            return
        if value != "confirm":
            await move_to(ctx, state, "summary")
            ctx.reply(ctx.t("enroll.confirm_please"), (
                choice(state, ctx.t("enroll.confirm"), "confirm"),
                choice(state, ctx.t("enroll.restart"), "restart")))
            return
        await self._save(ctx, state)

    async def _save(self, ctx: Context, state: ConversationState) -> None:
        incoming = ctx.incoming
        await ctx.stores.subscribers.enroll(
            incoming.sender.platform, incoming.sender.user_id, incoming.chat.chat_id,
            ctx.t.language, ctx.services.config.consent_version, ctx.now,
            state.data["communes"], state.data["communities"])
        await close_conversation(ctx)
        ctx.say("enroll.done")


def summary_text(ctx: Context, communities: list[str], communes: list[str]) -> str:
    reference = ctx.services.reference.communities
    labels = ", ".join(reference[k].label for k in communities if k in reference)
    places = ", ".join(describe_commune(c) for c in
                       filter(None, (ctx.services.geo.by_insee(code) for code in communes)))
    return ctx.t("enroll.summary", communities=labels, communes=places)


def _communes(ctx: Context, state: ConversationState) -> list[Any]:
    return [c for c in (ctx.services.geo.by_insee(code) for code in state.data["communes"]) if c]


def _add_commune(state: ConversationState, insee: str) -> None:
    if insee not in state.data["communes"]:
        state.data["communes"].append(insee)


def _toggle(selected: list[str], key: str) -> None:
    if key in selected:
        selected.remove(key)
    else:
        selected.append(key)


def _add_communities_from_text(ctx: Context, state: ConversationState, text: str) -> list[str]:
    unknown = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        community = ctx.services.reference.community(part)
        if community is None:
            unknown.append(part)
        elif community.key not in state.data["communities"]:
            state.data["communities"].append(community.key)
    return unknown


YES = {"oui", "o", "yes", "y", "ok", "j'accepte", "accepte", "accepter", "confirmer", "valider"}
NO = {"non", "n", "no", "refuse", "refuser", "je refuse"}


def _yes_no(text: str) -> str | None:
    word = text.strip().lower()
    return "yes" if word in YES else "no" if word in NO else None


def _is_done(text: str) -> bool:
    return text.strip().lower() in {"terminer", "termine", "fini", "fin", "done", "valider", "ok"}
