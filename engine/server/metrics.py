"""``GET /metrics``: Prometheus text, from a registry of this app's own (prometheus_client).

- ``treeflow_triggers_accepted_total{action}``: triggers this server accepted through the
  trigger API (``Root`` for createStart; ``Complete`` / ``Update`` for createDeferred), the
  Kinetic Task 4 v1 routes (run-tree, complete- and update-deferred-task) and instance creation
  (``Root``: each instance starts a run). Simulated calls are not counted.
- ``treeflow_triggers_processed_total{action}``: triggers this process's engine workers closed,
  Closed or Failed; ``treeflow_triggers_failed_total{action}`` counts those closed as Failed.
- ``treeflow_trigger_latency_seconds``: histogram of the time from a trigger's acceptance to
  the commit that closed it, observed by the engine's close observer (one call per commit).
- ``treeflow_triggers_open``: the backlog, triggers New or Work In Progress in the database (all
  engine processes), counted at scrape time from the partial index on open triggers.
- ``treeflow_retry_attempts_total``: Retry triggers this process's engine processed: each is a
  later attempt of a handler that failed, made by its node's retry policy (``engine.run.retries``).
- ``treeflow_runs_cancelled_total``: Cancel triggers this process's engine processed (a run and
  each routine run under it count one each).
- ``treeflow_run_control_total{request}``: ``cancel``, ``again`` and ``manual`` requests this
  server accepted (``engine.server.run_control``).
- ``treeflow_auth_failures_total{reason}``: refused sign-ins, tokens and calls, by reason
  (:mod:`engine.server.security` lists them).

Counters are per server process, as Prometheus expects (it sums the instances it scrapes); the
backlog is the database's. ``/metrics`` needs a bearer token (any user) unless the server runs
with ``public_metrics``, for a scraper that cannot sign in; it shows counts, never names, ids
or data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine.engine import Engine
from engine.records import ClosedTrigger
from engine.statuses import TriggerAction, TriggerStatus

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
OPENAPI_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


class _Backlog(Collector):
    """The open-trigger gauge, read from the database when Prometheus scrapes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = self._engine.count_open_triggers()
        yield GaugeMetricFamily(
            "treeflow_triggers_open",
            "Triggers New or Work In Progress in the database (the queue's backlog)",
            value=count,
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no scrape at registration


class Metrics:
    """This app's metrics; :meth:`observe` is the engine runner's close observer."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "treeflow_triggers_accepted",
            "Triggers accepted through this server's APIs",
            ["action"],
            registry=self.registry,
        )
        self.processed = Counter(
            "treeflow_triggers_processed",
            "Triggers this process's engine closed (Closed or Failed)",
            ["action"],
            registry=self.registry,
        )
        self.failed = Counter(
            "treeflow_triggers_failed",
            "Triggers this process's engine closed as Failed",
            ["action"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "treeflow_trigger_latency_seconds",
            "Seconds from a trigger's acceptance to the commit that closed it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retry_attempts = Counter(
            "treeflow_retry_attempts",
            "Later attempts of failed handlers (Retry triggers) this process's engine processed",
            registry=self.registry,
        )
        self.runs_cancelled = Counter(
            "treeflow_runs_cancelled",
            "Runs this process's engine cancelled (Cancel triggers processed)",
            registry=self.registry,
        )
        self.run_control = Counter(
            "treeflow_run_control",
            "Cancel, run-again and manual-trigger requests this server accepted",
            ["request"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "treeflow_auth_failures",
            "Sign-ins, bearer tokens and calls refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_Backlog(engine))

    def observe(self, closed: Sequence[ClosedTrigger]) -> None:
        for trigger in closed:
            self.processed.labels(trigger.action).inc()
            if trigger.status is TriggerStatus.FAILED:
                self.failed.labels(trigger.action).inc()
            elif trigger.action == TriggerAction.RETRY:
                self.retry_attempts.inc()
            elif trigger.action == TriggerAction.CANCEL:
                self.runs_cancelled.inc()
            self.latency.observe(trigger.latency)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics(request: Request) -> Response:
    """Prometheus metrics of this server process and the backlog of the queue."""
    app_metrics: Metrics = request.app.state.metrics
    body = await run_in_threadpool(app_metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


__all__ = ["LATENCY_BUCKETS", "OPENAPI_RESPONSES", "Metrics", "metrics"]
