"""Platform adapters: one subpackage per platform.

Each subpackage exposes ``ADAPTER``, a subclass of :class:`connector.adapters.base.Adapter`. Adding a platform is
adding a folder; nothing outside it changes, because the types are discovered here.

Owns each platform's translation both ways (its events into the contract's, the contract's actions into its API),
its settings, fixtures and admin README; ``base`` (the interface) and ``http`` (how a platform's answer is read).

May import: the contract and the configuration's secret references. Never the rules, the engine, the store or the
door (``tests/test_architecture.py``).
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def adapter_types() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in pkgutil.iter_modules(__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{__name__}.{module.name}")
        adapter = getattr(package, "ADAPTER", None)
        if adapter is not None:
            found[adapter.type_name] = adapter
    return found
