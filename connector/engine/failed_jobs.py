"""Jobs that failed for good, as an admin sees them: which delivery or due item, when, why — and a way to retry.

RQ keeps a job that used up its retries in the queue's failed-job registry for ``FAILED_JOB_TTL`` (7 days). Its
exception text may quote what the job was working on, and its arguments hold the delivery's events, so neither is
shown: the reason is the exception's type and where it was raised (``absence.py:123 in on_attendance``), the rest
ids and times.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from rq.job import Job
from rq.serializers import JSONSerializer

from connector.engine.runtime import Runtime

FRAME = re.compile(r'File "(?:[^"]*/)?([^"/]+)", line (\d+), in (\w+)')
EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


@dataclass(frozen=True)
class FailedJob:
    id: str
    what: str  # "delivery" or "due items"
    tenant: str
    adapter: str
    failed_at: datetime | None
    reason: str


def reason_of(exc_string: str | None) -> str:
    """``<ExceptionType> at <file>:<line> in <function>``, from RQ's traceback text, without the exception's message."""
    if not exc_string:
        return "unknown"
    lines = [line.strip() for line in exc_string.strip().splitlines() if line.strip()]
    kind = next((m.group(1) for line in reversed(lines) if (m := EXCEPTION.match(line))
                 and not line.startswith(("File ", "Traceback"))), "Exception")
    frames = FRAME.findall(exc_string)
    if not frames:
        return kind.rsplit(".", 1)[-1]
    file, line, function = frames[-1]
    return f"{kind.rsplit('.', 1)[-1]} at {file}:{line} in {function}"


def _describe(job: Job) -> FailedJob:
    args = list(job.args or [])
    if job.func_name.endswith("process_delivery"):
        what, tenant, adapter = "delivery", str(args[0]), str(args[1])
    else:
        members = args[0] if args else []
        tenants = sorted({str(m).split("|", 1)[0] for m in members})
        what, tenant, adapter = f"due items ({len(members)})", ",".join(tenants), "-"
    result = job.latest_result()
    exc_string = result.exc_string if result is not None else job.exc_info
    return FailedJob(job.id, what, tenant, adapter, job.ended_at, reason_of(exc_string))


def failed_jobs(rt: Runtime) -> list[FailedJob]:
    registry = rt.queue.failed_job_registry
    jobs = Job.fetch_many(registry.get_job_ids(), connection=rt.redis, serializer=JSONSerializer)
    return sorted((_describe(job) for job in jobs if job is not None), key=lambda j: (j.failed_at or datetime.min, j.id))


def retry(rt: Runtime, job_id: str) -> bool:
    """Back onto the queue, as it was queued first (RQ's own requeue); ``False`` if no such failed job."""
    registry = rt.queue.failed_job_registry
    if job_id not in registry.get_job_ids():
        return False
    registry.requeue(job_id)
    return True
