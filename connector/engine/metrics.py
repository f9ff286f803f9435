"""Prometheus metrics: what each process counts as it works, and what is read from Redis when scraped.

Counted in the process that does the work (prometheus-client's default registry, one per process):
- the door (web process): ``connector_deliveries_total`` by tenant, adapter, event type and HTTP status;
- the worker: ``connector_jobs_total`` / ``connector_job_duration_seconds`` by job function and outcome,
  ``connector_actions_total`` by rule id, action kind and outcome of ``outbox.send`` (done, retry, dead, skipped,
  deferred; would_write in shadow mode), ``connector_platform_request_seconds`` and
  ``connector_platform_errors_total`` per adapter type;
- a poller: ``connector_poll_lag_seconds`` by tenant and adapter (:func:`set_poll_lag`).
Read at scrape time (:class:`StateCollector`, through RQ's API and ``store.outbox``): queue depth, failed jobs,
dead letters per tenant, live workers, and whether Redis answered.

The web app serves ``/metrics``; a worker serves its own with ``connector worker --metrics-port N``. With
``PROMETHEUS_MULTIPROC_DIR`` set (prometheus-client's multiprocess mode), ``/metrics`` sums every process that
shares the folder instead (README, "Running in production").

Label values are ids and codes only: tenant and adapter names from the configuration, rule ids, action kinds,
event types of the contract, HTTP statuses. Never a pupil's id, a guardian's or any free text.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from connector.engine.runtime import Runtime
from connector.store import outbox as stored

NONE = "-"  # a label whose value is not known (a refused delivery's type, a skipped send's rule)

DELIVERIES = Counter(
    "connector_deliveries", "Webhook deliveries answered by the door", ["tenant", "adapter", "type", "status"]
)
JOBS = Counter("connector_jobs", "Jobs run by this worker", ["function", "outcome"])
JOB_SECONDS = Histogram("connector_job_duration_seconds", "How long a job ran", ["function"])
ACTIONS = Counter("connector_actions", "Actions tried by outbox.send", ["rule", "kind", "outcome"])
PLATFORM_SECONDS = Histogram(
    "connector_platform_request_seconds", "How long an adapter's send to its platform took", ["adapter_type"]
)
PLATFORM_ERRORS = Counter(
    "connector_platform_errors", "Sends the platform did not confirm (status, or 'exception')", ["adapter_type", "status"]
)


POLL_LAG = Gauge(
    "connector_poll_lag_seconds", "How far behind the platform a poller's last finished poll is", ["tenant", "adapter"]
)


def set_poll_lag(tenant: str, adapter: str, seconds: float) -> None:
    """For a poller (an adapter that reads the platform on a timer instead of receiving webhooks): how far behind the
    platform its view is when it finishes a poll (the time since that poll began: changes made since then wait for
    the next one), by tenant and adapter name from the configuration."""
    POLL_LAG.labels(tenant, adapter).set(max(seconds, 0.0))


def poll_finished(rt: Runtime, tenant: str, adapter: str, lag_seconds: float) -> None:
    """What a poller calls at the end of each poll: the lag gauge, and the last poll that the admin page shows."""
    from connector.store import deliveries

    set_poll_lag(tenant, adapter, lag_seconds)
    deliveries.saw(rt.redis, rt.keys, tenant, adapter, "poll", rt.clock.now().timestamp())


def count_delivery(tenant: str, adapter: str, event_type: str, status: int) -> None:
    DELIVERIES.labels(tenant, adapter, event_type, str(status)).inc()


@contextmanager
def timed_job(function: str):
    """Count a job and its duration; an exception is counted as ``error`` and goes on to RQ."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        JOB_SECONDS.labels(function).observe(time.perf_counter() - started)
        JOBS.labels(function, outcome).inc()


def count_action(rule: str, kind: str, outcome: str) -> None:
    ACTIONS.labels(rule, kind, outcome).inc()


def observe_platform(adapter_type: str, seconds: float, error_status: str | None) -> None:
    PLATFORM_SECONDS.labels(adapter_type).observe(seconds)
    if error_status is not None:
        PLATFORM_ERRORS.labels(adapter_type, error_status).inc()


class StateCollector:
    """Gauges read when scraped: what is waiting and what went wrong, whichever process put it there."""

    def __init__(self, rt: Runtime):
        self.rt = rt

    def collect(self):
        from rq import Worker

        up = GaugeMetricFamily("connector_redis_up", "1 when Redis answered this scrape")
        try:
            depth = self.rt.queue.count
            failed = self.rt.queue.failed_job_registry.count
            workers = Worker.count(connection=self.rt.redis, queue=self.rt.queue)
            dead = stored.dead_letter_counts(self.rt.redis, self.rt.keys)
        except Exception:  # Redis down: say so, and no stale numbers
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("connector_queue_depth", "Jobs waiting in the queue", value=depth)
        yield GaugeMetricFamily("connector_failed_jobs", "Jobs in RQ's failed-job registry", value=failed)
        yield GaugeMetricFamily("connector_workers", "Workers alive on the queue (RQ's Worker.count)", value=workers)
        letters = GaugeMetricFamily("connector_dead_letters", "Actions the platform refused, per tenant", labels=["tenant"])
        for tenant in self.rt.config.tenants:
            letters.add_metric([tenant], dead.get(tenant, 0))
        yield letters


def exposition(rt: Runtime) -> tuple[bytes, str]:
    """The text ``/metrics`` answers: this process's counters (or every process's, in multiprocess mode) and the
    gauges read now."""
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(rt))
    return generate_latest(counted) + generate_latest(state), CONTENT_TYPE_LATEST
