"""Enrollment: consent → communities → communes → summary. Diagram: enrollment.mmd."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

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
    typed_words,
)
from bot.conversations.places import PlaceQuestion, describe_commune, resolve_places
from bot.domain import NO_EFFECTS, Effects
from bot.geo.communes import Commune
from bot.limits import COMMUNES_PER_SUBSCRIBER
from bot.storage.conversations import ConversationState
from bot.storage.invitations import Invitation, InvitationState


@dataclass
class EnrollmentState:
    communities: list[str] = field(default_factory=list)  # keys, in the order chosen
    communes: list[str] = field(default_factory=list)  # INSEE codes
    consent_at: datetime | None = None
    questions: list[PlaceQuestion] = field(default_factory=list)  # the first is being asked
    # Issue 17: the invitation followed (its number, and the community it lets in), and
    # the vetted communities chosen without one, waiting for the person's words.
    invitation: int | None = None
    invited: str | None = None
    vetting: list[str] = field(default_factory=list)
    OPTIONAL: ClassVar[tuple[str, ...]] = ("questions", "invitation", "invited", "vetting")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnrollmentState:
        consent_at = data.get("consent_at")
        return cls(communities=list(data.get("communities", [])),
                   communes=list(data.get("communes", [])),
                   consent_at=datetime.fromisoformat(consent_at) if consent_at else None,
                   questions=[PlaceQuestion.from_json(q) for q in data.get("questions", [])],
                   invitation=data.get("invitation"), invited=data.get("invited"),
                   vetting=list(data.get("vetting", [])))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"communities": self.communities, "communes": self.communes}
        if self.questions:
            data["questions"] = [q.to_json() for q in self.questions]
        if self.invitation is not None:
            data["invitation"], data["invited"] = self.invitation, self.invited
        if self.vetting:
            data["vetting"] = self.vetting
        if self.consent_at is not None:
            data["consent_at"] = self.consent_at.isoformat()
        return data


class EnrollmentFlow(Flow):
    kind = "enrollment"

    def steps(self) -> dict[str, StepHandler]:
        return {"consent": self.on_consent, "communities": self.on_communities,
                "communes": self.on_communes, "summary": self.on_summary,
                "introduce": self.on_introduce}

    async def begin(self, ctx: Context, **options: Any) -> Effects:
        """``invitation=``: a partner's invitation pre-selects its community and communes;
        the person still reads the notice, consents, and may change every choice."""
        fields, welcome = EnrollmentState(), ctx.t("enroll.welcome")
        invitation: Invitation | None = options.get("invitation")
        if invitation is not None:
            fields = EnrollmentState(communities=[invitation.community],
                                     communes=list(invitation.communes),
                                     invitation=invitation.id, invited=invitation.community)
            community = ctx.reference.communities.get(invitation.community)
            welcome = ctx.t("invite.welcome", partner=invitation.partner,
                            community=community.label if community else invitation.community
                            ) + "\n\n" + welcome
        state = await open_conversation(ctx, self.kind, "consent", fields.to_json())
        return ctx.text(welcome, (choice(state, ctx.t("enroll.accept"), "yes"),
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
            lines = "\n".join(f"• {c.label} — {c.description}"
                              + (ctx.t("invite.vetted_mark") if c.vetted else "")
                              for c in communities.values())
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
        if fields.communes:  # an invitation's communes: shown, to keep or change
            return ctx.answer("enroll.communes") + self._show_communes(ctx, state)
        return ctx.answer("enroll.communes")

    async def on_communes(self, ctx: Context, state: ConversationState,
                          answer: Answer) -> Effects:
        """Places typed, or the answer to the question asked about one of them."""
        fields = EnrollmentState.from_json(state.data)
        if answer.value == "done" or (answer.value is None and _is_done(answer.text)):
            fields.questions = []  # « Terminer » with questions left: they are dropped
            keep(state, fields)
            return await self._communes_done(ctx, state, fields)
        problems: list[str] = []
        added: list[str] = []
        if answer.value == "clear":
            fields.communes, fields.questions = [], []
        elif answer.value == "skip":
            fields.questions = fields.questions[1:]
        elif answer.value and answer.value.startswith("add:"):
            added = _add_commune(fields, answer.value[4:])
            fields.questions = fields.questions[1:]
        else:  # new places; they replace the question being asked, if any
            resolution = resolve_places(ctx.geo, ctx.t, answer.text, answer.location,
                                        home=fields.communes)
            added = [code for c in resolution.found for code in _add_commune(fields, c.insee)]
            problems = resolution.problems
            fields.questions = [*resolution.questions, *fields.questions[1:]]
        fields.questions = _still_open(fields)
        keep(state, fields)
        await move_to(ctx, state, "communes")
        if not fields.questions:  # the list so far says what was added
            return self._show_communes(ctx, state, problems)
        kept = [ctx.t("places.added", commune=c.label()) for c in _named(ctx, added)]
        return self._ask_place(ctx, state, fields, problems + kept)

    def _ask_place(self, ctx: Context, state: ConversationState, fields: EnrollmentState,
                   notes: list[str]) -> Effects:
        """The first open question, alone with its choices; what the last answer did
        above it, in the same message (one list at a time: a typed number answers it)."""
        question = fields.questions[0]
        lines = [*notes, question.text(ctx.t)]
        if len(fields.questions) > 1:
            lines.append(ctx.t("places.more_questions", count=len(fields.questions) - 1))
        options = [choice(state, question.label(c), f"add:{c.insee}")
                   for c in map(ctx.geo.by_insee, question.candidates) if c is not None]
        options.append(choice(state, ctx.t("places.none_of_these"), "skip"))
        return ctx.text("\n".join(lines), tuple(options))

    def _show_communes(self, ctx: Context, state: ConversationState,
                       notes: list[str] | None = None) -> Effects:
        fields = EnrollmentState.from_json(state.data)
        names = [describe_commune(c) for c in _communes(ctx, fields)]
        lines = list(notes or ())
        if len(names) > COMMUNES_PER_SUBSCRIBER:
            lines.append(ctx.t("enroll.too_many_communes", max=COMMUNES_PER_SUBSCRIBER))
        lines.append(ctx.t("enroll.communes_so_far", list=", ".join(names)) if names
                     else ctx.t("enroll.no_commune_yet"))
        return ctx.text("\n".join(lines), (
            choice(state, ctx.t("enroll.communes_done"), "done"),
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
        invitation = await self._invitation(ctx, fields)
        # A vetted community comes only with its own invitation, or by a request.
        vetting = [key for key in fields.communities if key in ctx.reference.communities
                   and ctx.reference.communities[key].vetted
                   and (invitation is None or key != invitation.community)]
        subscriber = await ctx.stores.subscribers.enroll(
            incoming.sender.platform, incoming.sender.user_id, incoming.chat.chat_id,
            ctx.t.language, ctx.config.consent_version, ctx.now,
            fields.communes, [key for key in fields.communities if key not in vetting])
        if invitation is not None and invitation.community in fields.communities:
            await ctx.stores.invitations.use(invitation, subscriber.id, ctx.now)
            await ctx.audit("invitation.used", invitation=invitation.id)
        if not vetting:
            await close_conversation(ctx)
            return ctx.answer("enroll.done")
        fields.vetting = vetting
        keep(state, fields)
        await move_to(ctx, state, "introduce")
        labels = ", ".join(ctx.reference.communities[key].label for key in vetting)
        return ctx.answer("enroll.done") + ctx.answer("invite.introduce", communities=labels)

    async def _invitation(self, ctx: Context, fields: EnrollmentState) -> Invitation | None:
        """The invitation followed, if it still lets people in (it may have been revoked,
        or reached its end, while the person was reading the notice)."""
        if fields.invitation is None:
            return None
        found = await ctx.stores.invitations.get(fields.invitation)
        if found is None or found.state(ctx.now) is not InvitationState.ACTIVE:
            return None
        return found

    async def on_introduce(self, ctx: Context, state: ConversationState,
                           answer: Answer) -> Effects:
        """The person's words about themselves, for the référents of the vetted
        communities they chose (« annuler » or /annuler: no request)."""
        from bot.handlers.subscriber import file_request  # the handler shares the filing

        fields = EnrollmentState.from_json(state.data)
        subscriber = await ctx.stores.subscribers.get(ctx.identity.platform,
                                                      ctx.identity.user_id)
        if subscriber is None or not fields.vetting:
            await close_conversation(ctx)
            return NO_EFFECTS
        effects = await file_request(ctx, subscriber, fields.vetting, answer.text)
        if await ctx.stores.invitations.pending_of(subscriber.id):
            await close_conversation(ctx)
        else:
            await move_to(ctx, state, "introduce")
        return effects


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


def _communes(ctx: Context, fields: EnrollmentState) -> list[Commune]:
    return _named(ctx, fields.communes)


def _add_commune(fields: EnrollmentState, insee: str) -> list[str]:
    """Add a commune; what was new (nothing if it was there already)."""
    if insee in fields.communes:
        return []
    fields.communes.append(insee)
    return [insee]


def _named(ctx: Context, codes: list[str]) -> list[Commune]:
    return [c for c in map(ctx.geo.by_insee, codes) if c is not None]


def _still_open(fields: EnrollmentState) -> list[PlaceQuestion]:
    """The questions left, less the communes chosen since they were asked; one whose
    every candidate is chosen already is answered."""
    open_questions = (q.without(fields.communes) for q in fields.questions)
    return [question for question in open_questions if question.candidates]


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


def _yes_no(text: str) -> str | None:
    said = said_yes_or_no(text)
    return None if said is None else "yes" if said else "no"


def _is_done(text: str) -> bool:
    return typed_words(text) in {"terminer", "termine", "terminé", "fini", "fin", "done",
                                 "valider", "ok", "finish"}
