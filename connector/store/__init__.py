"""The store: every piece of state the connector keeps in Redis, each kind with one owner.

Owns every key (``keys``), the connection (``connection``: ``REDIS_URL`` or the embedded server), the one way Lua
runs (``scripts``), and each kind of state, its layout and how it is read and written:

- ``pupils``: a pupil's hash and notices, and the checkout a job reads them through and commits with;
- ``cases``: a guardian's case, each pupil's open cases, and the locks a job holds on them;
- ``due``: the due set, the deadlines' payloads and the calendar routines scheduled;
- ``outbox``: the outbox, the ledger, the task refs and the dead letters;
- ``journal``: what was written or given up on, per tenant, for the admin page (ids, dates, codes);
- ``deliveries``: a webhook delivery's dedupe marker, and each adapter's last delivery and poll;
- ``stats``: what is counted for an admin;
- ``sign_ins``: failed sign-ins to the admin page's local account, counted to slow guessing;
- ``health``: adapters the platform refuses until an admin acts (shown by ``/readyz``);
- ``polls``: a polled platform's lease, checkpoint, records seen, failing spells and roster cache;
- ``subscriptions``: the platform subscriptions an adapter keeps alive (Graph's), their lifecycle signals and lock.

No module outside the store calls Redis (``tests/test_architecture.py``), but for the runtime that holds the
connection and the engine's two modules that touch RQ's own state (``rq_compat``, ``failed_jobs``).

May import: the contract (and the rules' plain data helpers for the layouts they read). Never the engine, the door
or the adapters: the store knows how state is laid out, not what it means for a school.
"""
