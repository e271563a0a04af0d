"""What the bot counts as it works, for the monitoring endpoint (bot/monitoring.py).

The core and the dispatcher are handed a ``Metrics`` object. The base class counts nothing
(monitoring off, tests, tools); ``PrometheusMetrics`` counts into a registry of its own, so
two bots in one process never share a figure. Labels are platforms, outcomes and states:
never a chat, a person or an alert.
"""

from __future__ import annotations

from bot.enums import ReplyDrop

# Seconds from an alert's approval (or its scheduled time) to its first copy accepted by a
# platform: normally well under a second; minutes mean the outbox was stuck.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    """Counts nothing: every call is a no-op."""

    def delivered(self, platform: str, outcome: str, count: int = 1) -> None:
        """Outbox rows the dispatcher recorded: sent, retry, blocked, failed or moved."""

    def first_copy(self, seconds: float) -> None:
        """An alert's first copy was accepted, ``seconds`` after its broadcast started."""

    def incoming(self, platform: str) -> None:
        """An event arrived from a platform (message, button, membership change)."""

    def handler_failed(self) -> None:
        """Handling an event raised: the person got the internal-error reply."""

    def reply_rate_limited(self, platform: str) -> None:
        """The platform answered a reply with a 429: the reply waits in the outbox."""

    def reply_dropped(self, platform: str, reason: ReplyDrop) -> None:
        """A reply, or its edit of one tracked post, was given up (and logged)."""


class PrometheusMetrics(Metrics):
    def __init__(self) -> None:
        # Imported here: a bot without monitoring does not carry prometheus_client (1 MB).
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "alerte_deliveries", "Outbox rows recorded by the dispatcher, by outcome "
            "(sent, retry, blocked, failed, moved)", ["platform", "outcome"],
            registry=self.registry)
        self.latency = Histogram(
            "alerte_first_copy_latency_seconds", "From an alert's approval (or scheduled "
            "time) to its first copy accepted by a platform", buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.events = Counter("alerte_incoming_events", "Events received, by platform",
                              ["platform"], registry=self.registry)
        self.errors = Counter("alerte_handler_errors",
                              "Events whose handling raised (answered with an internal error)",
                              registry=self.registry)
        self.replies_limited = Counter(
            "alerte_replies_rate_limited", "Replies the platform answered with a 429 (each "
            "waits in the reply outbox and goes later)", ["platform"], registry=self.registry)
        self.replies_dropped = Counter(
            "alerte_replies_dropped", "Replies (or edits of tracked posts) given up, by reason "
            f"({', '.join(reason.value for reason in ReplyDrop)})", ["platform", "reason"],
            registry=self.registry)

    def delivered(self, platform: str, outcome: str, count: int = 1) -> None:
        self.deliveries.labels(platform, outcome).inc(count)

    def first_copy(self, seconds: float) -> None:
        self.latency.observe(max(seconds, 0.0))

    def incoming(self, platform: str) -> None:
        self.events.labels(platform).inc()

    def handler_failed(self) -> None:
        self.errors.inc()

    def reply_rate_limited(self, platform: str) -> None:
        self.replies_limited.labels(platform).inc()

    def reply_dropped(self, platform: str, reason: ReplyDrop) -> None:
        self.replies_dropped.labels(platform, reason.value).inc()
