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

In **shadow mode** (a tenant's ``mode: shadow``) an action is recorded as *would write* instead (the shadow record
in ``store.outbox``, with its rule, evidence and due date) and is never sent, not even after the tenant goes live;
an entry still in the outbox when a tenant is switched to shadow is held back the same way at its next try.
"""
from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Iterable

from connector.adapters.base import SendResult
from connector.contract.actions import Action
from connector.engine import metrics
from connector.config.schema import OutboxSettings
from connector.engine.runtime import Runtime
from connector.store import outbox as stored

log = logging.getLogger(__name__)

DEFAULTS = OutboxSettings()  # the configuration's ``outbox`` section, when it has none
FIRST_TRY_GRACE_SECONDS = DEFAULTS.first_try_grace_seconds
BACKOFF_BASE_SECONDS = DEFAULTS.backoff_base_seconds
BACKOFF_CAP_SECONDS = DEFAULTS.backoff_cap_seconds
MAX_ATTEMPTS = DEFAULTS.max_attempts


def backoff_seconds(attempt: int, settings: OutboxSettings = DEFAULTS) -> float:
    """Exponential, capped, with jitter so a platform coming back is not hit by every retry at once."""
    delay = min(settings.backoff_base_seconds * 2 ** max(attempt - 1, 0), settings.backoff_cap_seconds)
    return delay * random.uniform(0.9, 1.1)


def _settings(rt: Runtime) -> OutboxSettings:
    return getattr(rt.config, "outbox", DEFAULTS)


def add(pipe, rt: Runtime, tenant: str, adapter: str, actions: Iterable[Action], now: float,
        shadow: bool = False) -> None:
    """Queue actions inside the caller's transaction, with a send retry ``first_try_grace_seconds`` ahead; in
    shadow mode record them as *would write* instead, to be sent never."""
    if shadow:
        stored.record_shadow(pipe, rt.keys, tenant, adapter, actions, now)
        return
    stored.queue(pipe, rt.keys, tenant, adapter, actions, now, _settings(rt).first_try_grace_seconds)


WOULD_WRITE = "would_write"


def recorded(actions: Iterable[Action]) -> None:
    """Count what shadow mode recorded, once its transaction committed (a retried judgement counts once)."""
    for action in actions:
        metrics.count_action(action.rule_id or metrics.NONE, action.kind, WOULD_WRITE)


def shadow_actions(rt: Runtime, tenant: str) -> list[dict]:
    """What shadow mode recorded for ``tenant`` (``{adapter, action, decided_at}``), in the order decided."""
    return stored.shadow_actions(rt.redis, rt.keys, tenant)


def task_infos(rt: Runtime, tenant: str, refs: list[str]) -> list[dict | None]:
    return stored.task_infos(rt.redis, rt.keys, tenant, refs, rt.clock.now().timestamp())


def written(rt: Runtime, tenant: str, ref: str) -> bytes | None:
    return stored.written(rt.redis, rt.keys, tenant, ref, rt.clock.now().timestamp())


def dead_letters(rt: Runtime) -> list[dict]:
    return stored.dead_letters(rt.redis, rt.keys)


def retry_dead_letter(rt: Runtime, letter_id: str) -> bool:
    return stored.resurrect(rt.redis, rt.keys, letter_id, rt.clock.now().timestamp())


TEST_RULE = "admin.test"


def send_test(rt: Runtime, tenant: str, adapter: str, title: str, body: str) -> tuple[str, str]:
    """An admin's "send test task": a real task written through ``adapter`` the way every action is (outbox, ledger,
    journal, dead letter when refused), under the rule id ``admin.test`` and a fresh ``external_ref``, assigned to
    the principal, due today, about no pupil. Returns (outcome of the first try, external_ref)."""
    import uuid

    from connector.contract.actions import Party, external_ref

    settings = rt.tenant(tenant)
    rt.adapter(tenant, adapter)  # UnknownTarget for an adapter the tenant does not have
    now = rt.clock.now()
    action = Action(
        kind="task", external_ref=external_ref(tenant, TEST_RULE, adapter, uuid.uuid4().hex, "task"),
        rule_id=TEST_RULE, student_id=None, title=title, body=body,
        assignee=Party("principal", settings.directory.lookup("principal")), due_date=now.date().isoformat(),
    )
    stored.queue_now(rt.redis, rt.keys, tenant, adapter, [action], now.timestamp(),
                     _settings(rt).first_try_grace_seconds)
    log.info("test task %s for tenant %s through adapter %s", action.external_ref, tenant, adapter)
    return send(rt, tenant, action.external_ref), action.external_ref


def send(rt: Runtime, tenant: str, ref: str) -> str:
    """Try one outbox entry once; returns what happened (``done``, ``retry``, ``dead`` or ``skipped``)."""
    keys = rt.keys
    now = rt.clock.now().timestamp()
    entry, backoffs = stored.pending(rt.redis, keys, tenant, ref, now)
    if entry is None:
        metrics.count_action(metrics.NONE, metrics.NONE, "skipped")
        return "skipped"
    action = Action.from_dict(entry["action"])
    settings = rt.config.tenants.get(tenant)
    if settings is not None and settings.shadow:  # switched to shadow after this was queued: it is not sent
        stored.hold(rt.redis, keys, tenant, ref, entry, rt.clock.now().timestamp())
        log.info("held %s %s rule=%s tenant=%s: the tenant is in shadow mode", action.kind, ref, action.rule_id, tenant)
        metrics.count_action(action.rule_id or metrics.NONE, action.kind, WOULD_WRITE)
        return WOULD_WRITE
    if _backing_off(rt, tenant, ref, entry["adapter"], backoffs.get(stored.backoff_field(tenant, entry["adapter"])), now):
        outcome = "deferred"
    else:
        outcome = _send(rt, tenant, ref, entry, action)
    metrics.count_action(action.rule_id or metrics.NONE, action.kind, outcome)
    return outcome


CODE = re.compile(r"[A-Za-z0-9_.:/-]{1,40}")


def evidence(value):
    """An action's evidence as the journal keeps it: numbers, booleans and short codes or dates (``2026-11-23``,
    ``weekday:monday``), in lists and mappings with code keys; anything else (a string with spaces, a long one: it
    could be text) is dropped, so the journal cannot come to hold a sentence whatever a rule puts there."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return value if CODE.fullmatch(value) else None
    if isinstance(value, (list, tuple)):
        kept = [evidence(item) for item in value]
        return [item for item in kept if item is not None]
    if isinstance(value, dict):
        kept = {key: evidence(item) for key, item in value.items() if isinstance(key, str) and CODE.fullmatch(key)}
        return {key: item for key, item in kept.items() if item is not None}
    return None


