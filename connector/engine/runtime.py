"""What a process works with: configuration, Redis, the clock, the queue and the adapter instances.

The web app, the worker and the scheduler each build one ``Runtime`` at start; RQ job functions find it with
:func:`current`, which a worker process installs before it takes its first job (tests install their own).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from connector.adapters import adapter_types
from connector.adapters.base import Adapter, new_session
from connector.engine.clock import SystemClock
from connector.config.schema import Config, ConfigError, Tenant, load_config
from connector.store.keys import Keys

log = logging.getLogger(__name__)


class UnknownTarget(LookupError):
    """No such tenant, or no such adapter for it."""


@dataclass
class Runtime:
    config: Config
    redis: Redis
    clock: Any = field(default_factory=SystemClock)
    # Shared by every adapter instance of the process: one connection pool per platform host, and the environment
    # read once (``new_session``), not on every request.
    http: requests.Session = field(default_factory=new_session)
    _adapters: dict[tuple[str, str], Adapter] = field(default_factory=dict, repr=False)
    _config_seen: tuple | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._config_seen = _stat(self.config.path)

    def refresh(self) -> list[str]:
        """Take up a tenant's changed ``mode`` (live or shadow) from the configuration file, at the start of a job.

        One ``stat`` per job; the file is read again only when it changed. Only the mode is taken over: a school
        goes live or back to shadow without a restart, while everything else (adapters, secrets' references, the
        plan) still takes a restart, as before. A file that does not load now keeps the modes as they were, with a
        warning. Returns the tenants whose mode changed.
        """
        seen = _stat(self.config.path)
        if seen is None or seen == self._config_seen:
            return []
        self._config_seen = seen
        try:
            fresh = load_config(self.config.path)
        except ConfigError as exc:
            log.warning("the configuration file changed but does not load (%d problem(s)); tenants' modes are kept",
                        len(exc.problems))
            return []
        changed = [tenant_id for tenant_id, tenant in self.config.tenants.items()
                   if tenant_id in fresh.tenants and fresh.tenants[tenant_id].mode != tenant.mode]
        if changed:
            self.config = replace(self.config, tenants={
                tenant_id: replace(tenant, mode=fresh.tenants[tenant_id].mode) if tenant_id in changed else tenant
                for tenant_id, tenant in self.config.tenants.items()
            })
            for tenant_id in changed:
                log.info("tenant=%s: mode is now %s", tenant_id, self.config.tenants[tenant_id].mode)
        return changed

    @property
    def keys(self) -> Keys:
        return Keys(self.config.key_prefix)

    @property
    def queue(self) -> Queue:
        """One Queue per runtime (the door enqueues on every request); rebuilt if the queue name or Redis changed."""
        queue = self.__dict__.get("_queue")
        if queue is None or queue.name != self.config.queue_name or queue.connection is not self.redis:
            queue = Queue(self.config.queue_name, connection=self.redis, serializer=JSONSerializer)
            self.__dict__["_queue"] = queue
        return queue

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self.config.tenants.get(tenant_id)
        if tenant is None:
            raise UnknownTarget(f"unknown tenant {tenant_id!r}")
        return tenant

    def adapter(self, tenant_id: str, name: str) -> Adapter:
        key = (tenant_id, name)
        adapter = self._adapters.get(key)
        if adapter is None:
            settings = self.tenant(tenant_id).adapters.get(name)
            if settings is None:
                raise UnknownTarget(f"unknown adapter {name!r} for tenant {tenant_id!r}")
            adapter = adapter_types()[settings.type](tenant_id, name, settings.settings, self.http)
            self._adapters[key] = adapter
        return adapter


def _stat(path) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    """The installed runtime, or one built from the environment (``CONNECTOR_CONFIG``, ``REDIS_URL``)."""
    global _current
    if _current is None:
        from connector.store.connection import connect

        _current = Runtime(load_config(os.environ["CONNECTOR_CONFIG"]), connect())
    return _current
