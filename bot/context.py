"""Everything a handler may use, passed explicitly (no global application lookup)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Config
from bot.domain import (
    NO_EFFECTS,
    ChatKind,
    ChatRef,
    Choice,
    Effects,
    Identity,
    Incoming,
    Notify,
    Outgoing,
    Reply,
)
from bot.geo.communes import CommuneLayer
from bot.i18n import Catalog, Translator
from bot.invitations import GuessGuard
from bot.keys import Keys
from bot.organisations import Organisation, Organisations
from bot.reference import Reference
from bot.roles import Action, Role, RoleBook
from bot.storage.alerts import AlertStore
from bot.storage.audit import AuditStore
from bot.storage.conversations import BY_IDENTITY, ConversationState, ConversationStore
from bot.storage.database import Database
from bot.storage.deliveries import DeliveryStore
from bot.storage.groups import GroupStore
from bot.storage.inbox import InboxStore
from bot.storage.invitations import InvitationStore, ReferentStore
from bot.storage.lock import ServingLock
from bot.storage.photos import PhotoStore
from bot.storage.replies import ReplyStore
from bot.storage.roles import RoleStore
from bot.storage.schedules import ScheduleStore
from bot.storage.staff_names import StaffNameStore
from bot.storage.stats import StatsStore
from bot.storage.subscribers import BY_USER, Subscriber, SubscriberStore
from bot.storage.tips import TipStore
from bot.transports.base import StartLink, Transport


@dataclass
class Stores:
    subscribers: SubscriberStore
    groups: GroupStore
    alerts: AlertStore
    deliveries: DeliveryStore
    conversations: ConversationStore
    audit: AuditStore
    schedules: ScheduleStore
    tips: TipStore
    roles: RoleStore
    inbox: InboxStore
    replies: ReplyStore
    stats: StatsStore
    staff_names: StaffNameStore
    photos: PhotoStore
    invitations: InvitationStore
    referents: ReferentStore

    @classmethod
    def on(cls, db: Database, keys: Keys) -> Stores:
        return cls(SubscriberStore(db), GroupStore(db), AlertStore(db), DeliveryStore(db),
                   ConversationStore(db), AuditStore(db, keys), ScheduleStore(db), TipStore(db),
                   RoleStore(db), InboxStore(db), ReplyStore(db), StatsStore(db),
                   StaffNameStore(db), PhotoStore(db), InvitationStore(db), ReferentStore(db))


@dataclass
class Services:
    config: Config
    db: Database
    stores: Stores
    geo: CommuneLayer
    reference: Reference
    catalog: Catalog
    roles: RoleBook
    clock: Clock
    organisations: Organisations
    platforms: frozenset[str] = field(default_factory=frozenset)
    serving_lock: ServingLock | None = None  # held from build_services to close
    # The running transports, through their base interface only: how people reach the
    # bot with an invitation's code (``Transport.start_link``). Set by the core.
    transports: dict[str, Transport] = field(default_factory=dict)
    code_guard: GuessGuard = field(default_factory=GuessGuard)  # forged start codes

    async def close(self) -> None:
        await self.db.close()
        if self.serving_lock is not None:
            self.serving_lock.release()

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.timezone)

    @property
    def role_book(self) -> RoleBook:
        """Who holds which role (the same name as ``Context``'s, for ``Records``)."""
        return self.roles

    def start_links(self, code: str) -> list[StartLink]:
        """How people reach the bot with ``code`` on each running platform."""
        links = (transport.start_link(code) for transport in self.transports.values())
        return [link for link in links if link is not None]


async def _sender(services: Services, sender: Identity,
                  ) -> tuple[Subscriber | None, ConversationState | None]:
    """The sender's subscriber row and, when the event keeps a conversation memo (the
    core's), their open conversation too, in one trip to the database: nearly every event
    reads both (its language, then the step it answers), and the memo keeps it for the rest
    of the event. Without a memo, the conversation is left to whoever needs it."""
    conversations = services.stores.conversations
    if not conversations.remembering:
        return await services.stores.subscribers.get(sender.platform, sender.user_id), None
    subscriber, conversation = await services.db.fetch_together([
        (BY_USER, (sender.platform, sender.user_id)), (BY_IDENTITY, (str(sender),))])
    found = Subscriber.from_row(subscriber[0]) if subscriber else None
    return found, conversations.remember(str(sender), conversation[0] if conversation else None)


class Lookups(Protocol):
    """The bot's fixed knowledge: configuration, categories and communities, communes and
    the messages. ``Services`` and a handler's ``Context`` both provide it, so what only
    reads it (parsing an alert, a perimeter's label) takes just this."""

    @property
    def config(self) -> Config: ...

    @property
    def reference(self) -> Reference: ...

    @property
    def geo(self) -> CommuneLayer: ...

    @property
    def catalog(self) -> Catalog: ...

    def local(self, moment: datetime) -> datetime: ...


def staff_translator(lookups: Lookups) -> Translator:
    """What staff read — the officers' channels (requests, decisions, reports, tips) and
    the notices to the operator who asked — in the configured staff language, whoever's
    event produced it (an English subscriber's tip reaches French officers in French)."""
    config = lookups.config
    return Translator(lookups.catalog, config.staff_language or config.language)


class Records(Lookups, Protocol):
    """Lookups, the stores, the clock and who holds which role: what describing an alert
    reads (people are named, bot/people.py)."""

    @property
    def stores(self) -> Stores: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def role_book(self) -> RoleBook: ...

    @property
    def organisations(self) -> Organisations: ...


@dataclass
class Context:
    """One incoming event, the person behind it, and what a handler may use to answer it.

    Handlers read the narrow pieces below (stores, configuration, communes, clock, roles,
    translator); ``services`` is only handed on to the domain operations shared with the
    clock and the dispatcher (opening a broadcast, ending an alert, a data export), which
    need more of the bot than a handler does. Replies are values: ``answer`` and ``text``
    build ``Effects`` that the handler returns, and nothing is sent while it runs.
    """

    services: Services
    incoming: Incoming
    subscriber: Subscriber | None
    t: Translator
    repaired: int = 0  # characters of the incoming text replaced by U+FFFD (domain.repaired)

    @classmethod
    async def of(cls, services: Services, incoming: Incoming, repaired: int = 0) -> Context:
        """The sender's context, in the language of the chat: the staff language in an
        officers' channel; elsewhere a subscriber's own, else the one their open
        conversation (an enrollment) was started in, else the staff language for staff
        and the bot's for anyone else; worded for the platform the event came from."""
        sender = incoming.sender
        found, state = await _sender(services, sender)
        staff = staff_translator(services).language
        language = found.language if found else None
        if found is None:
            state = state or await services.stores.conversations.get(str(sender))
            language = state.language if state else None
        if language is None:
            language = staff if services.roles.roles_of(sender) - {Role.SUBSCRIBER} \
                else services.config.language
        if incoming.chat_kind is ChatKind.OFFICERS:
            language = staff
        t = Translator(services.catalog, language, incoming.chat.platform)
        return cls(services, incoming, found, t, repaired)

    @property
    def staff_t(self) -> Translator:
        """For what goes to the officers' channels and to a requester (``staff_translator``)."""
        return staff_translator(self.services)

    @property
    def identity(self) -> Identity:
        return self.incoming.sender

    @property
    def who(self) -> str:
        return str(self.incoming.sender)

    @property
    def stores(self) -> Stores:
        return self.services.stores

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def reference(self) -> Reference:
        return self.services.reference

    @property
    def geo(self) -> CommuneLayer:
        return self.services.geo

    @property
    def catalog(self) -> Catalog:
        return self.services.catalog

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def role_book(self) -> RoleBook:
        """Who holds which role (``roles`` is the sender's own)."""
        return self.services.roles

    @property
    def organisations(self) -> Organisations:
        return self.services.organisations

    @property
    def organisation(self) -> Organisation | None:
        """The sender's organisation (bot/organisations.py); None outside every one."""
        return self.services.organisations.of(self.identity)

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    @property
    def timezone(self) -> ZoneInfo:
        return self.services.timezone

    def local(self, moment: datetime) -> datetime:
        return self.services.local(moment)

    @property
    def is_private(self) -> bool:
        return self.incoming.chat_kind is ChatKind.PRIVATE

    @property
    def roles(self) -> frozenset[Role]:
        return self.services.roles.roles_of(self.identity)

    def may(self, action: Action) -> bool:
        return self.services.roles.may(self.identity, action)

    def text(self, text: str, choices: tuple[Choice, ...] = (),
             html: str | None = None) -> Effects:
        """A reply to the chat the event came from."""
        return self.message(Outgoing(text, html, choices))

    def answer(self, key: str, **params: object) -> Effects:
        """A reply from the catalogue, in the sender's language."""
        return self.text(self.t(key, **params))

    def message(self, message: Outgoing) -> Effects:
        """A reply given whole (with an attachment, say)."""
        return Effects.of(Reply(message))

    def privately(self, key: str, **params: object) -> Effects:
        """An answer for the sender alone: here in a private chat; from a group or the
        officers' channel, in their private chat with the bot if they have one, else
        none — never where everyone would read it (a refused ✅ press is no one else's
        business, and they typed no command to be told about)."""
        if self.is_private:
            return self.answer(key, **params)
        found = self.subscriber
        if found is None or found.status == "blocked":
            return NO_EFFECTS
        return Effects.of(Notify(ChatRef(found.platform, found.chat_id),
                                 Outgoing(self.t(key, **params))))

    async def audit(self, action: str, alert_id: int | None = None, **detail: object) -> None:
        """Staff are named, with their organisation; anyone else is recorded under a
        pseudonym (right to erasure)."""
        staff = self.roles - {Role.SUBSCRIBER}
        actor = self.who if staff else self.stores.audit.pseudonym(self.who)
        if staff and "organisation" not in detail:
            found = self.organisation
            if found is not None:
                detail["organisation"] = found.key
        await self.stores.audit.record(self.now, actor, action, alert_id, **detail)
