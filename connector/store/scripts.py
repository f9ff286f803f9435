"""The one way the connector runs a Lua script in Redis.

A :class:`Script` is registered once (its SHA is computed at import) and run with ``EVALSHA``; a server that has not
seen it (a restart, another server behind a failover) answers ``NOSCRIPT``, and the script is then loaded once and
run again. redis-py's own ``register_script`` does the same outside a pipeline, but inside one it first asks
``SCRIPT EXISTS`` on every execute: a round trip per commit.

Inside a ``MULTI`` a missing script would only be reported at ``EXEC``, after the transaction's other commands had
run, so :meth:`Script.queue` sends the script's text with ``EVAL`` there: a few hundred bytes more, never half a
transaction.
"""
from __future__ import annotations

import hashlib

from redis.exceptions import NoScriptError


class Script:
    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client, keys: list | tuple = (), args: list | tuple = ()):
        """Run now on ``client`` (a Redis client, or a pipeline in immediate mode after ``WATCH``)."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe, keys: list | tuple = (), args: list | tuple = ()) -> None:
        """Queue on a transaction's pipeline (see the module's docstring for why this is ``EVAL``)."""
        pipe.eval(self.source, len(keys), *keys, *args)
