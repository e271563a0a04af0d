"""Supervision endpoints on ``monitoring.listen``: GET /healthz and GET /metrics.

/healthz answers 200 only when the bot can do its job now: the database takes a write,
every transport is connected, and no outbox row has been due for longer than
``monitoring.max_outbox_age_seconds``; 503 otherwise. The JSON body names each check.
Every check has a deadline, so a locked database or a hung disk makes the probe fail,
never hang.

/metrics is Prometheus' text format, from the app's own registry (bot/metrics.py) and
figures read from the database at scrape time (outbox backlog, alerts by status).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from bot.config import ConfigError
from bot.context import Services
from bot.http_serving import listen
from bot.metrics import PrometheusMetrics
from bot.storage.alerts import AlertStore
from bot.storage.database import ENGINE_ERRORS, PROBE_SECONDS, Database, DatabaseError
from bot.storage.deliveries import DeliveryStore
from bot.transports.base import Transport

log = logging.getLogger(__name__)
READ_ERRORS: tuple[type[Exception], ...] = (TimeoutError, *ENGINE_ERRORS)
READ_SECONDS = 2.0  # the outbox and alert figures: beyond this, the check fails
# Every state an alert can be in, so each series exists (at 0) before its first alert.
ALERT_STATES = ("pending", "approved", "rejected", "broadcasting", "done", "expired",
                "withdrawn")
Check = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Backlog:
    rows: int  # due now and not sent
    oldest_seconds: float  # how long the oldest of them has been due (0 when none)


@dataclass(frozen=True, slots=True)
class Figures:
    alerts: dict[str, int]  # state → alerts
    backlogs: dict[str, Backlog]  # platform → its due rows


class DatabaseFigures:
    """A collector of what the monitor last read from the database (prometheus_client
    collects synchronously; the monitor reads asynchronously just before each scrape)."""

    def __init__(self) -> None:
        self.figures: Figures | None = None  # None: unreadable, shown as nothing

    def collect(self) -> Iterable[Metric]:
        figures = self.figures
        if figures is None:
            return []
        states = GaugeMetricFamily("alerte_alerts", "Alerts and follow-ups by state",
                                   labels=["state"])
        for state in sorted({*ALERT_STATES, *figures.alerts}):
            states.add_metric([state], figures.alerts.get(state, 0))
        due = GaugeMetricFamily("alerte_outbox_due_rows", "Outbox rows due now and not sent",
                                labels=["platform"])
        waited = GaugeMetricFamily("alerte_outbox_oldest_due_seconds", "How long the oldest "
                                   "due outbox row has waited (0 when none)", labels=["platform"])
        for platform, backlog in sorted(figures.backlogs.items()):
            due.add_metric([platform], backlog.rows)
            waited.add_metric([platform], backlog.oldest_seconds)
        return [states, due, waited]


class Monitor:
    def __init__(self, services: Services, transports: Mapping[str, Transport],
                 metrics: PrometheusMetrics) -> None:
        self.services = services
        self.transports = transports
        self.metrics = metrics
        self.figures = DatabaseFigures()
        metrics.registry.register(self.figures)
        self.port = 0  # the port bound, once started (monitoring.listen may ask for any)
        self._runner: web.AppRunner | None = None
        # Reads go through a connection of their own: a probe during a big broadcast
        # (~0.1 s with 200,000 rows pending) never holds up the dispatcher's statements.
        self._reader: Database | None = None

    async def start(self) -> None:
        host, port = self.services.config.monitoring.address()
        self._reader = await self.services.db.reader()
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        try:
            runner = await listen(app, host, port)
        except OSError as error:
            await self._close_reader()
            raise ConfigError(f"monitoring.listen: cannot listen on {host}:{port} "
                              f"({error.strerror or error})") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("monitoring: /healthz and /metrics on %s port %d", host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._close_reader()

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader is not self.services.db:
            await reader.close()

    async def read(self, with_alerts: bool = True) -> Figures:
        """The outbox backlog per platform (and the alerts by state), within READ_SECONDS;
        raises TimeoutError or an engine error (ENGINE_ERRORS)."""
        return await asyncio.wait_for(self._read(with_alerts), READ_SECONDS)

    async def _read(self, with_alerts: bool) -> Figures:
        assert self._reader is not None, "monitor not started"
        deliveries, now = DeliveryStore(self._reader), self.services.clock.now()
        backlogs: dict[str, Backlog] = {}
        for platform in sorted(self.transports):
            rows, oldest = await deliveries.due(platform, now)
            waited = 0.0 if oldest is None else (now - oldest).total_seconds()
            backlogs[platform] = Backlog(rows, max(waited, 0.0))
        alerts = await AlertStore(self._reader).count_by_status() if with_alerts else {}
        return Figures(alerts, backlogs)

    # -- /healthz ------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        database, outbox = await asyncio.gather(self._database(), self._outbox())
        checks: dict[str, Check] = {"database": database}
        for name in sorted(self.transports):
            checks[f"transport:{name}"] = {"ok": self.transports[name].connected}
        checks["outbox"] = outbox
        ok = all(check["ok"] for check in checks.values())
        return {"status": "ok" if ok else "fail", "checks": checks}

    async def _database(self) -> Check:
        try:
            await self.services.db.check_writable(PROBE_SECONDS)
        except DatabaseError as error:
            return {"ok": False, "error": str(error)}
        return {"ok": True}

    async def _outbox(self) -> Check:
        try:
            found = (await self.read(with_alerts=False)).backlogs.values()
        except READ_ERRORS as error:
            return {"ok": False, "error": f"cannot read the outbox ({type(error).__name__})"}
        oldest = max((backlog.oldest_seconds for backlog in found), default=0.0)
        limit = self.services.config.monitoring.max_outbox_age_seconds
        return {"ok": oldest < limit, "oldest_due_seconds": round(oldest, 3),
                "backlog": sum(backlog.rows for backlog in found), "max_age_seconds": limit}

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self.health()
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    # -- /metrics ------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            self.figures.figures = await self.read()
        except READ_ERRORS as error:  # the counters are still worth having
            log.warning("monitoring: database figures unavailable (%s)", type(error).__name__)
            self.figures.figures = None
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
