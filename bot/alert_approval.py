"""Alert drafts, submission for approval, and officers' decisions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.alert_copy import alert_place, delivered_alert
from bot.alert_photos import attach_new, forget, summary_line
from bot.broadcast.outbox import open_outbox, start_broadcast
from bot.buttons import ApprovalButton, button
from bot.config import Config
from bot.context import Context, Lookups, Records, Services
from bot.deferred import map_recipe
from bot.domain import (
    NO_EFFECTS,
    ChatRef,
    Choice,
    EditTracked,
    Effects,
    Notify,
    Outgoing,
    ToOfficers,
)
from bot.enums import AlertKind, AlertStatus
from bot.errors import UserFacingError
from bot.geo.perimeter import Perimeter, parse_perimeter
from bot.i18n import ANY_PLATFORM, Translator
from bot.limits import ALERT_TEXT_CHARS, REASON_CHARS
from bot.maps import MapLegend
from bot.organisations import Organisation
from bot.people import display_name
from bot.photos import Photo
from bot.place import areas_from_json, areas_to_json, named_first, place_text
from bot.reference import Category, Reference
from bot.render import AlertFacts, alert_summary, approval_request, preview
from bot.roles import Role
from bot.storage.alerts import Alert, NewAlert
from bot.storage.deliveries import Reach
from bot.storage.whatsapp import WhatsAppStore

REQUEST = "approval_request"
MAP = "map"  # tracked: a protected alert's map is deleted when the alert ends
SEPARATOR = re.compile(r":(?=\s|$)")  # "dep:70" and "14:30" are not separators
EXERCISE = re.compile(r"\s+(?:exercice|exercise)\s*$", re.IGNORECASE)
SINCE = re.compile(r"\s+depuis\s+(\d{1,2})\s*[:hH]\s*(\d{2})\s*$", re.IGNORECASE)
FOR = re.compile(r"\s+pour\s+(.+)$", re.IGNORECASE | re.DOTALL)
ALL_WORDS = {"tous", "toutes", "tout", "all", "everyone"}
_JSON = json.JSONDecoder()


class AlertInputError(UserFacingError):
    """An alert command that cannot be understood (messages in ``bot/locales/core.*``)."""


@dataclass(frozen=True)
class AlertDraft:
    category: Category
    perimeter: Perimeter
    communities: frozenset[str]
    all_communities: bool
    facts_at: datetime
    body: str
    exercise: bool = False
    facts_stated: bool = True  # the operator said when (« depuis 14:30 », the guided step)


def parse_alert_command(lookups: Lookups, args: str, now: datetime) -> AlertDraft:
    """``<catégorie> <périmètre> [pour <communautés>|tous] [depuis HH:MM] : <texte>``."""
    category_word, _, rest = args.strip().partition(" ")
    if not category_word:
        raise AlertInputError("alert.usage")
    category = require_category(lookups.reference, category_word)
    head, body = _split_body(rest.strip())
    exercise = EXERCISE.search(head)
    if exercise:
        head = head[:exercise.start()]
    facts_at = now
    since = SINCE.search(head)
    if since:
        facts_at = facts_time(lookups, int(since.group(1)), int(since.group(2)), now)
        head = head[:since.start()]
    head, communities_text = split_for(head)
    perimeter = require_perimeter(lookups, head)
    keys, everyone = parse_communities(lookups.reference, communities_text or "tous",
                                       category.all_communities)
    return AlertDraft(category, perimeter, keys, everyone, facts_at, require_body(body),
                      exercise=exercise is not None, facts_stated=since is not None)


def _split_body(rest: str) -> tuple[str, str]:
    spans = _json_spans(rest)
    match = next((m for m in SEPARATOR.finditer(rest) if not _inside(spans, m.start())), None)
    if match is None:
        raise AlertInputError("alert.missing_text")
    return rest[:match.start()].strip(), rest[match.end():].strip()


def split_for(head: str) -> tuple[str, str | None]:
    """``<périmètre> pour <communautés>`` → (perimeter, communities or None); a « pour »
    inside a GeoJSON part (a property's value) is part of the GeoJSON."""
    spans = _json_spans(head)
    target = FOR.search(head, spans[-1][1] if spans else 0)
    if target is None:
        return head, None
    return head[:target.start()], target.group(1)


def _json_spans(text: str) -> list[tuple[int, int]]:
    """Where each JSON object in ``text`` starts and ends, found by the JSON decoder itself
    (a brace or a colon inside a string is not structure, as brace counting assumed).
    Scanning stops at the first object that does not decode: the perimeter parser says
    what is wrong with it, and the scan stays linear whatever was typed."""
    spans: list[tuple[int, int]] = []
    start = text.find("{")
    while start != -1:
        try:
            end = _JSON.raw_decode(text, start)[1]
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            break
        spans.append((start, end))
        start = text.find("{", end)
    return spans


def _inside(spans: list[tuple[int, int]], index: int) -> bool:
    return any(start <= index < end for start, end in spans)


def require_category(reference: Reference, typed: str) -> Category:
    category = reference.category(typed)
    if category is None:
        raise AlertInputError("alert.unknown_category", typed=typed,
                              known=", ".join(reference.categories))
    return category


def require_perimeter(lookups: Lookups, text: str) -> Perimeter:
    if not text.strip():
        raise AlertInputError("alert.missing_perimeter")
    # fichier:NAME.geojson may only read inside the configured folder, never elsewhere.
    config = lookups.config
    return parse_perimeter(text.strip(), lookups.geo, max_radius_km=config.geo.max_radius_km,
                           files_dir=config.resolve(config.geo.perimeter_files))


def require_body(body: str) -> str:
    if not body.strip():
        raise AlertInputError("alert.empty_text")
    if len(body) > ALERT_TEXT_CHARS:
        raise AlertInputError("alert.text_too_long", length=len(body), max=ALERT_TEXT_CHARS)
    return body.strip()


def parse_communities(reference: Reference, text: str,
                      reaches_everyone: bool = False) -> tuple[frozenset[str], bool]:
    """Community keys typed by an operator; ``(all keys, True)`` for « tous » or nothing."""
    words = [w.strip() for w in re.split(r"[,;]|\s+et\s+", text) if w.strip()]
    if reaches_everyone or not words or {w.lower() for w in words} & ALL_WORDS:
        return frozenset(reference.communities), True
    keys = set()
    for word in words:
        community = reference.community(word)
        if community is None:
            raise AlertInputError("alert.unknown_community", typed=word,
                                  known=", ".join(reference.communities))
        keys.add(community.key)
    return frozenset(keys), False


def facts_time(lookups: Lookups, hour: int, minute: int, now: datetime) -> datetime:
    if hour > 23 or minute > 59:
        raise AlertInputError("alert.bad_time", hour=hour, minute=minute)
    local_now = lookups.local(now)
    moment = datetime.combine(local_now.date(), time(hour, minute), local_now.tzinfo)
    # "depuis 23:50" typed at 00:10 means yesterday. Compared as instants: on the night
    # clocks go forward, 02:15 does not exist and would otherwise land in the future.
    if moment.astimezone(UTC) > now:
        moment -= timedelta(days=1)
    return moment


def is_stale(category: Category, facts_at: datetime, now: datetime) -> bool:
    return category.max_fact_age is not None and now - facts_at > category.max_fact_age


MAYOR_SEVERITIES = frozenset({"low"})  # a mayor sends prevention and information only
NAMES_SHOWN = 12  # communes named in a refusal, then « … »


def issuing_organisation(ctx: Context, draft: AlertDraft) -> Organisation | Effects:
    """The organisation an alert is issued for, or the refusal to show: an operator's
    alert lies inside their organisation's territory (an overseer's: its départements);
    a mayor's is a prevention message inside their own communes, issued for the
    organisation covering them (whose officers decide)."""
    communes = draft.perimeter.communes
    own = ctx.organisation
    if Role.OPERATOR not in ctx.roles and Role.MAYOR in ctx.roles:
        return _mayors_organisation(ctx, draft)
    if own is None:
        return ctx.answer("orgs.no_organisation")
    outside = own.outside(communes)
    if not outside:
        return own
    return _outside(ctx, outside, "orgs.outside_territory")


def _mayors_organisation(ctx: Context, draft: AlertDraft) -> Organisation | Effects:
    organisations = ctx.organisations
    if draft.category.severity not in MAYOR_SEVERITIES:
        allowed = [c.key for c in ctx.reference.categories.values()
                   if c.severity in MAYOR_SEVERITIES]
        return ctx.answer("orgs.mayor_category", category=draft.category.label,
                          allowed=", ".join(allowed))
    mine = organisations.mayor_communes(ctx.identity)
    outside = draft.perimeter.communes - mine
    if outside:
        return _outside(ctx, outside, "orgs.mayor_outside")
    competent = organisations.competent(draft.perimeter.communes)
    if not competent:
        return ctx.answer("orgs.no_organisation")
    return competent[0]


async def _refusal_audit(ctx: Context, draft: AlertDraft, refusal: Effects) -> None:
    await ctx.audit("alert.refused_territory", category=draft.category.key,
                    perimeter=draft.perimeter.text[:200])


def _outside(ctx: Context, outside: frozenset[str], key: str) -> Effects:
    """« 12 communes hors de votre zone : … — zone de la Gendarmerie de la Lozère »."""
    geo = ctx.geo
    names = sorted((c.name for code in outside if (c := geo.by_insee(code)) is not None),
                   key=lambda name: name.casefold())
    shown = ", ".join(names[:NAMES_SHOWN]) + (", …" if len(names) > NAMES_SHOWN else "")
    competent = ctx.organisations.competent(outside)
    who = ", ".join(o.name for o in competent) or ctx.t("orgs.nobody")
    return ctx.answer(key, count=len(outside), communes=shown, competent=who)


async def check_issuer(ctx: Context, draft: AlertDraft) -> Organisation | Effects:
    """``issuing_organisation``, a refusal audited."""
    found = issuing_organisation(ctx, draft)
    if isinstance(found, Effects):
        await _refusal_audit(ctx, draft, found)
    return found


@dataclass(frozen=True)
class Submitted:
    """A pending alert (or follow-up) stored, and what shows it to its requester and asks
    the officers: the caller returns ``effects``."""

    alert: Alert
    effects: Effects


async def submit(ctx: Context, draft: AlertDraft, send_at: datetime | None = None,
                 schedule_id: int | None = None, photo: Photo | None = None) -> Submitted:
    """Store and ask; the caller has checked the issuer (``check_issuer``), and an alert
    outside the issuer's territory is never stored."""
    issuer = issuing_organisation(ctx, draft)
    if isinstance(issuer, Effects):
        raise AlertInputError("orgs.no_organisation")
    new = NewAlert(
        category=draft.category.key, perimeter=shown_perimeter(ctx, draft.perimeter),
        perimeter_json=perimeter_json(draft.perimeter), communes=draft.perimeter.communes,
        communities=draft.communities, all_communities=draft.all_communities, body=draft.body,
        facts_at=draft.facts_at, requested_by=ctx.who,
        request_platform=ctx.incoming.chat.platform, request_chat_id=ctx.incoming.chat.chat_id,
        required_approvals=draft.category.required_approvals,
        expires_at=(send_at or ctx.now) + draft.category.default_expiry,
        exercise=draft.exercise, send_at=send_at, schedule_id=schedule_id,
        facts_stated=draft.facts_stated, organisation=issuer.key)
    return await _create_and_request(ctx, new, draft.perimeter, photo)


async def _create_and_request(ctx: Context, new: NewAlert, perimeter: Perimeter | None = None,
                              photo: Photo | None = None) -> Submitted:
    """Store a pending alert (or update), show the requester a preview, ask the officers
    (the request, then its photo and its map)."""
    alert = await ctx.stores.alerts.create(new, ctx.now)
    await ctx.audit("alert.submitted", alert.id, category=alert.category, kind=alert.kind,
                    perimeter=alert.perimeter, communes=len(new.communes))
    photo_post = await attach_new(ctx, alert, photo)
    summary = await summarize(ctx, ctx.t, alert)
    category = ctx.reference.categories[alert.category]
    as_delivered = delivered_alert(ctx.t, alert, category,
                                   ctx.organisations.signature(alert.organisation), ctx.now,
                                   ctx.timezone)
    staff = ctx.staff_t
    request = await officers_request(ctx, staff, alert, staff("approval.waiting"))
    effects = ctx.text(preview(ctx.t, summary, alert, as_delivered)) + Effects.of(
        ToOfficers(request, track=(REQUEST, alert.id), organisation=alert.organisation)) \
        + photo_post
    if perimeter is not None:
        map_message = await _map(ctx, alert, category.label, perimeter)
        effects += Effects.of(ToOfficers(map_message, track=(MAP, alert.id),
                                         organisation=alert.organisation))
    return Submitted(alert, effects)


async def _map(ctx: Context, alert: Alert, label: str, perimeter: Perimeter) -> Outgoing:
    """The request's map, drawn after commit by the reply sender (bot/deferred.py), from
    figures read here; a failure to draw never holds an alert back (nothing is sent)."""
    reach = await ctx.stores.deliveries.reach(perimeter.communes, await ctx.stores.alerts
                                              .communities(alert.id), alert.all_communities)
    staff = ctx.staff_t  # the map goes to the officers' channels
    legend = MapLegend(staff("render.map_title", number=alert.id, category=label),
                       alert.perimeter[:80], len(perimeter.communes), reach.subscribers,
                       reach.groups, ctx.geo.population(perimeter.communes))
    return Outgoing(staff("render.map_caption", number=alert.id),
                    deferred=map_recipe(f"carte-alerte-{alert.id}.png", staff.language,
                                        perimeter, legend))


async def follow_up(ctx: Context, parent: Alert, kind: AlertKind, body: str) -> Submitted:
    """Operator text about a broadcast alert (an update, a closing message), to the same
    recipients: stored pending and approved as its category requires, like an alert."""
    new = await _follow_up_row(ctx, parent, kind, body, ctx.who, ctx.incoming.chat, ctx.now)
    return await _create_and_request(ctx, new)


async def issue_follow_up(services: Services, parent: Alert, kind: AlertKind, actor: str,
                          chat: ChatRef, now: datetime) -> Alert:
    """A follow-up in the bot's own words (all-clear without text, recall, expiry): no
    operator text, so it goes at once — it only narrows what was already approved.
    Runs in the caller's transaction, with the close it belongs to."""
    new = await _follow_up_row(services, parent, kind, "", actor, chat, now)
    child = await services.stores.alerts.create(new, now)
    await services.stores.alerts.transition(child.id, AlertStatus.PENDING, AlertStatus.APPROVED,
                                            actor, now)
    await start_broadcast(services, child.id, now)
    return child


async def _follow_up_row(records: Records, parent: Alert, kind: AlertKind, body: str,
                         actor: str, chat: ChatRef, now: datetime) -> NewAlert:
    category = records.reference.categories[parent.category]
    alerts = records.stores.alerts
    return NewAlert(
        category=parent.category, perimeter=parent.perimeter,
        perimeter_json=parent.perimeter_json,
        communes=frozenset(await alerts.communes(parent.id)),
        communities=frozenset(await alerts.communities(parent.id)),
        all_communities=parent.all_communities, body=body, facts_at=now,
        requested_by=actor, request_platform=chat.platform, request_chat_id=chat.chat_id,
        required_approvals=category.required_approvals if body else 0,
        expires_at=parent.expires_at, kind=kind, parent_id=parent.id,
        exercise=parent.exercise, organisation=parent.organisation)


def shown_perimeter(lookups: Lookups, perimeter: Perimeter, counted: bool = True) -> str:
    """The perimeter in words (bot/place.py) as lists and reports show it, in the bot's
    language (like the categories' labels); the canonical text stays in ``perimeter_json``
    with its areas, which copies word in each reader's language."""
    return place_text(Translator(lookups.catalog, lookups.config.language), perimeter.areas,
                      counted)


def perimeter_json(perimeter: Perimeter) -> str:
    return json.dumps({"text": perimeter.text, "center": perimeter.center,
                       "radius_m": perimeter.radius_m,
                       "polygon": None if perimeter.polygon_wgs84 is None
                       else perimeter.polygon_wgs84.wkt,
                       "areas": areas_to_json(perimeter.areas)}, ensure_ascii=False)


async def summarize(records: Records, t: Translator, alert: Alert,
                    reach: Reach | None = None) -> str:
    """``reach``: when the caller counted it in this transaction already."""
    stores, geo = records.stores, records.geo
    communes = await stores.alerts.communes(alert.id)
    communities = await stores.alerts.communities(alert.id)
    if reach is None:
        reach = await stores.deliveries.reach(communes, communities, alert.all_communities)
    names = named_first(areas_from_json(alert.perimeter_json), communes, geo)
    category = records.reference.categories[alert.category]
    stale = (alert.status == "pending" and not alert.stale_override
             and is_stale(category, alert.facts_at, records.clock.now()))
    facts = AlertFacts(alert_place(t, alert, counted=False), names, communities, reach,
                       geo.population(communes), stale)
    summary = alert_summary(t, records.reference, alert, facts, records.local(alert.facts_at))
    summary += await whatsapp_cost_line(records, t, communes, communities, alert.all_communities)
    photo = await summary_line(records, t, alert)
    return f"{summary}\n{photo}" if photo else summary


async def whatsapp_cost_line(records: Records, t: Translator, communes: Iterable[str],
                             communities: Iterable[str], all_communities: bool) -> str:
    """The estimated WhatsApp cost, when a price is set: every WhatsApp recipient as a
    template message (those who wrote within 24 hours get free text: an upper bound)."""
    price = records.config.whatsapp.cost_per_message
    if price <= 0 or not records.config.whatsapp.enabled:
        return ""
    count = await WhatsAppStore(records.stores.deliveries.db).recipients(
        communes, communities, all_communities)
    return "\n" + t("render.cost_estimate", cost=t.number(count * price, 2),
                    count=t.number(count), price=t.number(price, 4, trim=True))


async def officers_request(records: Records, t: Translator, alert: Alert,
                           status_line: str, reach: Reach | None = None) -> Outgoing:
    t = t.on(ANY_PLATFORM)  # one text for every officers' channel: commands as each types them
    category = records.reference.categories[alert.category]
    summary = await summarize(records, t, alert, reach)
    # As it will read: a scheduled message gives the day it goes.
    as_delivered = delivered_alert(t, alert, category,
                                   records.organisations.signature(alert.organisation),
                                   alert.send_at or records.clock.now(),
                                   ZoneInfo(records.config.timezone))
    who = await display_name(records, t, alert.requested_by, Role.OPERATOR)
    text, markup = approval_request(t, summary, alert, records.local(alert.created_at),
                                    as_delivered, status_line, who)
    choices: tuple[Choice, ...] = ()
    if alert.status == "pending":
        choices = (button(t("approval.approve_button"), ApprovalButton(alert.id, True)),
                   button(t("approval.reject_button"), ApprovalButton(alert.id, False)))
    return Outgoing(text, markup, choices)


async def decide(ctx: Context, alert_id: int, approve: bool, reason: str | None,
                 override_stale: bool = False, prosecutor_ref: str | None = None) -> Effects:
    """Record an officer's decision; all checks and writes in the event's transaction."""
    alert = await _decidable(ctx, alert_id)
    if isinstance(alert, Effects):
        return alert
    if approve:
        return await _approve(ctx, alert, override_stale, prosecutor_ref)
    return await _reject(ctx, alert, reason)


async def _decidable(ctx: Context, alert_id: int) -> Alert | Effects:
    """The alert, if this officer may decide it now; else what tells them why not."""
    alert = await ctx.stores.alerts.get(alert_id)
    if alert is None:
        return ctx.answer("approval.not_found", number=alert_id)
    if not ctx.organisations.answers_for(ctx.organisation, alert.organisation):
        # Only the issuing organisation's officers, or an overseer's, decide.
        await ctx.audit("approval.refused_organisation", alert.id,
                        alert_organisation=alert.organisation)
        return ctx.answer("orgs.not_yours", number=alert.id,
                          organisation=ctx.organisations.get(alert.organisation).name)
    if alert.status != "pending":
        await ctx.audit("approval.refused_not_pending", alert.id, status=alert.status)
        return ctx.answer("approval.not_pending", number=alert.id,
                          status=ctx.t(f"status.{alert.status}"))
    if ctx.now >= approval_deadline(ctx.config, alert):
        return await _past_deadline(ctx, alert)
    if alert.requested_by == ctx.who:
        await ctx.audit("approval.refused_self", alert.id)
        return ctx.answer("approval.self", number=alert.id)
    if any(a.officer == ctx.who for a in await ctx.stores.alerts.approvals(alert.id)):
        return ctx.answer("approval.already_decided", number=alert.id)
    return alert


def approval_deadline(config: Config, alert: Alert) -> datetime:
    """When a pending alert expires unapproved (the clock's rule, kept in one place)."""
    delay = timedelta(minutes=config.approval.expire_after_minutes)
    return alert.created_at + delay


async def _past_deadline(ctx: Context, alert: Alert) -> Effects:
    """A decision after the deadline (the bot was down, or the clock has not ticked yet)
    finds the alert expired, exactly as the clock would have left it: checked here, in
    the decision's transaction, not only by the clock."""
    expired = await expire_unapproved(ctx, ctx.staff_t, alert, ctx.now)
    await ctx.audit("approval.refused_expired", alert.id)
    deadline = approval_deadline(ctx.config, alert)
    return expired + ctx.answer("approval.expired", number=alert.id,
                                time=ctx.t.when(ctx.local(deadline)))


async def expire_unapproved(records: Records, t: Translator, alert: Alert,
                            now: datetime) -> Effects:
    """Mark a pending alert expired unapproved; its request in the officers' channels is
    edited and its requester told. Nothing to do if it was no longer pending."""
    stores = records.stores
    if not await stores.alerts.transition(alert.id, AlertStatus.PENDING, AlertStatus.EXPIRED,
                                          "system", now):
        return NO_EFFECTS
    await stores.audit.record(now, "system", "alert.expired_unapproved", alert.id)
    expired = await stores.alerts.get(alert.id)
    assert expired is not None
    request = await officers_request(records, t, expired, t("lifecycle.unapproved_status"))
    await forget(records, alert.id)  # after the request that still says what was asked
    return Effects.of(EditTracked(REQUEST, alert.id, request, alert.organisation),
                      Notify(ChatRef(alert.request_platform, alert.request_chat_id),
                             Outgoing(t("lifecycle.unapproved", number=alert.id))))


async def _approve(ctx: Context, alert: Alert, override_stale: bool,
                   prosecutor_ref: str | None) -> Effects:
    category = ctx.reference.categories[alert.category]
    facts_at = alert.facts_at
    stale = alert.kind == "alert" and is_stale(category, facts_at, ctx.now)
    if stale and not (override_stale or alert.stale_override):
        await ctx.audit("approval.refused_stale", alert.id)
        return ctx.answer("approval.stale", number=alert.id, minutes=int(
            (ctx.now - facts_at).total_seconds() // 60))
    needs_reference = category.prosecutor_authorisation and alert.kind == "alert"
    if needs_reference and not (prosecutor_ref or alert.prosecutor_ref):
        return ctx.answer("approval.prosecutor_ref_needed", number=alert.id)
    await ctx.stores.alerts.add_approval(alert.id, ctx.who, "approve", None, override_stale,
                                         ctx.now)
    if prosecutor_ref:
        await ctx.stores.alerts.set_prosecutor_ref(alert.id, prosecutor_ref)
    if override_stale:
        await ctx.stores.alerts.set_stale_override(alert.id)
    # The prosecutor's reference is part of the decision: the trail keeps who gave which.
    reference = {"prosecutor_ref": prosecutor_ref} if prosecutor_ref else {}
    await ctx.audit("approval.approved", alert.id, override_stale=override_stale, **reference)
    approvals = [a for a in await ctx.stores.alerts.approvals(alert.id) if a.decision == "approve"]
    if len(approvals) < alert.required_approvals:
        return await _partial_approval(ctx, alert, len(approvals))
    return await _launch(ctx, alert)


async def _partial_approval(ctx: Context, alert: Alert, count: int) -> Effects:
    staff = ctx.staff_t
    status = staff("approval.partial", count=count, required=alert.required_approvals,
                   who=await display_name(ctx, staff, ctx.who))
    request = await officers_request(ctx, staff, alert, status)
    return ctx.answer("approval.partial_ack", number=alert.id, count=count,
                      required=alert.required_approvals) + Effects.of(
        EditTracked(REQUEST, alert.id, request, alert.organisation))


async def _launch(ctx: Context, alert: Alert) -> Effects:
    await ctx.stores.alerts.transition(alert.id, AlertStatus.PENDING, AlertStatus.APPROVED,
                                       ctx.who, ctx.now)
    opened = await open_outbox(ctx.services, alert.id, ctx.now)
    recipients = opened.rows
    approved = await ctx.stores.alerts.get(alert.id)
    assert approved is not None
    if approved.status == "approved":  # scheduled for later
        return await _scheduled_approval(ctx, approved)
    staff = ctx.staff_t
    who = await display_name(ctx, staff, ctx.who)
    status = staff("approval.approved_by", who=who, time=staff.time(ctx.local(ctx.now)),
                   recipients=staff("quantity.recipients", count=recipients))
    request = await officers_request(ctx, staff, approved, status, opened.reach)
    told = Effects.of(EditTracked(REQUEST, alert.id, request, alert.organisation),
                      _tell_requester(ctx, alert, staff(
        "approval.requester_approved", number=alert.id,
        recipients=staff("quantity.recipients", count=recipients))), wake_dispatcher=True)
    return told + ctx.answer("approval.approved_ack", number=alert.id,
                             recipients=ctx.t("quantity.recipients", count=recipients))


async def _scheduled_approval(ctx: Context, alert: Alert) -> Effects:
    assert alert.send_at is not None
    staff, moment = ctx.staff_t, ctx.local(alert.send_at)
    status = staff("approval.scheduled_by", who=await display_name(ctx, staff, ctx.who),
                   time=staff.when(moment))
    request = await officers_request(ctx, staff, alert, status)
    told = Effects.of(EditTracked(REQUEST, alert.id, request, alert.organisation),
                      _tell_requester(ctx, alert, staff(
        "approval.requester_scheduled", number=alert.id, time=staff.when(moment))))
    return told + ctx.answer("approval.scheduled_ack", number=alert.id,
                             time=ctx.t.when(moment))


async def _reject(ctx: Context, alert: Alert, reason: str | None) -> Effects:
    staff = ctx.staff_t
    motive = (reason or "").strip()[:REASON_CHARS] or staff("approval.no_reason")
    await ctx.stores.alerts.add_approval(alert.id, ctx.who, "reject", motive, False, ctx.now)
    await ctx.stores.alerts.transition(alert.id, AlertStatus.PENDING, AlertStatus.REJECTED,
                                       ctx.who, ctx.now, reason=motive)
    await ctx.audit("approval.rejected", alert.id, reason=motive)
    rejected = await ctx.stores.alerts.get(alert.id)
    assert rejected is not None
    status = staff("approval.rejected_by", who=await display_name(ctx, staff, ctx.who),
                   reason=motive)
    request = await officers_request(ctx, staff, rejected, status)
    await forget(ctx, alert.id)  # after the request that still says what was asked
    told = Effects.of(EditTracked(REQUEST, alert.id, request, alert.organisation),
                      _tell_requester(ctx, alert, staff(
        "approval.requester_rejected", number=alert.id, reason=motive)))
    return told + ctx.answer("approval.rejected_ack", number=alert.id)


def _tell_requester(ctx: Context, alert: Alert, text: str) -> Notify:
    return Notify(ChatRef(alert.request_platform, alert.request_chat_id), Outgoing(text))