def journal_entry(action: Action, adapter: str, out: str, status: int | None) -> dict:
    """What the admin page shows of an action that ended (``store.journal``): ids, dates and codes, never its text."""
    step = "/".join(str(action.extra[name]) for name in ("line", "level") if name in action.extra)
    why = evidence(action.evidence) if action.evidence else None
    return {"ref": action.external_ref, "kind": action.kind, "rule": action.rule_id, "pupil": action.student_id,
            "case": action.case_id, "group": action.group_id, "due": action.due_date, "step": step, "out": out,
            "status": status, "adapter": adapter,
            "evidence": json.dumps(why, separators=(",", ":"), sort_keys=True) if why else None}


def _backing_off(rt: Runtime, tenant: str, ref: str, adapter: str, backoff, now: float) -> bool:
    """The per-adapter back-off. A send that is to be retried holds its whole adapter back for the platform's
    ``Retry-After``, else for one base back-off: every other action due meanwhile is put off, untried and with its
    attempts unchanged, until a little after it. When the wait is over the first action to come takes the probe
    (atomically: two workers cannot both probe a platform that is down); its success ends the back-off for all, its
    failure starts the next wait. An outage of hours thus costs the platform and the workers about one call per
    wait, not one per action per wait. Usually there is no back-off (one hash read in the same trip as the entry),
    and then nothing here calls Redis."""
    if backoff is None or backoff.ref == ref:
        return False
    settings = _settings(rt)
    holding = backoff if backoff.until > now else stored.take_probe(
        rt.redis, rt.keys, tenant, adapter, ref, now, max(settings.backoff_base_seconds, 1.0))
    if holding is None:
        return False  # this one probes
    spread = min(settings.backoff_base_seconds, 30.0)
    stored.defer(rt.redis, rt.keys, tenant, ref, max(holding.until, now) + random.uniform(0.2, 1.0) * spread)
    return True


