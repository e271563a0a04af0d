"""Everything a handler may use, passed explicitly (no global application lookup)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Config
from bot.domain import ChatKind, Choice, Effects, Identity, Incoming, Outgoing, Reply
from bot.geo.communes import CommuneLayer
from bot.i18n import Catalog, Translator
from bot.keys import Keys
from bot.reference import Reference
from bot.roles import Action, Role, RoleBook
from bot.storage.alerts import AlertStore
from bot.storage.audit import AuditStore
from bot.storage.conversations import ConversationStore
from bot.storage.database import Database
from bot.storage.deliveries import DeliveryStore
from bot.storage.groups import GroupStore
from bot.storage.inbox import InboxStore
from bot.storage.lock import ServingLock
from bot.storage.replies import ReplyStore
from bot.storage.roles import RoleStore
from bot.storage.schedules import ScheduleStore
from bot.storage.subscribers import Subscriber, SubscriberStore
from bot.storage.tips import TipStore


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

    @classmethod
    def on(cls, db: Database, keys: Keys) -> Stores:
        return cls(SubscriberStore(db), GroupStore(db), AlertStore(db), DeliveryStore(db),
                   ConversationStore(db), AuditStore(db, keys), ScheduleStore(db), TipStore(db),
                   RoleStore(db), InboxStore(db), ReplyStore(db))


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
    platforms: frozenset[str] = field(default_factory=frozenset)
    serving_lock: ServingLock | None = None  # held from build_services to close

    async def close(self) -> None:
        await self.db.close()
        if self.serving_lock is not None:
            self.serving_lock.release()

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.timezone)


@dataclass
class Context:
    """One incoming event, the person behind it, and the services to answer it."""

    services: Services
    incoming: Incoming
    subscriber: Subscriber | None
    t: Translator
    effects: Effects = field(default_factory=Effects)

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
    def now(self) -> datetime:
        return self.services.clock.now()

    @property
    def is_private(self) -> bool:
        return self.incoming.chat_kind is ChatKind.PRIVATE

    @property
    def roles(self) -> frozenset[Role]:
        return self.services.roles.roles_of(self.identity)

    def may(self, action: Action) -> bool:
        return self.services.roles.may(self.identity, action)

    def reply(self, text: str, choices: tuple[Choice, ...] = (), html: str | None = None) -> None:
        self.effects.items.append(Reply(Outgoing(text, html, choices)))

    def say(self, key: str, **params: object) -> None:
        self.reply(self.t(key, **params))

    async def audit(self, action: str, alert_id: int | None = None, **detail: object) -> None:
        """Staff are named; anyone else is recorded under a pseudonym (right to erasure)."""
        staff = self.roles - {Role.SUBSCRIBER}
        actor = self.who if staff else self.stores.audit.pseudonym(self.who)
        await self.stores.audit.record(self.now, actor, action, alert_id, **detail)
