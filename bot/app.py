"""Wiring: configuration → services → core → transports, and the clock's jobs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import Clock
from bot.config import Config
from bot.context import Services, Stores
from bot.core import Core
from bot.geo.communes import CommuneLayer
from bot.i18n import Catalog
from bot.keys import Keys
from bot.metrics import Metrics
from bot.organisations import Organisations
from bot.privacy import scrub_free_pages_once
from bot.reference import load_reference
from bot.roles import RoleBook
from bot.storage.database import Database, is_postgresql
from bot.storage.lock import ServingLock
from bot.transports.base import Transport

if TYPE_CHECKING:
    from bot.monitoring import Monitor

log = logging.getLogger(__name__)
TICK_SECONDS = 15  # reminders and expiries happen at most this late


async def build_services(config: Config, clock: Clock | None = None,
                         geo: CommuneLayer | None = None,
                         platforms: frozenset[str] = frozenset()) -> Services:
    """Load everything the core needs; raises ConfigError, GeoDataError or DatabaseError
    (DatabaseInUse when another bot serves the same database: nothing is touched then)."""
    reference = load_reference(config.resolve(config.communities),
                               config.resolve(config.categories))
    layer = geo or CommuneLayer.load([config.resolve(p) for p in config.geo.communes])
    clock = clock or Clock()
    db, lock = await open_serving_database(config)
    try:
        stores = await open_stores(db, config, clock)
        organisations = Organisations.build(config, layer)
        roles = RoleBook(config.roles, config.organisations)
        roles.load_granted(await stores.roles.all())
        roles.load_referents(await stores.referents.all())
        organisations.load_granted(await stores.roles.organisations())
    except BaseException:
        await db.close()  # its worker thread would keep the process alive
        if lock is not None:
            lock.release()
        raise
    return Services(config=config, db=db, stores=stores, geo=layer, reference=reference,
                    catalog=Catalog.load(), roles=roles, clock=clock,
                    organisations=organisations, platforms=platforms,
                    serving_lock=lock)


async def open_serving_database(config: Config) -> tuple[Database, ServingLock | None]:
    """The database, with the serving lock taken first (bot/storage/lock.py)."""
    if config.database == ":memory:" or is_postgresql(config.database):
        # PostgreSQL: processes share it by design; one leads (bot/leader.py).
        return await Database.open(config.database), None
    path = config.resolve(config.database)
    lock = ServingLock.acquire(path)
    try:
        return await Database.open(path), lock
    except BaseException:
        lock.release()
        raise


async def open_stores(db: Database, config: Config, clock: Clock) -> Stores:
    """The stores, once the database is ready to serve: scrubbed of rows deleted before
    secure_delete, its audit chain signed by this bot's key (or refused)."""
    await scrub_free_pages_once(db)
    stores = Stores.on(db, keys_of(config))
    await stores.audit.open_chain(clock.now())
    return stores


def keys_of(config: Config) -> Keys:
    keys = Keys.of(config)
    if keys.development:
        log.warning("secret_key is not set (ALERTE_BOT_SECRET_KEY): console only, so the "
                    "public development key is used; audit pseudonyms protect nothing")
    return keys


class BotApp:
    """A running bot: transports receiving, the dispatcher sending, the scheduler ticking,
    and (``monitoring.listen``) the supervision endpoints."""

    def __init__(self, services: Services, transports: Mapping[str, Transport]) -> None:
        self.services = services
        self.transports = dict(transports)
        self.metrics: Metrics = Metrics()
        self.monitor: Monitor | None = None
        if services.config.monitoring.listen:
            # Imported here: without monitoring, neither its HTTP server (aiohttp.web) nor
            # prometheus_client is loaded (2.7 MB of the bot's memory).
            from bot.metrics import PrometheusMetrics
            from bot.monitoring import Monitor

            counted = PrometheusMetrics()
            self.metrics, self.monitor = counted, Monitor(services, self.transports, counted)
        self.core = Core(services, self.transports, self.metrics)
        self.scheduler = AsyncIOScheduler(timezone=services.config.timezone)

    async def start(self) -> None:
        if self.monitor is not None:  # first: a port already taken stops the start early
            await self.monitor.start()
        await self.log_audit_head()
        menus = self.core.command_menus()
        for transport in self.transports.values():
            await transport.start(self.core.handle, self.core.from_staff)
            await transport.publish_commands(menus)
        await self.core.dispatcher.start()
        await self.core.replies.start()  # first, what a previous run left unsent
        # The database holds every deadline; the scheduler only wakes us to look.
        self.scheduler.add_job(self.core.expire_conversations, "interval", minutes=1,
                               id="expire_conversations", coalesce=True, max_instances=1)
        self.scheduler.add_job(self.core.tick, "interval", seconds=TICK_SECONDS, id="tick",
                               coalesce=True, max_instances=1)
        self.scheduler.add_job(self.core.purge, "interval", hours=24, id="purge",
                               coalesce=True, max_instances=1)
        self.scheduler.add_job(self.log_audit_head, "interval", hours=24, id="audit_head",
                               coalesce=True, max_instances=1)
        self.scheduler.start()

    async def log_audit_head(self) -> None:
        """The head of the audit chain, outside the database: deleting the newest events
        leaves a shorter chain that verifies, but no longer reaches the heads logged."""
        count, head = await self.services.stores.audit.head()
        log.info("audit: %d events, head %s", count, head or "-")

    async def stop(self) -> None:
        if self.monitor is not None:  # no probe reads a database being closed
            await self.monitor.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.core.idle()  # a clock job in progress finishes before the database closes
        await self.core.dispatcher.stop()
        await self.core.replies.stop()
        for transport in self.transports.values():
            await transport.stop()
        await self.log_audit_head()
        await self.services.close()
