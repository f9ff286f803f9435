"""What a process works with: configuration, Redis, the clock, the queue and the adapter instances.

The web app, the worker and the scheduler each build one ``Runtime`` at start; RQ job functions find it with
:func:`current`, which a worker process installs before it takes its first job (tests install their own).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import requests
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from connector.adapters import adapter_types
from connector.adapters.base import Adapter
from connector.engine.clock import SystemClock
from connector.config.schema import Config, Tenant
from connector.store.keys import Keys


class UnknownTarget(LookupError):
    """No such tenant, or no such adapter for it."""


@dataclass
class Runtime:
    config: Config
    redis: Redis
    clock: Any = field(default_factory=SystemClock)
    http: requests.Session = field(default_factory=requests.Session)
    _adapters: dict[tuple[str, str], Adapter] = field(default_factory=dict, repr=False)

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


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    """The installed runtime, or one built from the environment (``CONNECTOR_CONFIG``, ``REDIS_URL``)."""
    global _current
    if _current is None:
        from connector.config.schema import load_config
        from connector.store.connection import connect

        _current = Runtime(load_config(os.environ["CONNECTOR_CONFIG"]), connect())
    return _current
