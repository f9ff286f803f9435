"""Writing actions to the platform exactly once: the transactional outbox, the ledger and the dead letters.

An action is first written to the outbox in the same Redis transaction as the state change that caused it, with a
retry entry in the due set a little in the future. The job then tries to send it at once; only a confirmed send
(or the platform's ``409``: it already has that ``external_ref``) moves it into the ledger. A worker that dies
mid-way leaves the outbox entry, and the scheduler sends it later; an action already in the ledger is never sent
again.

The ledger remembers a written action for 5 weeks (``LEDGER``), far longer than anything here re-derives the same
action (a retried job, a redelivered webhook, a deadline fired twice: minutes to the 7 days a failed job is kept).
After that the platform's own answer covers it: the contract has it reply ``409`` to an ``external_ref`` it holds,
which counts as written. A task's ref (what a later ``task.updated`` is about) is kept at least as long as the
pupil's history, two school years; an update for an older task is logged and ignored. Both live in keys of one
period each, which Redis expires once no lookup reaches back to them: else they would grow by every action ever
written.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from typing import Iterable

from redis.client import Pipeline

from connector.contract.actions import Action
from connector.adapters.base import SendResult
from connector.engine.runtime import Runtime

log = logging.getLogger(__name__)

FIRST_TRY_GRACE_SECONDS = 60
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
MAX_ATTEMPTS = 12
WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Periods:
    """A hash kept as one key per ``seconds``-long period (numbered from the epoch): read in the current period and
    the ``kept`` before it, newest first; each key expires ``ttl`` after its last write, when no read reaches it."""

    seconds: int
    kept: int

    def current(self, rt: Runtime, at: float | None = None) -> int:
        """The period now, or at the epoch time ``at``, falls in."""
        return int((rt.clock.now().timestamp() if at is None else at) // self.seconds)

    def lookback(self, rt: Runtime) -> list[int]:
        now = self.current(rt)
        return [now - back for back in range(self.kept + 1)]

    @property
    def ttl(self) -> int:
        return (self.kept + 1) * self.seconds


LEDGER = Periods(WEEK_SECONDS, kept=5)  # a written action: this week and 5 before
REFS = Periods(13 * WEEK_SECONDS, kept=9)  # a task's ref: this 13-week period and 9 before, 2¼ to 2½ years


def due_member(tenant: str, ref: str) -> str:
    return f"{tenant}|send|{ref}"


def backoff_seconds(attempt: int) -> float:
    """Exponential, capped, with jitter so a platform coming back is not hit by every retry at once."""
    delay = min(BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0), BACKOFF_CAP_SECONDS)
    return delay * random.uniform(0.9, 1.1)


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


def refs_keys(rt: Runtime, tenant: str) -> list[str]:
    return [rt.keys.refs(tenant, number) for number in REFS.lookback(rt)]


def task_infos(rt: Runtime, tenant: str, refs: list[str]) -> list[dict | None]:
    """:func:`read_task_info` of each ref, ``None`` for a ref the connector did not make a task for (or so long
    ago that it is forgotten)."""
    keys = refs_keys(rt, tenant)
    with rt.redis.pipeline(transaction=False) as pipe:
        for ref in refs:
            for key in keys:
                pipe.hget(key, ref)
        found = pipe.execute()
    infos = []
    for n in range(len(refs)):
        raw = next((value for value in found[n * len(keys):(n + 1) * len(keys)] if value is not None), None)
        infos.append(read_task_info(raw) if raw is not None else None)
    return infos


def add(pipe: Pipeline, rt: Runtime, tenant: str, adapter: str, actions: Iterable[Action], now: float) -> None:
    """Queue actions inside the caller's transaction (``HSETNX``: the first version of an action wins)."""
    keys = rt.keys
    refs = keys.refs(tenant, REFS.current(rt, now))
    for action in actions:
        entry = json.dumps({"adapter": adapter, "attempts": 0, "action": action.to_dict()})
        pipe.hsetnx(keys.outbox(tenant), action.external_ref, entry)
        if action.kind == "task":
            pipe.hsetnx(refs, action.external_ref, task_info(action))
            pipe.expire(refs, REFS.ttl)
        pipe.zadd(keys.due, {due_member(tenant, action.external_ref): now + FIRST_TRY_GRACE_SECONDS}, nx=True)


def ledger_keys(rt: Runtime, tenant: str, ref: str) -> list[str]:
    """Where ``ref`` may have been recorded: this week's ledger and the ones kept before it, newest first."""
    return [rt.keys.ledger(tenant, week, ref) for week in LEDGER.lookback(rt)]


