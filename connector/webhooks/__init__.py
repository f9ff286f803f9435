"""The door: ``POST /webhooks/<tenant>/<adapter>`` and nothing else but HTTP.

Owns the order of the checks a delivery goes through (who, how big, the adapter's verification of the raw bytes,
the schema) and the answers the contract gives (202, 400, 401, 404, 413, 415, 422, 503); serves that contract as
OpenAPI 3.1 at ``GET /openapi.json``. What a delivery means is
the adapters' and the contract's; queueing it (``engine.rq_compat``) and counting a type it ignores
(``engine.stats``) are the engine's.

May import: the contract, the adapters' inbound interface and the engine's runtime, queueing and counts. Never the
rules or the store directly.
"""
