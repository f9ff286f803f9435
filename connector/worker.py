"""The worker: RQ's SimpleWorker (jobs run in this process, no fork per job), with lighter heartbeats and logs.

RQ sends a standalone worker heartbeat (HSET + 2 EXPIRE) three times per job; with jobs of a few milliseconds that
was a third of the worker's Redis round trips (bench/processing.py --profile). Heartbeats RQ sends inside its own
pipelines (a job's start and end) are kept; a standalone one is skipped while the last is under five seconds old,
far inside the worker key's time-to-live of minutes, so the worker still counts as alive and a job as started.

RQ also logs three INFO lines for every job that succeeds (taken, completed, OK) and one on its result's lifetime.
One job is one webhook delivery, so in a register burst that is thousands of lines a minute saying nothing an
admin acts on, and about a tenth of the worker's CPU per job. They are left out; what RQ says about the worker
itself (start, queues, suspension, shutdown) and every warning or failure still goes to the log.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from rq import SimpleWorker

HEARTBEAT_EVERY_SECONDS = 5.0

# The format strings of RQ's per-job success lines (rq/worker/base.py, rq 3.x), matched exactly: a line RQ adds or
# rewords is simply logged.
PER_JOB_LINES = frozenset({
    "Worker %s: %s: %s",
    "Worker %s: %s: %s (%s)",
    "Successfully completed job %s in %ss on worker %s",
    "Successfully completed %s job in %ss on worker %s",
})


class WithoutPerJobLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg in PER_JOB_LINES)


class ConnectorWorker(SimpleWorker):
    log_result_lifespan = False  # RQ's own switch for its "result discarded immediately" line

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not any(isinstance(f, WithoutPerJobLines) for f in self.log.filters):
            self.log.addFilter(WithoutPerJobLines())

    def heartbeat(self, timeout=None, pipeline=None):
        last = self.last_heartbeat
        if pipeline is None and last is not None:
            if last.tzinfo is None:
                last = last.replace(tzinfo=timezone.utc)
            if (datetime.now(timezone.utc) - last).total_seconds() < HEARTBEAT_EVERY_SECONDS:
                return
        super().heartbeat(timeout, pipeline)
