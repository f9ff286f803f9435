"""How the processes log: plain text (the default, for a terminal) or one JSON object per line.

``CONNECTOR_LOG_FORMAT=json`` or ``--log-format json``: each line is ``{"time", "level", "logger", "message",
"delivery"}`` (and ``exception`` with the traceback when there is one). ``delivery`` is the delivery's id, the same
at the door and in the job: the RQ job id the door derives from the ``webhook-id`` digest (never the header itself),
which the worker's job carries (:func:`in_job`). Outside a delivery it is ``null``. What is logged does not change
with the format: ids, codes and counts, never a message body or a reason.
"""
from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

delivery_id: ContextVar[str | None] = ContextVar("delivery_id", default=None)


class WithDelivery(logging.Filter):
    """Puts the current delivery id on every record (``record.delivery``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery = delivery_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "delivery": getattr(record, "delivery", delivery_id.get()),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: anything a terminal or a log shipper
# may take for the end of a line or an escape sequence.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


class TextFormatter(logging.Formatter):
    """One record, one line: control characters in the message (an id a platform sent, however the door's checks
    were passed) are written escaped, so no value can forge a line of its own. A traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_CONTROL)


def chosen_format(option: str | None = None) -> str:
    chosen = (option or os.environ.get("CONNECTOR_LOG_FORMAT") or "text").lower()
    return chosen if chosen in FORMATS else "text"


def handler(fmt: str, stream=None) -> logging.Handler:
    out = logging.StreamHandler(stream)
    out.addFilter(WithDelivery())
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    return out


def configure(option: str | None = None) -> None:
    """The root logger at INFO, to stderr, in the chosen format (once per process, as ``logging.basicConfig``)."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(handler(chosen_format(option)))
    root.setLevel(logging.INFO)


@contextmanager
def for_delivery(ident: str | None):
    """Log lines inside carry ``ident`` as their ``delivery``."""
    token = delivery_id.set(ident)
    try:
        yield
    finally:
        delivery_id.reset(token)


def in_job():
    """The current RQ job's id as the delivery id (the door set the same one on its side)."""
    from rq import get_current_job

    job = get_current_job()
    return for_delivery(job.id if job is not None else delivery_id.get())
