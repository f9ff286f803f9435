"""The contract: what crosses the connector's edges, with no I/O of its own.

Owns the internal events and their schemas (``events``: the reference contract's event types, which every adapter
translates into), the signature check on raw bytes (``signatures``: Standard Webhooks), the actions the rules ask
the platform to show people (``actions``: tasks, alerts, notes and their ``external_ref``) and the shared words
(``terms``: roles, message categories, the school's time zone), and the door's OpenAPI 3.1 document generated from
the event schemas (``openapi``, with ``apispec``).

May import: nothing of the connector's but itself. The door, the adapters, the rules, the engine and the
configuration all import it.
"""
