"""The ``connector`` command: check a configuration, run the web app, the worker and the scheduler, or all three.

Every subcommand reads the configuration from ``--config``, else ``$CONNECTOR_CONFIG``, else the bundled example,
so a newcomer's first ``connector serve`` works with no setup at all. A configuration problem is printed as the
admin has to act on it (file:line: field: message) and exits 1; a Redis that does not answer exits 2 in one line,
except for the long-running worker and scheduler, which wait for it (at their start and whenever it goes away).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from connector.engine import cases, failed_jobs, outbox, runtime, scheduler
from connector.config.schema import Config, ConfigError, check_config, load_config
from connector.store import connection
from connector.store.connection import connect, ping
from connector.engine.runtime import Runtime

EXAMPLE_CONFIG = Path(__file__).parent / "example" / "connector.yaml"
SERVE_CHILDREN = ("web", "worker", "scheduler")
STOP_GRACE_SECONDS = 5.0


def config_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "path", None) or args.config or os.environ.get("CONNECTOR_CONFIG") or EXAMPLE_CONFIG)


def _runtime(args: argparse.Namespace) -> Runtime:
    """The configuration and a Redis that answers; the one seam tests replace to hand in their own runtime."""
    rt = Runtime(load_config(config_path(args)), connect())
    ping(rt.redis)
    return rt


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _log_to_stderr(args: argparse.Namespace) -> None:
    """Plain text unless ``--log-format json`` or ``CONNECTOR_LOG_FORMAT=json`` (``connector.engine.logs``)."""
    from connector.engine import logs

    logs.configure(getattr(args, "log_format", None))


# --- Subcommands ---------------------------------------------------------------------------------------------------


def check_config_command(args: argparse.Namespace) -> int:
    """Run before a deploy: the file is valid and every secret it names can be read now (values never shown)."""
    path = config_path(args)
    warnings: list[str] = []
    problems = check_config(path, warnings)
    if problems:
        _print_problems(problems)
        return 1
    _print_problems(warnings)
    tenants = list(load_config(path).tenants)
    print(f"ok: {len(tenants)} tenant(s): {', '.join(tenants)}")
    return 0


def check_adapter_command(args: argparse.Namespace) -> int:
    """Before the first event: call the platform's read-only endpoints as the adapter would and say, in plain words,
    what is missing there (a permission, a capability, an approval). Needs no Redis; writes nothing anywhere."""
    from connector.adapters import adapter_types

    config = load_config(config_path(args))
    tenant = config.tenants.get(args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r} in the configuration (tenants: {', '.join(config.tenants)})", file=sys.stderr)
        return 1
    settings = tenant.adapters.get(args.adapter)
    if settings is None:
        print(f"tenant {args.tenant} has no adapter {args.adapter!r} (adapters: {', '.join(tenant.adapters)})",
              file=sys.stderr)
        return 1
    adapter = adapter_types()[settings.type](tenant.id, args.adapter, settings.settings)
    findings = adapter.check()
    for finding in findings:
        mark = "ok     " if finding.ok else "MISSING"
        print(f"{mark} {finding.what}" + (f": {finding.detail}" if finding.detail else ""))
    missing = sum(not finding.ok for finding in findings)
    summary = f"{args.tenant}/{args.adapter} ({settings.type}): "
    print(summary + (f"{missing} thing(s) to fix before the first event" if missing else "ready"))
    return 1 if missing else 0


def web_command(args: argparse.Namespace) -> int:
    """gunicorn in this process, one app per worker (no preload): each worker opens its own Redis connection.

    Redis is not checked here on purpose: the web app starts without it and ``/readyz`` answers 503, which is what
    a load balancer acts on. Without ``REDIS_URL`` the master starts the embedded Redis before forking, and the
    workers inherit its URL: one server for all of them, stopped when the master exits.
    """
    from gunicorn.app.base import BaseApplication

    from connector import create_app

    path = config_path(args)
    load_config(path)  # a configuration problem stops the master here, not each worker at boot
    _warm_classification()  # once, in the master: the workers it forks share it
    if not os.environ.get("REDIS_URL"):
        _log_to_stderr(args)
        connection.start_embedded()

    class ConnectorWeb(BaseApplication):
        def load_config(self):
            for key, value in web_options(args.bind, args.workers, self.cfg.settings).items():
                self.cfg.set(key, value)

        def load(self):
            _log_to_stderr(args)
            return create_app(load_config(path))

    ConnectorWeb(prog="connector web").run()
    return 0


# How long a stopping web worker may finish what it holds: a request takes milliseconds, and a body at most the door's
# bound on its wait (``webhooks.views.BODY_SECONDS``, 10 s). gunicorn's 30 s default only made a stop slower, and a
# worker that the stop signal reached while it was still booting (before gunicorn set its handlers) is killed after it.
GRACEFUL_SECONDS = 12


def web_options(bind: str, workers: int, settings) -> dict:
    """gunicorn's settings for the door; ``bench/ingest.py`` serves its baseline with the same ones.

    gevent workers, not sync ones: a sync worker holds one connection from its first byte to its last, so a sender
    that declares a longer body than it sends (or sends it a byte a second) held a worker for 30 s, and two of them
    shut the door, ``/healthz`` included. A gevent worker waits for each connection in a greenlet of its own (a few
    KB), up to ``worker_connections`` of them, while it answers the others; the door's own work is CPU and one
    Redis round trip, which gevent's patched sockets serve as before. The door bounds the wait for a body
    (``webhooks.views.BODY_SECONDS``). docs/deployment.md, "Slow senders", says why this and not gthread or waitress.
    """
    options = {"bind": bind, "workers": workers, "worker_class": "gevent", "worker_connections": 1000,
               "preload_app": False, "graceful_timeout": GRACEFUL_SECONDS}
    # gunicorn >= 25.1 opens a control socket at a path shared by all of the user's gunicorns; unused here
    if "control_socket_disable" in settings:
        options["control_socket_disable"] = True
    return options


def worker_command(args: argparse.Namespace) -> int:
    """RQ's SimpleWorker (see ``connector.engine.rq_compat``): jobs run in this process (no fork per job), being our own code.

    RQ's scheduler runs alongside, because a failed delivery job is retried with RQ's ``Retry``, which needs it.
    Job descriptions stay out of the log: their arguments are pupils' events, and a notice's reason is free text.
    """
    from rq.serializers import JSONSerializer

    from connector.engine.rq_compat import ConnectorWorker

    _log_to_stderr(args)
    rt = _until_redis_answers(lambda: _runtime(args), "worker")
    if rt is None:
        return 0
    runtime.install(rt)
    if args.metrics_port is not None:  # this worker's jobs, actions and platform calls (README, "Running in production")
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_bind)
    while True:
        worker = ConnectorWorker([rt.queue], connection=rt.redis, serializer=JSONSerializer, log_job_description=False)
        try:
            worker.work(with_scheduler=True, burst=args.burst, logging_level="INFO")
        except (RedisConnectionError, RedisTimeoutError):  # RQ's teardown met the same lost Redis
            pass
        if args.burst or worker.stop_asked:
            return 0
        # RQ's loop ends on a Redis error (it says so with the error); a job in hand is taken over by a worker's
        # maintenance once Redis is back (``rq_compat``). Wait for Redis, then start a fresh worker (not at once:
        # whatever else ended the loop must not turn this into a busy loop of fresh workers).
        time.sleep(1)
        if _until_redis_answers(lambda: ping(rt.redis), "worker", down=True) is None:
            return 0


def _warm_classification() -> None:
    """The classification's net and the shipped rules, ready before the process serves: the first guardian's message
    would otherwise wait for the training (``rules.resemblance.warm``), longer than a platform waits for a webhook."""
    from connector.rules import classify, resemblance

    resemblance.warm()
    classify.load_rules()


def _until_redis_answers(attempt, who: str, down: bool = False):
    """``attempt()`` again and again, pinging with a back-off (0.5 s doubling to 5 s), until it gets through Redis;
    ``None`` when SIGTERM or Ctrl-C came first. A long-running process (worker, scheduler) waits for Redis this way,
    at its start and after losing it, instead of exiting: nothing it would do can be lost meanwhile (the door
    answers 503 and the jobs and deadlines wait in Redis), and it carries on by itself when Redis is back."""
    import logging

    log = logging.getLogger(f"connector.{who}")
    stop: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: stop.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        wait = 0.5
        while not stop:
            try:
                result = attempt()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if not down:
                    log.warning("%s: Redis does not answer (%s); waiting for it", who, type(exc).__name__)
                    down = True
                time.sleep(wait)
                wait = min(wait * 2, 5.0)
                continue
            if down:
                log.warning("%s: Redis answers again; carrying on", who)
            return result
        return None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def scheduler_command(args: argparse.Namespace) -> int:
    """Sweeps the due set (deadlines, send retries) into the queue; Ctrl-C or SIGTERM stops it without a trace."""
    _log_to_stderr(args)
    rt = _until_redis_answers(lambda: _runtime(args), "scheduler")
    if rt is None:
        return 0
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        scheduler.run_forever(rt, args.interval)
    except KeyboardInterrupt:
        pass
    return 0


def poll_command(args: argparse.Namespace) -> int:
    """Reads the platforms that push nothing (OneRoster's Absence Service) and queues what changed, as the door
    queues a delivery (``connector.engine.poller``); Ctrl-C or SIGTERM stops it between two requests."""
    import threading

    from connector.engine.poller import Poller, polled_adapters

    rt = _runtime(args)
    _log_to_stderr(args)
    stop = threading.Event()
    poller = Poller(rt, sleep=lambda seconds: stop.wait(seconds))
    if args.once:
        for (tenant, adapter), outcome in poller.tick().items():
            print(f"{tenant}/{adapter}: {_poll_outcome(outcome)}")
        return 0
    if not polled_adapters(rt):
        print("connector poll: no tenant has a polled adapter (oneroster_no); waiting", file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        poller.run_forever(stop)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _poll_outcome(outcome) -> str:
    if outcome is None:
        return "not due (or another poller has it)"
    if isinstance(outcome, Exception):
        return f"failed: {getattr(outcome, 'reason', type(outcome).__name__)}"
    return (f"{outcome.requests} request(s), {outcome.pages} page(s), {outcome.changes} change(s) queued in "
            f"{outcome.jobs} job(s), {outcome.unchanged} seen before, {outcome.refused} refused"
            + (f", {outcome.other_schools} of other schools" if outcome.other_schools else ""))


def serve_command(args: argparse.Namespace) -> int:
    """Web, worker and scheduler as three child processes (and a poller when a tenant reads a polled platform), with
    the embedded Redis unless ``REDIS_URL`` is set.

    The children are separate processes, as in production. One that dies is started again after a back-off
    (:class:`Restarts`), and said so on stderr; on Ctrl-C/SIGTERM all are stopped, so nothing is left running
    behind a newcomer's terminal.
    """
    path = config_path(args).resolve()
    problems = check_config(path)
    if problems:
        _print_problems(problems)
        print(f"not starting: {len(problems)} configuration problem(s)", file=sys.stderr)
        return 1
    config = load_config(path)
    env = dict(os.environ, CONNECTOR_CONFIG=str(path))
    if getattr(args, "log_format", None):
        env["CONNECTOR_LOG_FORMAT"] = args.log_format  # the children log as the command was asked to
    if os.environ.get("REDIS_URL"):
        redis_note = "the Redis given by REDIS_URL"
    else:  # started once here; the children get its URL and start none (stopped as serve exits: see main)
        _log_to_stderr(args)
        embedded = connection.start_embedded()
        env["REDIS_URL"] = embedded.url
        redis_note = f"an embedded Redis (data in {embedded.folder}/)"

    stop_signals: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop_signals.append(signum))

    commands: dict[str, list[str]] = {}
    if args.demo:  # first, so that the worker's first write finds it listening
        commands["demo platform"] = [sys.executable, "-m", "connector.demo_platform", "--port", str(args.demo_port),
                                     "--quiet"]
    for name in SERVE_CHILDREN + (("poll",) if _has_polled_adapters(config) else ()):
        extra = ["--bind", args.bind] if name == "web" else []
        commands[name] = [sys.executable, "-m", "connector.cli", name, *extra]

    children: dict[str, subprocess.Popen] = {}
    restarts = Restarts()
    demo_note = _demo_note(config, args.demo_port) if args.demo else None
    try:
        for name, command in commands.items():
            children[name] = subprocess.Popen(command, env=env)
            restarts.started(name)
        announced = False
        while not stop_signals:
            for name, child in list(children.items()):
                if child.poll() is None:
                    continue
                delay = restarts.died(name)
                print(f"connector serve: the {name} process exited (code {child.returncode}); starting it again in "
                      f"{delay:g} s", file=sys.stderr, flush=True)
                del children[name]
            for name in restarts.due():
                if stop_signals:
                    break
                children[name] = subprocess.Popen(commands[name], env=env)
                restarts.started(name)
                print(f"connector serve: started the {name} process again", file=sys.stderr, flush=True)
            if not announced and _accepts_connections(args.bind):
                print(_banner(config, path, args.bind, redis_note), flush=True)
                if demo_note:
                    print(demo_note, flush=True)
                announced = True
            time.sleep(0.2)
    finally:
        _stop(children.values())
    print("connector serve: stopped", file=sys.stderr)
    return 0


class Restarts:
    """When ``serve`` starts a child that died again: after 1 s, doubling with each death up to 30 s, and back to 1 s
    once the child has stayed up a minute. A child that cannot start (a port taken) thus costs a line every 30 s,
    not a busy loop; one that crashed once is back at once."""

    FIRST, LONGEST, STEADY = 1.0, 30.0, 60.0

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.delay: dict[str, float] = {}
        self.since: dict[str, float] = {}
        self.pending: dict[str, float] = {}

    def started(self, name: str) -> None:
        self.since[name] = self.clock()
        self.pending.pop(name, None)

    def died(self, name: str) -> float:
        """The child ``name`` exited: how long until it is started again."""
        now = self.clock()
        if now - self.since.get(name, now) >= self.STEADY:
            self.delay.pop(name, None)
        delay = self.delay.get(name, self.FIRST)
        self.delay[name] = min(delay * 2, self.LONGEST)
        self.pending[name] = now + delay
        return delay

    def due(self) -> list[str]:
        now = self.clock()
        return [name for name, at in self.pending.items() if at <= now]


def dead_letters_list_command(args: argparse.Namespace) -> int:
    """What the platforms refused for good, for an admin to read before retrying (no action text is shown)."""
    letters = [letter for letter in outbox.dead_letters(_runtime(args)) if args.tenant in (None, letter["tenant"])]
    if not letters:
        print("no dead letters")
        return 0
    header = ("id", "tenant", "rule_id", "kind", "status", "reason", "attempts", "failed_at")
    rows = [
        (
            letter["id"], letter["tenant"], letter["action"]["rule_id"], letter["action"]["kind"],
            str(letter.get("status") or "-"), letter.get("reason") or "-", str(letter["attempts"]),
            datetime.fromtimestamp(letter["failed_at"], tz=timezone.utc).isoformat(timespec="seconds"),
        )
        for letter in letters
    ]
    _table(header, rows)
    return 0


def _retry(args: argparse.Namespace, known: set[str], retry, missing_text: str, done_text: str) -> int:
    """``retry ID…`` or ``--all`` of what an admin may send on again (``known``: the ids there are, for the tenant
    asked about); an id that is not there is said, and makes the exit code 1."""
    wanted = sorted(known) if args.all else args.ids
    missing = [ident for ident in wanted if ident not in known]
    retried = sum(retry(ident) for ident in wanted if ident in known)
    for ident in missing:
        print(f"{missing_text}: {ident}", file=sys.stderr)
    print(done_text.format(retried))
    return 1 if missing else 0


def dead_letters_retry_command(args: argparse.Namespace) -> int:
    """Back into the outbox, due now, with a fresh count of attempts: after the platform or the data is fixed."""
    rt = _runtime(args)
    letters = {letter["id"] for letter in outbox.dead_letters(rt) if args.tenant in (None, letter["tenant"])}
    return _retry(args, letters, lambda letter_id: outbox.retry_dead_letter(rt, letter_id), "no such dead letter",
                  "put {} dead letter(s) back into the outbox")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def jobs_failed_command(args: argparse.Namespace) -> int:
    """Deliveries and due items whose job failed for good: ids, times and the error's kind and place, no event data."""
    found = [job for job in failed_jobs.failed_jobs(_runtime(args)) if args.tenant in (None, job.tenant)]
    if not found:
        print("no failed jobs")
        return 0
    _table(("id", "what", "tenant", "adapter", "failed_at", "reason"), [
        (job.id, job.what, job.tenant, job.adapter,
         job.failed_at.isoformat(timespec="seconds") if job.failed_at else "-", job.reason)
        for job in found
    ])
    return 0


def jobs_retry_command(args: argparse.Namespace) -> int:
    """Run failed jobs again (after the cause is fixed): each is queued as it was first queued."""
    rt = _runtime(args)
    known = {job.id for job in failed_jobs.failed_jobs(rt) if args.tenant in (None, job.tenant)}
    return _retry(args, known, lambda job_id: failed_jobs.retry(rt, job_id), "no such failed job",
                  "queued {} failed job(s) again")


def cases_show_command(args: argparse.Namespace) -> int:
    """One guardian's case as stored: category and rule, where each line stands, and every step (no message text)."""
    rt = _runtime(args)
    if args.tenant not in rt.config.tenants:  # a mistyped tenant is worth saying, not "no such case"
        print(f"no tenant {args.tenant} in the configuration", file=sys.stderr)
        return 1
    case = cases.load_case(rt, args.tenant, args.case)
    if case is None:
        print(f"no case {args.case} for tenant {args.tenant}", file=sys.stderr)
        return 1
    print("\n".join(cases.describe(case)))
    return 0


def plan_show_command(args: argparse.Namespace) -> int:
    """The school's absence plan as the seed document prints it, to hold next to the paper version."""
    from connector.rules.plan_text import plan_lines

    config = load_config(config_path(args))
    tenant = config.tenants.get(args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r} in the configuration (tenants: {', '.join(config.tenants)})", file=sys.stderr)
        return 1
    print("\n".join(plan_lines(f"{tenant.name} ({tenant.id})", tenant.plan, args.language or tenant.language)))
    return 0


MIN_PASSWORD_LENGTH = 12


def admin_set_password_command(args: argparse.Namespace) -> int:
    """Set the admin page's local admin password: its hash (werkzeug's scrypt) goes to ``admin.password_file``
    (mode 0600); the password itself is stored nowhere. Asked twice on a terminal, else read from one line of stdin."""
    import getpass

    from connector.admin.auth import write_password_file

    path = config_path(args)
    admin = load_config(path).admin
    if admin is None or admin.password_file is None:
        print(f"{path}: no admin.password_file: add an 'admin:' section with password_file (README, 'Admin page')",
              file=sys.stderr)
        return 1
    if sys.stdin.isatty():
        password = getpass.getpass("New admin password: ")
        if getpass.getpass("Again: ") != password:
            print("connector admin set-password: the two passwords differ; nothing changed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"connector admin set-password: use at least {MIN_PASSWORD_LENGTH} characters; nothing changed",
              file=sys.stderr)
        return 1
    write_password_file(admin.password_file, password)
    print(f"the admin password's hash is in {admin.password_file} (user {admin.username})")
    return 0


def shadow_list_command(args: argparse.Namespace) -> int:
    """What shadow mode recorded as *would write* for a school: ids, rule, kind, recipient, due date (no text)."""
    rt = _runtime(args)
    if args.tenant not in rt.config.tenants:
        print(f"no tenant {args.tenant} in the configuration", file=sys.stderr)
        return 1
    found = outbox.shadow_actions(rt, args.tenant)
    print(f"tenant {args.tenant}: mode {rt.config.tenants[args.tenant].mode}; {len(found)} action(s) recorded as "
          "would write")
    if not found:
        return 0
    rows = []
    for entry in found:
        action = entry["action"]
        assignee = action.get("assignee") or {}
        rows.append((
            datetime.fromtimestamp(entry["decided_at"], tz=timezone.utc).isoformat(timespec="seconds"),
            action["rule_id"], action["kind"], action.get("student_id") or action.get("group_id") or "-",
            "/".join(part for part in (assignee.get("role"), assignee.get("id")) if part) or "-",
            action.get("due_date") or "-", action["external_ref"], "held" if entry.get("held") else "",
        ))
    _table(("decided_at", "rule_id", "kind", "pupil", "recipient", "due", "external_ref", ""), rows)
    return 0


def _iso_day(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (YYYY-MM-DD)") from None


def register_replay_sources() -> None:
    """The platforms a replay can read a period from (``engine.replay.SOURCES``); adapters may not import the
    engine, so they are registered here."""
    from connector.adapters.oneroster_no import replay_source
    from connector.engine import replay

    replay.SOURCES.setdefault(replay_source.TYPE, replay_source.envelopes)


def replay_command(args: argparse.Namespace) -> int:
    """A past period's events through the school's plan (or ``--plan``) on a simulated clock: what would it have
    created? Nothing is written to a platform and no live state is touched (README, "Before going live")."""
    from connector.engine import replay, replay_report

    config = load_config(config_path(args))
    tenant = config.tenants.get(args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r} in the configuration (tenants: {', '.join(config.tenants)})", file=sys.stderr)
        return 1
    language = args.language or tenant.language
    if args.events is not None and args.from_day is not None:
        print("connector replay: give an events file or --from/--until (the platform's API), not both",
              file=sys.stderr)
        return 1
    if args.events is None and args.from_day is None:
        print("connector replay: give an events file, or --from and --until to read the period from the platform's "
              "API", file=sys.stderr)
        return 1
    if args.from_day is not None:
        register_replay_sources()
        if args.until is None or args.until < args.from_day:
            print("connector replay: --from needs --until, on or after it", file=sys.stderr)
            return 1
        kinds = [a.type for a in tenant.adapters.values() if a.type in replay.SOURCES]
        if not kinds:
            print(f"connector replay: tenant {tenant.id!r} has no adapter whose API a period can be read from "
                  f"({', '.join(sorted(replay.SOURCES))}); give an events file instead", file=sys.stderr)
            return 1
        where = f"{kinds[0]} from {args.from_day} to {args.until}"
    else:
        where = args.events
    try:
        if args.from_day is not None:
            events = replay.source_events(kinds[0], tenant, args.from_day, args.until)
        else:
            events = replay.read_events(args.events)
    except replay.EventsError as exc:
        print(f"connector replay: {exc}", file=sys.stderr)
        return 1
    if args.until is not None:  # the period ends that day: its deadlines fire up to its end, none after
        events = [e for e in events if tenant.calendar.local_date(datetime.fromisoformat(e["timestamp"]))
                  <= args.until]
    if not events:
        print(f"connector replay: no events of a known type in {where}", file=sys.stderr)
        return 1
    plans = [(Path(args.plan).name if args.plan else "", replay.load_plan_file(args.plan) if args.plan else None)]
    if args.compare:
        plans.append((Path(args.compare).name, replay.load_plan_file(args.compare)))
    redis = connect()
    ping(redis)
    summaries = [replay_report.summarise(replay.replay(config, tenant.id, events, redis, plan=plan, plan_name=name,
                                                       until=args.until), language) for name, plan in plans]
    other = summaries[1] if len(summaries) > 1 else None
    print(replay_report.text(summaries[0], other, language), end="")
    out = Path(args.out or f"replay-{tenant.id}.html")
    html = replay_report.html(summaries[0], other, language)
    out.write_text(html, encoding="utf-8")
    # the admin page links to the latest report: kept beside the service's state (counts and staff ids only)
    from connector.store import replay as stored_replay
    from connector.store.keys import Keys

    stored_replay.keep_report(redis, Keys(config.key_prefix), tenant.id, html, time.time(), len(events))
    print(f"\n{out}")
    return 0


GENERIC_FIXTURES = Path(__file__).parent / "adapters" / "generic" / "fixtures"


def _test_envelope(source: str) -> tuple[bytes, Path]:
    """A JSON envelope file, or a generic fixture by name (``attendance_marked__absent``), with ``timestamp`` now."""
    path = Path(source)
    if not path.is_file():
        name = source[:-5] if source.endswith(".json") else source
        path = GENERIC_FIXTURES / f"{name}.json"
        if "/" in name or not path.is_file():
            known = ", ".join(sorted(p.stem for p in GENERIC_FIXTURES.glob("*.json")))
            raise ValueError(f"no file {source} and no generic fixture of that name (fixtures: {known})")
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a JSON envelope ({exc})") from None
    if not isinstance(envelope, dict):
        raise ValueError(f"{path}: not a JSON envelope (an object with type, timestamp and data)")
    envelope["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return json.dumps(envelope, ensure_ascii=False).encode(), path


def send_test_command(args: argparse.Namespace) -> int:
    """Sign a fixture or an envelope file as the platform would (Standard Webhooks, the adapter's first configured
    secret), post it to the running service and print the answer: a newcomer's first delivery, without curl."""
    import requests

    from connector.contract.signatures import sign

    config = load_config(config_path(args))
    tenant = config.tenants.get(args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r} in the configuration (tenants: {', '.join(config.tenants)})", file=sys.stderr)
        return 1
    adapter = tenant.adapters.get(args.adapter)
    if adapter is None or adapter.type != "generic":
        what = f"is of type {adapter.type}" if adapter else "is not configured"
        print(f"adapter {args.adapter!r} of tenant {args.tenant} {what}: send-test signs the generic adapter's "
              f"Standard Webhooks (adapters: {', '.join(tenant.adapters)})", file=sys.stderr)
        return 1
    try:
        body, source = _test_envelope(args.source)
    except ValueError as exc:
        print(f"connector send-test: {exc}", file=sys.stderr)
        return 1
    from connector.config.secrets import SecretUnavailable

    try:
        secret = adapter.settings["webhook_secrets"][0].reveal()
    except SecretUnavailable as exc:
        print(f"connector send-test: the adapter's webhook secret cannot be read: {exc}", file=sys.stderr)
        return 1
    msg_id = f"msg_test_{uuid.uuid4().hex}"
    stamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(stamp),
               "webhook-signature": sign(body, msg_id, stamp, secret)}
    url = f"{args.url.rstrip('/')}/webhooks/{tenant.id}/{args.adapter}"
    try:
        response = requests.post(url, data=body, headers=headers, timeout=args.timeout)
    except requests.RequestException as exc:
        print(f"connector send-test: nothing answered at {url} ({type(exc).__name__}); is `connector serve` "
              "running?", file=sys.stderr)
        return 2
    print(f"POST {url}  ({source.name}, webhook-id {msg_id})")
    print(f"{response.status_code} {response.reason}")
    print(response.text.rstrip())
    return 0 if 200 <= response.status_code < 300 else 1


# --- serve's helpers -----------------------------------------------------------------------------------------------


def _has_polled_adapters(config: Config) -> bool:
    """Whether ``serve`` starts a poller beside the others (a tenant reads a platform that pushes nothing)."""
    from connector.adapters import adapter_types

    types = adapter_types()
    return any(getattr(types[adapter.type], "polled", False)
               for tenant in config.tenants.values() for adapter in tenant.adapters.values())


def _accepts_connections(bind: str) -> bool:
    """Whether the web server listens yet, so the banner comes after gunicorn's start-up lines, not among them."""
    host, _, port = bind.rpartition(":")
    if not port.isdigit() or bind.startswith("unix:"):
        return True
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=0.2):
            return True
    except OSError:
        return False


def _demo_note(config: Config, port: int) -> str:
    """What ``serve --demo`` adds to the banner: where the demo platform shows what it received, how to send a first
    event, and which adapters do not write to it (their base_url points elsewhere)."""
    demo = f"http://127.0.0.1:{port}"
    first = next(((tenant.id, name) for tenant in config.tenants.values()
                  for name, adapter in tenant.adapters.items() if adapter.type == "generic"), None)
    elsewhere = [
        f"{tenant.id}/{name}" for tenant in config.tenants.values() for name, adapter in tenant.adapters.items()
        if "base_url" in adapter.settings and not str(adapter.settings["base_url"]).startswith(demo + "/")
    ]
    lines = [f"Demo platform: {demo}/ shows the tasks, alerts and notes written to it ({demo}/api)."]
    if first:
        lines.append(f"Send a first event: connector send-test {first[0]} attendance_marked__absent"
                     + ("" if first[1] == "generic" else f" --adapter {first[1]}"))
    if elsewhere:
        lines.append(f"Not writing to it (base_url elsewhere): {', '.join(elsewhere)}; set base_url: {demo}/api "
                     "for the demo.")
    return "\n".join(lines) + "\n"


def _banner(config: Config, path: Path, bind: str, redis_note: str) -> str:
    base = f"http://{bind}"
    endpoints = [
        f"  POST {base}/webhooks/{tenant.id}/{adapter}   ({tenant.name}"
        + ("; shadow mode: judged and recorded, nothing written)" if tenant.shadow else ")")
        for tenant in config.tenants.values()
        for adapter in tenant.adapters
    ]
    return "\n".join(
        [
            f"\nconnector is running at {base}, with a worker and a scheduler beside it,",
            f"using {redis_note} and the configuration {path}.",
            f"Webhooks for the {len(config.tenants)} tenant(s) go to:",
            *endpoints,
            f"Health: {base}/healthz and {base}/readyz. Press Ctrl-C to stop everything.\n",
        ]
    )


def _stop(children) -> None:
    """SIGTERM (each stops gracefully), then SIGKILL whatever still runs after a few seconds."""
    alive = [child for child in children if child.poll() is None]
    for child in alive:
        child.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in alive:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --- Parsing -------------------------------------------------------------------------------------------------------


def _retry_parser(actions, common: argparse.ArgumentParser, help_text: str, what: str, run) -> None:
    """``retry ID… | --all [--tenant T]``, the same for everything an admin may send on again."""
    retry = actions.add_parser("retry", parents=[common], help=help_text)
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID")
    which.add_argument("--all", action="store_true")
    retry.add_argument("--tenant", help=f"only this tenant's {what}")
    retry.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", help="configuration file (default: $CONNECTOR_CONFIG, else the bundled example)"
    )
    common.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or one JSON object each "
        "(default: $CONNECTOR_LOG_FORMAT, else text)",
    )

    parser = argparse.ArgumentParser(
        prog="connector", description="skoleflyt-connector: school platforms' webhooks in, absence rules applied."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check-config", parents=[common], help="validate a configuration and its secrets")
    check.add_argument("path", nargs="?", metavar="PATH")
    check.set_defaults(run=check_config_command)

    check_adapter = commands.add_parser(
        "check-adapter", parents=[common],
        help="call a platform's read-only endpoints and say what the adapter is missing there")
    check_adapter.add_argument("tenant")
    check_adapter.add_argument("adapter", help="the adapter's name under the tenant's adapters:")
    check_adapter.set_defaults(run=check_adapter_command)

    web = commands.add_parser("web", parents=[common], help="run the web app (gunicorn)")
    web.add_argument("--bind", default="127.0.0.1:8000")
    web.add_argument("--workers", type=int, default=2)
    web.set_defaults(run=web_command)

    worker = commands.add_parser("worker", parents=[common], help="run the RQ worker")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--metrics-port", type=int, metavar="PORT", help="serve this worker's Prometheus metrics here")
    worker.add_argument("--metrics-bind", default="127.0.0.1", metavar="ADDR", help="address for --metrics-port")
    worker.set_defaults(run=worker_command)

    sched = commands.add_parser("scheduler", parents=[common], help="queue deadlines and retries when they fall due")
    sched.add_argument("--interval", type=float, default=1.0, metavar="SECONDS")
    sched.set_defaults(run=scheduler_command)

    poll = commands.add_parser("poll", parents=[common], help="read polled platforms (OneRoster) and queue changes")
    poll.add_argument("--once", action="store_true", help="poll each due adapter once, print what happened, exit")
    poll.set_defaults(run=poll_command)

    serve = commands.add_parser("serve", parents=[common], help="run web, worker and scheduler together")
    serve.add_argument("--bind", default="127.0.0.1:8000")
    serve.add_argument("--demo", action="store_true",
                       help="also run a local demo platform that shows what the connector wrote to it")
    serve.add_argument("--demo-port", type=int, default=8099, metavar="PORT",
                       help="the demo platform's port (default: %(default)s, the bundled example's base_url)")
    serve.set_defaults(run=serve_command)

    plan = commands.add_parser("plan", help="the school's absence plan").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    plan_show = plan.add_parser("show", parents=[common], help="print a school's plan as the seed document does")
    plan_show.add_argument("tenant")
    plan_show.add_argument("--language", choices=("nb", "nn", "en"), help="default: the school's language")
    plan_show.set_defaults(run=plan_show_command)

    dead = commands.add_parser("dead-letters", help="actions the platform refused").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = dead.add_parser("list", parents=[common], help="show the dead letters")
    listing.add_argument("--tenant")
    listing.set_defaults(run=dead_letters_list_command)
    _retry_parser(dead, common, "put dead letters back into the outbox", "dead letters", dead_letters_retry_command)

    job_commands = commands.add_parser("jobs", help="jobs that failed for good").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    failed = job_commands.add_parser("failed", parents=[common], help="list failed jobs and why (no event data)")
    failed.add_argument("--tenant")
    failed.set_defaults(run=jobs_failed_command)
    _retry_parser(job_commands, common, "queue failed jobs again", "failed jobs", jobs_retry_command)

    send = commands.add_parser("send-test", parents=[common],
                               help="sign and post a fixture or an envelope file to the running service")
    send.add_argument("tenant")
    send.add_argument("source", metavar="FIXTURE-OR-FILE",
                      help="a generic fixture's name (e.g. attendance_marked__absent) or a JSON envelope file")
    send.add_argument("--url", default="http://127.0.0.1:8000", help="the service (default: %(default)s)")
    send.add_argument("--adapter", default="generic", help="the tenant's adapter to post to (default: %(default)s)")
    send.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    send.set_defaults(run=send_test_command)

    admin = commands.add_parser("admin", help="the admin page at /admin").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    set_password = admin.add_parser("set-password", parents=[common],
                                    help="set the local admin account's password (its hash only is stored)")
    set_password.set_defaults(run=admin_set_password_command)

    shadow = commands.add_parser("shadow", help="what shadow mode would have written").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    shadow_list = shadow.add_parser("list", parents=[common], help="the actions recorded as would write")
    shadow_list.add_argument("tenant")
    shadow_list.set_defaults(run=shadow_list_command)

    replay = commands.add_parser("replay", parents=[common],
                                 help="run a past period's events through the plan and report what it would create")
    replay.add_argument("tenant")
    replay.add_argument("events", metavar="EVENTS", nargs="?",
                        help="JSON Lines of contract envelopes (.jsonl or .jsonl.gz), or a folder of them; "
                             "or leave it out and give --from and --until")
    replay.add_argument("--from", dest="from_day", type=_iso_day, metavar="YYYY-MM-DD",
                        help="read the period from --from to --until from the tenant's OneRoster Absence Service "
                             "(oneroster_no adapter) instead of a file")
    replay.add_argument("--plan", metavar="PLAN.yaml", help="try this plan (rule id -> settings) instead of the school's")
    replay.add_argument("--compare", metavar="PLAN.yaml", help="also replay with this plan: both side by side")
    replay.add_argument("--until", type=_iso_day, metavar="YYYY-MM-DD",
                        help="replay the events up to this day (default: all of them); with --from, the period's "
                             "last day")
    replay.add_argument("--out", metavar="FILE.html", help="the HTML report (default: replay-<tenant>.html here)")
    replay.add_argument("--language", choices=("nb", "nn", "en"), help="default: the school's language")
    replay.set_defaults(run=replay_command)

    case_commands = commands.add_parser("cases", help="guardians' cases on the escalation ladder").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    show = case_commands.add_parser("show", parents=[common], help="print a case and its history")
    show.add_argument("tenant")
    show.add_argument("case")
    show.set_defaults(run=cases_show_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has printed it already
        return int(exc.code or 0)
    try:
        with connection.command_scope():  # an embedded Redis the command starts stops with it
            return args.run(args)
    except ConfigError as exc:
        _print_problems(exc.problems)
        return 1
    except (RedisConnectionError, RedisTimeoutError) as exc:
        print(f"connector: Redis does not answer ({exc})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
