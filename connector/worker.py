"""The worker: RQ's SimpleWorker (jobs run in this process, no fork per job), with lighter heartbeats.

RQ sends a standalone worker heartbeat (HSET + 2 EXPIRE) three times per job; with jobs of a few milliseconds that
was a third of the worker's Redis round trips (bench/processing.py --profile). Heartbeats RQ sends inside its own
pipelines (a job's start and end) are kept; a standalone one is skipped while the last is under five seconds old,
far inside the worker key's time-to-live of minutes, so the worker still counts as alive and a job as started.
"""
from __future__ import annotations

from datetime import datetime, timezone

from rq import SimpleWorker

HEARTBEAT_EVERY_SECONDS = 5.0


class ConnectorWorker(SimpleWorker):
    def heartbeat(self, timeout=None, pipeline=None):
        last = self.last_heartbeat
        if pipeline is None and last is not None:
            if last.tzinfo is None:
                last = last.replace(tzinfo=timezone.utc)
            if (datetime.now(timezone.utc) - last).total_seconds() < HEARTBEAT_EVERY_SECONDS:
                return
        super().heartbeat(timeout, pipeline)
