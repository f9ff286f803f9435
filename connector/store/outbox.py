"""The outbox, the ledger, the task refs and the dead letters: what the connector owes the platform and what it wrote.

- ``keys.outbox(tenant)``: hash ``external_ref`` -> JSON ``{adapter, attempts, action}`` of an action not yet
  confirmed by the platform, written in the same transaction as the state change that caused it, with a send
  member on the due set a little in the future (``store.due``).
- ``keys.ledger(tenant, week, ref)``: hash ``external_ref`` -> the platform's id: what was written, one key per week
  (and last hex digit), kept :data:`LEDGER` weeks; after that the platform's ``409`` covers a repeat.
- ``keys.refs(tenant, period)``: hash ``external_ref`` -> what a *task* was about (:func:`task_info`), so a
  ``task.updated`` finds its rule; one key per 13-week period, kept about two school years (:data:`REFS`).
- ``keys.shadow(tenant)``: hash ``external_ref`` -> JSON ``{adapter, action, decided_at, held}`` of an action
  decided while the tenant was in shadow mode (or on a deadline set then): *would write*. Nothing in it is ever
  sent: :func:`pending` drops an outbox entry whose ref is here, so going live sends nothing decided before, and an
  action derived again afterwards is not written twice. Kept as long as the task refs (:data:`REFS`'s span after
  its last write). ``held`` marks an entry queued in live mode and held back because the tenant was switched to
  shadow before it was sent.
- ``keys.dead_letters``: hash ``<tenant>|<external_ref>`` -> JSON of an action the platform refused, for an admin:
  the platform's status and its error body (``error_body``, as cut by ``adapters.http``) beside the action.
- ``keys.adapter_backoff``: hash ``<tenant>/<adapter>`` -> ``"<epoch seconds> <external_ref>"``: the platform asked
  to wait (or failed) and no send goes to it before then, except the one action named, the probe that set it (or
  took it when it ran out: :func:`take_probe`). Cleared by the next confirmed send; one field per adapter in back-off.
- what ended (written or dead) also goes to the tenant's journal (``store.journal``) in the same transaction.

Sending itself (which adapter, what the answer means, the back-off) is the engine's (``engine.outbox``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from connector.contract.actions import Action
from connector.store import due, journal
from connector.store.scripts import Script
from connector.store.keys import Keys

WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Periods:
    """A hash kept as one key per ``seconds``-long period (numbered from the epoch): read in the current period and
    the ``kept`` before it, newest first; each key expires ``ttl`` after its last write, when no read reaches it."""

    seconds: int
    kept: int

    def current(self, at: float) -> int:
        """The period the epoch time ``at`` falls in."""
        return int(at // self.seconds)

    def lookback(self, now: float) -> list[int]:
        current = self.current(now)
        return [current - back for back in range(self.kept + 1)]

    @property
    def ttl(self) -> int:
        return (self.kept + 1) * self.seconds


LEDGER = Periods(WEEK_SECONDS, kept=5)  # a written action: this week and 5 before
REFS = Periods(13 * WEEK_SECONDS, kept=9)  # a task's ref: this 13-week period and 9 before, 2¼ to 2½ years


def task_info(action: Action) -> str:
    """What a later ``task.updated`` needs to know about the task it refers to: ids and the rule, never text.

    ``rule|case|pupil`` (the pupil last: a platform's id may hold ``|``), or compact JSON when the action carries
    more (an escalation level's line): small enough for Redis's compact hash encoding, once per task ever made.
    """
    if action.extra:
        info = {"rule_id": action.rule_id, "student_id": action.student_id, "case_id": action.case_id, **action.extra}
        return json.dumps(info, separators=(",", ":"), ensure_ascii=False)
    return f"{action.rule_id}|{action.case_id or ''}|{action.student_id or ''}"


def read_task_info(raw: bytes) -> dict:
    text = raw.decode()
    if text.startswith("{"):
        info = json.loads(text)
    else:
        rule_id, case, student = text.split("|", 2)
        info = {"rule_id": rule_id, "case_id": case or None, "student_id": student or None}
    return {**info, "kind": "task"}


# --- writing actions (inside the caller's transaction) -------------------------------------------------------------


def queue(pipe, keys: Keys, tenant: str, adapter: str, actions: Iterable[Action], now: float, first_try: float) -> None:
    """``HSETNX``: the first version of an action wins; a send member ``first_try`` seconds ahead, for the case the
    job dies before it sends."""
    refs = keys.refs(tenant, REFS.current(now))
    for action in actions:
        entry = json.dumps({"adapter": adapter, "attempts": 0, "action": action.to_dict()})
        pipe.hsetnx(keys.outbox(tenant), action.external_ref, entry)
        if action.kind == "task":
            pipe.hsetnx(refs, action.external_ref, task_info(action))
            pipe.expire(refs, REFS.ttl)
        due.set_send(pipe, keys, tenant, action.external_ref, now + first_try, nx=True)


def queue_now(redis, keys: Keys, tenant: str, adapter: str, actions: Iterable[Action], now: float,
              first_try: float) -> None:
    """:func:`queue` in a transaction of its own, for an action no pupil's state caused (an admin's test task)."""
    with redis.pipeline() as pipe:
        queue(pipe, keys, tenant, adapter, actions, now, first_try)
        pipe.execute()


def record_shadow(pipe, keys: Keys, tenant: str, adapter: str, actions: Iterable[Action], now: float) -> None:
    """Shadow mode's :func:`queue`: the action as *would write* (``HSETNX``: the first decision wins), its task ref
    (so a ``task.updated`` in a replayed period finds its rule), and no send member."""
    refs = keys.refs(tenant, REFS.current(now))
    shadow = keys.shadow(tenant)
    wrote = False
    for action in actions:
        entry = json.dumps({"adapter": adapter, "action": action.to_dict(), "decided_at": now})
        pipe.hsetnx(shadow, action.external_ref, entry)
        wrote = True
        if action.kind == "task":
            pipe.hsetnx(refs, action.external_ref, task_info(action))
            pipe.expire(refs, REFS.ttl)
    if wrote:
        pipe.expire(shadow, REFS.ttl)


def hold(redis, keys: Keys, tenant: str, ref: str, entry: dict, now: float) -> None:
    """An outbox entry the tenant's switch to shadow caught before it was sent: into the shadow record instead."""
    with redis.pipeline() as pipe:
        record = {"adapter": entry["adapter"], "action": entry["action"], "decided_at": now, "held": True}
        pipe.hsetnx(keys.shadow(tenant), ref, json.dumps(record))
        pipe.expire(keys.shadow(tenant), REFS.ttl)
        pipe.hdel(keys.outbox(tenant), ref)
        due.drop_send(pipe, keys, tenant, ref)
        pipe.execute()


def shadow_actions(redis, keys: Keys, tenant: str) -> list[dict]:
    """Everything recorded as *would write* for ``tenant``, in the order decided (then by ref)."""
    found = [json.loads(raw) for raw in redis.hvals(keys.shadow(tenant))]
    found.sort(key=lambda entry: (entry["decided_at"], entry["action"]["external_ref"]))
    return found


# --- reading -------------------------------------------------------------------------------------------------------


def ledger_keys(keys: Keys, tenant: str, ref: str, now: float) -> list[str]:
    """Where ``ref`` may have been recorded: this week's ledger and the ones kept before it, newest first."""
    return [keys.ledger(tenant, week, ref) for week in LEDGER.lookback(now)]


def backoff_field(tenant: str, adapter: str) -> str:
    return f"{tenant}/{adapter}"


@dataclass(frozen=True)
class Backoff:
    """An adapter's back-off: no send before ``until`` but the probe ``ref``'s."""

    until: float
    ref: str

    @classmethod
    def parse(cls, raw: bytes) -> "Backoff":
        until, _, ref = raw.decode().partition(" ")
        return cls(float(until), ref)


def pending(redis, keys: Keys, tenant: str, ref: str, now: float) -> tuple[dict | None, dict[str, Backoff]]:
    """The outbox entry to send, or ``None`` when there is none, the ledger says it was written, or it was decided
    in shadow mode (then the entry and its send member are cleared); and the adapters in back-off (a small hash,
    read in the same trip)."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.outbox(tenant), ref)
        pipe.hexists(keys.shadow(tenant), ref)
        pipe.hgetall(keys.adapter_backoff)
        for key in ledger_keys(keys, tenant, ref, now):
            pipe.hexists(key, ref)
        raw, shadowed, backoffs, *done = pipe.execute()
    if raw is None or shadowed or any(done):
        with redis.pipeline() as pipe:
            pipe.hdel(keys.outbox(tenant), ref)
            due.drop_send(pipe, keys, tenant, ref)
            pipe.execute()
        return None, {}
    return json.loads(raw), {field.decode(): Backoff.parse(value) for field, value in backoffs.items()}


_TAKE_PROBE = Script("""
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local stop, holder = string.match(raw, '^(%S+) (.*)$')
  if stop and tonumber(stop) > tonumber(ARGV[2]) and holder ~= ARGV[4] then
    return raw
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
return false
""")


def take_probe(redis, keys: Keys, tenant: str, adapter: str, ref: str, now: float, window: float) -> Backoff | None:
    """Atomically: if the adapter's back-off is over (or ``ref`` holds it), ``ref`` becomes its probe for ``window``
    seconds and ``None`` is returned; else the back-off that holds, for the caller to wait out. Two workers whose
    entries come due together cannot both probe a platform that is down."""
    raw = _TAKE_PROBE(redis, [keys.adapter_backoff], [backoff_field(tenant, adapter), repr(now), repr(now + window),
                                                      ref])
    return Backoff.parse(raw) if raw else None


def written(redis, keys: Keys, tenant: str, ref: str, now: float) -> bytes | None:
    """The platform's id for an action written within the ledger's weeks (``b""`` when it gave none), else ``None``."""
    with redis.pipeline(transaction=False) as pipe:
        for key in ledger_keys(keys, tenant, ref, now):
            pipe.hget(key, ref)
        return next((remote_id for remote_id in pipe.execute() if remote_id is not None), None)


def task_infos(redis, keys: Keys, tenant: str, refs: list[str], now: float) -> list[dict | None]:
    """:func:`read_task_info` of each ref, ``None`` for a ref the connector did not make a task for (or so long
    ago that it is forgotten)."""
    periods = [keys.refs(tenant, number) for number in REFS.lookback(now)]
    with redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            for key in periods:
                pipe.hget(key, ref)
        found = pipe.execute()
    infos = []
    for n in range(len(refs)):
        raw = next((value for value in found[n * len(periods):(n + 1) * len(periods)] if value is not None), None)
        infos.append(read_task_info(raw) if raw is not None else None)
    return infos


# --- what a send ended with ----------------------------------------------------------------------------------------


def record_written(pipe, keys: Keys, tenant: str, ref: str, remote_id: str, now: float) -> None:
    """Into this week's ledger, which Redis drops once no lookup reaches back to it."""
    key = keys.ledger(tenant, LEDGER.current(now), ref)
    pipe.hset(key, ref, remote_id)
    pipe.expire(key, LEDGER.ttl)


def done(redis, keys: Keys, tenant: str, ref: str, remote_id: str, now: float, entry: dict | None = None,
         adapter: str | None = None) -> None:
    """Written: into the ledger and, with ``entry`` (``store.journal``'s fields), the journal, out of the outbox, in
    one transaction; the platform answers again, so ``adapter``'s back-off ends."""
    with redis.pipeline() as pipe:
        record_written(pipe, keys, tenant, ref, remote_id, now)
        if entry is not None:
            journal.record(pipe, keys, tenant, entry, now)
        pipe.hdel(keys.outbox(tenant), ref)
        due.drop_send(pipe, keys, tenant, ref)
        if adapter is not None:
            pipe.hdel(keys.adapter_backoff, backoff_field(tenant, adapter))
        pipe.execute()


def again(redis, keys: Keys, tenant: str, ref: str, entry: dict, at: float, back_off_until: float | None = None) -> None:
    """Keep the entry (with its new count of attempts) and try again at ``at``; with ``back_off_until``, its adapter
    sends nothing else before then."""
    with redis.pipeline() as pipe:
        pipe.hset(keys.outbox(tenant), ref, json.dumps(entry))
        due.set_send(pipe, keys, tenant, ref, at)
        if back_off_until is not None:
            pipe.hset(keys.adapter_backoff, backoff_field(tenant, entry["adapter"]), f"{back_off_until!r} {ref}")
        pipe.execute()


def hold_adapter(redis, keys: Keys, tenant: str, adapter: str, ref: str, until: float) -> None:
    """``adapter`` sends nothing before ``until`` (the last send, by ``ref``, failed)."""
    redis.hset(keys.adapter_backoff, backoff_field(tenant, adapter), f"{until!r} {ref}")


def defer(redis, keys: Keys, tenant: str, ref: str, at: float) -> None:
    """Not tried (its adapter is in back-off): the same entry, attempts unchanged, due again at ``at``."""
    due.set_send(redis, keys, tenant, ref, at)


def bury(redis, keys: Keys, tenant: str, ref: str, letter: dict, entry: dict | None = None) -> None:
    """Out of the outbox and into the dead letters, for an admin (and, with ``entry``, into the journal)."""
    with redis.pipeline() as pipe:
        pipe.hset(keys.dead_letters, f"{tenant}|{ref}", json.dumps(letter))
        if entry is not None:
            journal.record(pipe, keys, tenant, entry, letter.get("failed_at") or 0)
        pipe.hdel(keys.outbox(tenant), ref)
        due.drop_send(pipe, keys, tenant, ref)
        pipe.execute()


# --- dead letters --------------------------------------------------------------------------------------------------


def dead_letters(redis, keys: Keys) -> list[dict]:
    letters = []
    for key, raw in sorted(redis.hgetall(keys.dead_letters).items()):
        letter = json.loads(raw)
        letter["id"] = key.decode()
        letters.append(letter)
    return letters


def resurrect(redis, keys: Keys, letter_id: str, now: float) -> bool:
    """Put a dead letter back into the outbox with a fresh count of attempts, due now."""
    raw = redis.hget(keys.dead_letters, letter_id)
    if raw is None:
        return False
    letter = json.loads(raw)
    tenant, ref = letter["tenant"], letter["action"]["external_ref"]
    entry = json.dumps({"adapter": letter["adapter"], "attempts": 0, "action": letter["action"]})
    with redis.pipeline() as pipe:
        pipe.hset(keys.outbox(tenant), ref, entry)
        due.set_send(pipe, keys, tenant, ref, now)
        pipe.hdel(keys.dead_letters, letter_id)
        pipe.execute()
    return True


def dead_letter_counts(redis, keys: Keys) -> dict[str, int]:
    """How many dead letters each tenant has (for the metrics' scrape): the field names only, never the letters."""
    counts: dict[str, int] = {}
    for key in redis.hkeys(keys.dead_letters):
        tenant = key.decode().split("|", 1)[0]
        counts[tenant] = counts.get(tenant, 0) + 1
    return counts
