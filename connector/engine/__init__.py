"""The engine: what happens to an event after the door queued it, and to a deadline when it falls due.

Owns the routing of events, deadlines and task updates to the capabilities (``routing``), the capabilities around the
pure rules (``absence``: the absence plan; ``cases``: the escalation ladder), committing a job's decisions in one
transaction (``consequences``), sending actions exactly once (``outbox``), the RQ entry points (``jobs``) and what
the connector knows of RQ's insides (``rq_compat``), the due-set sweep (``scheduler``), the poller of platforms
that push nothing (``poller``), who holds a role
(``directory``), what the door counts (``stats``), the clock and what a process works with (``runtime``). State is
read and written through the store; only ``runtime`` (the connection), ``rq_compat`` and ``failed_jobs`` (RQ's own
state) touch Redis themselves.

May import: the contract, the rules, the store, the adapters (to send and look up roles) and the configuration.
Nothing imports the engine but the door, the command line and the app factory.
"""
