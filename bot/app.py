"""Wiring: configuration → services → core → transports, and the clock's jobs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import Clock
from bot.config import Config
from bot.context import Services, Stores
from bot.core import Core
from bot.geo.communes import CommuneLayer
from bot.i18n import Catalog
from bot.metrics import Metrics, PrometheusMetrics
from bot.monitoring import Monitor
from bot.reference import load_reference
from bot.roles import RoleBook
from bot.storage.database import Database
from bot.transports.base import Transport

log = logging.getLogger(__name__)
TICK_SECONDS = 15  # reminders and expiries happen at most this late


async def build_services(config: Config, clock: Clock | None = None,
                         geo: CommuneLayer | None = None,
                         platforms: frozenset[str] = frozenset()) -> Services:
    """Load everything the core needs; raises ConfigError, GeoDataError or DatabaseError."""
    reference = load_reference(config.resolve(config.communities),
                               config.resolve(config.categories))
    layer = geo or CommuneLayer.load([config.resolve(p) for p in config.geo.communes])
    database_path: str | Path = config.database
    if config.database != ":memory:":
        database_path = config.resolve(config.database)
    db = await Database.open(database_path)
    stores = Stores.on(db)
    roles = RoleBook(config.roles)
    roles.load_granted(await stores.roles.all())
    return Services(config=config, db=db, stores=stores, geo=layer, reference=reference,
                    catalog=Catalog.load(), roles=roles, clock=clock or Clock(),
                    platforms=platforms)


class BotApp:
    """A running bot: transports receiving, the dispatcher sending, the scheduler ticking,
    and (``monitoring.listen``) the supervision endpoints."""

    def __init__(self, services: Services, transports: Mapping[str, Transport]) -> None:
        self.services = services
        self.transports = dict(transports)
        self.metrics: Metrics = Metrics()
        self.monitor: Monitor | None = None
        if services.config.monitoring.listen:
            counted = PrometheusMetrics()
            self.metrics, self.monitor = counted, Monitor(services, self.transports, counted)
        self.core = Core(services, self.transports, self.metrics)
        self.scheduler = AsyncIOScheduler(timezone=services.config.timezone)

    async def start(self) -> None:
        if self.monitor is not None:  # first: a port already taken stops the start early
            await self.monitor.start()
        menus = self.core.command_menus()
        for transport in self.transports.values():
            await transport.start(self.core.handle)
            await transport.publish_commands(menus)
        await self.core.dispatcher.start()
        # The database holds every deadline; the scheduler only wakes us to look.
        self.scheduler.add_job(self.core.expire_conversations, "interval", minutes=1,
                               id="expire_conversations", coalesce=True, max_instances=1)
        self.scheduler.add_job(self.core.tick, "interval", seconds=TICK_SECONDS, id="tick",
                               coalesce=True, max_instances=1)
        self.scheduler.add_job(self.core.purge, "interval", hours=24, id="purge",
                               coalesce=True, max_instances=1)
        self.scheduler.start()

    async def stop(self) -> None:
        if self.monitor is not None:  # no probe reads a database being closed
            await self.monitor.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.core.idle()  # a clock job in progress finishes before the database closes
        await self.core.dispatcher.stop()
        for transport in self.transports.values():
            await transport.stop()
        await self.services.db.close()
