"""Secrets by reference.

Configuration never holds a secret inline: it names an environment variable or a file. A ``SecretRef`` prints as
its reference, never as its value, so a secret cannot leak through a log line, an error message or a repr.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


# A file secret is read again only when the file changes (a rotation replaces it): the webhook door reveals the
# adapter's secrets on every request, and a stat costs a fraction of a read.
_FILE_CACHE: dict[str, tuple[tuple[int, int], str]] = {}


class SecretUnavailable(Exception):
    """The referenced variable or file is missing; the message names the reference, not a value."""


@dataclass(frozen=True)
class SecretRef:
    kind: str  # "env" or "file"
    name: str  # variable name, or absolute file path

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

    def __repr__(self) -> str:
        return f"SecretRef({self.kind}:{self.name})"

    __str__ = __repr__


# Relative ``file:`` references are resolved against the configuration file's folder; the loader sets this while
# it loads, because marshmallow fields have no other way to learn where the file was.
import contextvars  # noqa: E402

from marshmallow import ValidationError, fields  # noqa: E402

CONFIG_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar("CONFIG_DIR", default=None)


class SecretField(fields.Field):
    """``{env: NAME}`` or ``{file: path}``; an inline string is refused so no secret sits in a config file."""

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
        return SecretRef(kind, name)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else {value.kind: value.name}