def _adapter_type(rt: Runtime, tenant: str, adapter: str) -> str:
    settings = rt.config.tenants.get(tenant)
    settings = settings.adapters.get(adapter) if settings is not None else None
    return settings.type if settings is not None else metrics.NONE


def _send(rt: Runtime, tenant: str, ref: str, entry: dict, action: Action) -> str:
    keys = rt.keys
    started = time.perf_counter()
    try:
        result = rt.adapter(tenant, entry["adapter"]).send(action)
    except Exception:  # a bug or an unreachable secret must not lose the action: retry, and say so
        log.exception("sending %s %s for tenant %s failed", action.kind, ref, tenant)
        result = SendResult("retry", reason="adapter error")
        error = "exception"
    else:
        error = None if result.outcome == "done" else str(result.status or "none")
    metrics.observe_platform(_adapter_type(rt, tenant, entry["adapter"]), time.perf_counter() - started, error)
    now = rt.clock.now().timestamp()
    settings = _settings(rt)
    if result.outcome == "done":
        stored.done(rt.redis, keys, tenant, ref, result.remote_id or "", now,
                    journal_entry(action, entry["adapter"], "written", result.status), adapter=entry["adapter"])
        log.info("sent %s %s rule=%s tenant=%s status=%s", action.kind, ref, action.rule_id, tenant, result.status)
        return "done"
    floor = min(1.0, settings.backoff_base_seconds)
    # the adapter waits as the platform asked, else one base back-off (not this action's own, which grows with its
    # attempts: one action the platform keeps failing must not hold back every other for hours)
    pause = result.retry_after if result.retry_after is not None else backoff_seconds(1, settings)
    if result.retry_after is not None and result.outcome == "retry":
        # throttled (429, or 503 with Retry-After): the platform is there and says when; that uses up no attempt,
        # or the action that happens to probe a long throttling spell would end a dead letter while the rest wait
        stored.again(rt.redis, keys, tenant, ref, entry, now + max(result.retry_after, floor), now + max(pause, floor))
        log.warning("retrying %s %s tenant=%s in %.0fs (attempt %d, %s)",
                    action.kind, ref, tenant, result.retry_after, entry["attempts"], result.reason)
        return "retry"
    if result.outcome == "retry" and entry["attempts"] + 1 < settings.max_attempts:
        entry["attempts"] += 1
        delay = backoff_seconds(entry["attempts"], settings)
        stored.again(rt.redis, keys, tenant, ref, entry, now + max(delay, floor), now + max(pause, floor))
        log.warning("retrying %s %s tenant=%s in %.0fs (attempt %d, %s)",
                    action.kind, ref, tenant, delay, entry["attempts"], result.reason)
        return "retry"
    if result.outcome == "retry":  # its last attempt: the platform still failed, so the others wait as well
        stored.hold_adapter(rt.redis, keys, tenant, entry["adapter"], ref, now + max(pause, floor))
    stored.bury(rt.redis, keys, tenant, ref, {
        "tenant": tenant, "adapter": entry["adapter"], "attempts": entry["attempts"] + 1,
        "status": result.status, "reason": result.reason, "error_body": result.error_body, "failed_at": now,
        "action": entry["action"],
    }, journal_entry(action, entry["adapter"], "dead", result.status))
    log.error("dead letter: %s %s tenant=%s (%s)", action.kind, ref, tenant, result.reason)
    return "dead"
