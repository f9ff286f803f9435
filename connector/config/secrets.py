"""Secrets by reference.

Configuration never holds a secret inline: it names an environment variable or a file. A ``SecretRef`` prints as
its reference, never as its value, so a secret cannot leak through a log line, an error message or a repr.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


# A file secret is read again only when the file changes (a rotation replaces it): the webhook door reveals the
# adapter's secrets on every request, and a stat costs a fraction of a read.
_FILE_CACHE: dict[str, tuple[tuple[int, int], str]] = {}


class SecretUnavailable(Exception):
    """The referenced variable or file is missing; the message names the reference, not a value."""


@dataclass(frozen=True)
class SecretRef:
    kind: str  # "env" or "file"
    name: str  # variable name, or absolute file path
    # What the secret's user would refuse in a value (a webhook secret that is not one): the reason, or None.
    check: Callable[[str], str | None] | None = field(default=None, compare=False, repr=False)

    def reveal(self) -> str:
        if self.kind == "env":
            value = os.environ.get(self.name)
            if not value:
                raise SecretUnavailable(f"environment variable {self.name} is not set")
            return value.strip()
        if self.kind == "file":
            try:
                stamp = os.stat(self.name)
                cached = _FILE_CACHE.get(self.name)
                if cached and cached[0] == (stamp.st_mtime_ns, stamp.st_size):
                    return cached[1]
                value = Path(self.name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretUnavailable(f"secret file {self.name} cannot be read ({exc.strerror})") from None
            if not value:
                raise SecretUnavailable(f"secret file {self.name} is empty")
            _FILE_CACHE[self.name] = ((stamp.st_mtime_ns, stamp.st_size), value)
            return value
        raise SecretUnavailable(f"unknown secret reference kind {self.kind!r}")

    def problem(self) -> str | None:
        """For ``check-config``: why this secret cannot be used now (unreadable, or refused by ``check``), naming the
        reference and never the value; ``None`` when it can."""
        try:
            value = self.reveal()
        except SecretUnavailable as exc:
            return str(exc)
        reason = self.check(value) if self.check is not None else None
        if reason is None:
            return None
        where = f"environment variable {self.name}" if self.kind == "env" else f"secret file {self.name}"
        return f"{where}: {reason}"

    def exposure(self) -> str | None:
        """For ``check-config``: a warning when the secret is a file its group or others can read."""
        if self.kind != "file":
            return None
        try:
            mode = stat.S_IMODE(os.stat(self.name).st_mode)
        except OSError:
            return None  # reported as a problem already
        readers = [who for who, bits in (("its group", 0o070), ("others", 0o007)) if mode & bits]
        if not readers:
            return None
        return f"secret file {self.name} can be read by {' and '.join(readers)} (mode {mode:04o}); make it 0600"

    def __repr__(self) -> str:
        return f"SecretRef({self.kind}:{self.name})"

    __str__ = __repr__


# Relative ``file:`` references are resolved against the configuration file's folder; the loader sets this while
# it loads, because marshmallow fields have no other way to learn where the file was.
import contextvars  # noqa: E402

from marshmallow import ValidationError, fields  # noqa: E402

CONFIG_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("CONFIG_DIR", default=None)


class SecretField(fields.Field):
    """``{env: NAME}`` or ``{file: path}``; an inline string is refused so no secret sits in a config file.

    ``check`` (a function of the value, returning why it is unusable or ``None``) is run by ``check-config`` only:
    the service itself reads secrets when it needs them.
    """

    def __init__(self, *args, check: Callable[[str], str | None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.check = check

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            raise ValidationError("Secrets are given by reference: {env: VARIABLE} or {file: path}, never inline.")
        if not isinstance(value, dict) or len(value) != 1:
            raise ValidationError("Expected exactly one of {env: VARIABLE} or {file: path}.")
        (kind, name), = value.items()
        if kind not in ("env", "file") or not isinstance(name, str) or not name:
            raise ValidationError("Expected exactly one of {env: VARIABLE} or {file: path}.")
        if kind == "file":
            path = Path(name)
            base = CONFIG_DIR.get()
            if not path.is_absolute() and base is not None:
                path = base / path
            name = str(path)
        return SecretRef(kind, name, self.check)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else {value.kind: value.name}
