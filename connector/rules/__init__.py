"""The school's rules as pure functions: plain data in (events, a compact history, plan settings, a clock reading),
effects out. No Flask, no Redis, no HTTP in this package, so every rule can be read in one screen and tested alone.

Owns one module per rule (``notice_missing``, ``single_lessons``, ``pattern``, ``persistent``, ``external_meeting``,
``school_refusal``, ``prevention``, ``absence_limit``, ``escalation``, ``environment``), the message classifier
(``classify``), the school-day calendar (``calendar``), the compact history's format (``history``), the default
plan (``default_plan.yaml``, ``plan``) and the texts people read (``catalogue/``, ``texts``).

May import: the contract (actions, terms) and itself. Never the store, the engine, the door, the adapters or the
configuration loader (``tests/test_architecture.py``).
"""
