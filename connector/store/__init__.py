"""The store: every piece of state the connector keeps in Redis, each kind with one owner.

Owns every key (``keys``) and the connection (``connection``: ``REDIS_URL`` or the embedded server).

May import: the contract (and the rules' plain data helpers for the layouts they read). Never the engine, the door
or the adapters: the store knows how state is laid out, not what it means for a school.
"""