def record_written(pipe: Pipeline, rt: Runtime, tenant: str, ref: str, remote_id: str) -> None:
    """Into this week's ledger, which Redis drops once no lookup reaches back to it."""
    key = rt.keys.ledger(tenant, LEDGER.current(rt), ref)
    pipe.hset(key, ref, remote_id)
    pipe.expire(key, LEDGER.ttl)


def send(rt: Runtime, tenant: str, ref: str) -> str:
    """Try one outbox entry once; returns what happened (``done``, ``retry``, ``dead`` or ``skipped``)."""
    keys = rt.keys
    member = due_member(tenant, ref)
    with rt.redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.outbox(tenant), ref)
        for key in ledger_keys(rt, tenant, ref):
            pipe.hexists(key, ref)
        raw, *done = pipe.execute()
    if raw is None or any(done):
        with rt.redis.pipeline() as pipe:
            pipe.hdel(keys.outbox(tenant), ref).zrem(keys.due, member).execute()
        return "skipped"
    entry = json.loads(raw)
    action = Action.from_dict(entry["action"])
    try:
        result = rt.adapter(tenant, entry["adapter"]).send(action)
    except Exception:  # a bug or an unreachable secret must not lose the action: retry, and say so
        log.exception("sending %s %s for tenant %s failed", action.kind, ref, tenant)
        result = SendResult("retry", reason="adapter error")
    now = rt.clock.now().timestamp()
    with rt.redis.pipeline() as pipe:
        if result.outcome == "done":
            record_written(pipe, rt, tenant, ref, result.remote_id or "")
            pipe.hdel(keys.outbox(tenant), ref).zrem(keys.due, member)
            log.info("sent %s %s rule=%s tenant=%s status=%s", action.kind, ref, action.rule_id, tenant, result.status)
        elif result.outcome == "retry" and entry["attempts"] + 1 < MAX_ATTEMPTS:
            entry["attempts"] += 1
            delay = result.retry_after if result.retry_after is not None else backoff_seconds(entry["attempts"])
            pipe.hset(keys.outbox(tenant), ref, json.dumps(entry))
            pipe.zadd(keys.due, {member: now + max(delay, 1.0)})
            log.warning(
                "retrying %s %s tenant=%s in %.0fs (attempt %d, %s)",
                action.kind, ref, tenant, delay, entry["attempts"], result.reason,
            )
        else:
            letter = {
                "tenant": tenant, "adapter": entry["adapter"], "attempts": entry["attempts"] + 1,
                "status": result.status, "reason": result.reason, "failed_at": now, "action": entry["action"],
            }
            pipe.hset(keys.dead_letters, f"{tenant}|{ref}", json.dumps(letter))
            pipe.hdel(keys.outbox(tenant), ref).zrem(keys.due, member)
            log.error("dead letter: %s %s tenant=%s (%s)", action.kind, ref, tenant, result.reason)
            result = SendResult("dead", status=result.status, reason=result.reason)
        pipe.execute()
    return result.outcome


def written(rt: Runtime, tenant: str, ref: str) -> bytes | None:
    """The platform's id for an action written within the ledger's weeks (``b""`` when it gave none), else ``None``."""
    with rt.redis.pipeline(transaction=False) as pipe:
        for key in ledger_keys(rt, tenant, ref):
            pipe.hget(key, ref)
        return next((remote_id for remote_id in pipe.execute() if remote_id is not None), None)


def dead_letters(rt: Runtime) -> list[dict]:
    letters = []
    for key, raw in sorted(rt.redis.hgetall(rt.keys.dead_letters).items()):
        letter = json.loads(raw)
        letter["id"] = key.decode()
        letters.append(letter)
    return letters


def retry_dead_letter(rt: Runtime, letter_id: str) -> bool:
    """Put a dead letter back into the outbox with a fresh count of attempts, due now."""
    keys = rt.keys
    raw = rt.redis.hget(keys.dead_letters, letter_id)
    if raw is None:
        return False
    letter = json.loads(raw)
    tenant, ref = letter["tenant"], letter["action"]["external_ref"]
    entry = json.dumps({"adapter": letter["adapter"], "attempts": 0, "action": letter["action"]})
    with rt.redis.pipeline() as pipe:
        pipe.hset(keys.outbox(tenant), ref, entry)
        pipe.zadd(keys.due, {due_member(tenant, ref): rt.clock.now().timestamp()})
        pipe.hdel(keys.dead_letters, letter_id)
        pipe.execute()
    return True
