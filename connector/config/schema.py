"""Tenants, their adapters, directory and plan settings, loaded from YAML (path from ``CONNECTOR_CONFIG``)."""
from __future__ import annotations

import contextvars
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml
from marshmallow import validates_schema, Schema, ValidationError, fields, post_load, validate

from connector.adapters import adapter_types
from connector.rules.calendar import SchoolCalendar
from connector.rules.plan import merge_plan
from connector.config.secrets import CONFIG_DIR, SecretField, SecretRef
from connector.contract.terms import DIRECTORY_ROLES


@dataclass(frozen=True)
class AdapterConfig:
    name: str
    type: str
    settings: Mapping[str, Any]  # loaded by the adapter type's own ``config_schema``


@dataclass(frozen=True)
class Directory:
    """Who holds which role: school-wide (``roles``) and per group (``groups``: group id -> role -> user id)."""

    roles: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def lookup(self, role: str, group_id: str | None = None) -> str | None:
        if group_id is not None:
            user = self.groups.get(group_id, {}).get(role)
            if user:
                return user
        return self.roles.get(role)


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    language: str  # "nb", "nn" or "en"
    calendar: SchoolCalendar
    adapters: Mapping[str, AdapterConfig]
    directory: Directory
    plan: Mapping[str, Mapping[str, Any]]  # rule id -> settings, defaults already merged in
    # The adapter that writes this school's tasks, alerts and notes; unset, each goes back through the adapter
    # whose event caused it (registers from one platform, tasks in Teams, say, need this set).
    actions_adapter: str | None = None
    # ``live`` writes to the platform; ``shadow`` judges every event as live mode does and records each action as
    # *would write* (``connector shadow list``), writing nothing: how a school sees what the plan would do before
    # it goes live. Read again at the next job when the file changes (``engine.runtime.Runtime.refresh``).
    mode: str = "live"

    @property
    def shadow(self) -> bool:
        return self.mode == SHADOW


LIVE, SHADOW = "live", "shadow"
MODES = (LIVE, SHADOW)


@dataclass(frozen=True)
class RoleRule:
    """Who an OpenID Connect sign-in is: when the id token's ``claim`` equals ``value`` (or, for a list claim such
    as ``groups``, holds it), the person gets ``role`` (``admin``: every school; ``school``: ``tenant`` only)."""

    claim: str
    value: str
    role: str
    tenant: str | None = None


@dataclass(frozen=True)
class OidcProvider:
    """The school owner's OpenID Connect provider (Feide, Microsoft Entra ID): discovery, client, claim mapping."""

    name: str
    label: str
    discovery_url: str
    client_id: str
    client_secret: SecretRef
    scope: str = "openid"
    roles: tuple[RoleRule, ...] = ()


@dataclass(frozen=True)
class AdminConfig:
    """The admin page (``connector.admin``): the key its sessions are signed with, the local admin account's password
    hash (a file written by ``connector admin set-password``, holding the hash only) and the OIDC providers."""

    session_secret: SecretRef
    username: str = "admin"
    password_file: Path | None = None
    providers: Mapping[str, OidcProvider] = field(default_factory=dict)
    secure_cookies: bool = True  # cookies only over HTTPS (behind the TLS proxy); false only on localhost
    # The address people reach the service at (https://connector.kommune.no): the provider's redirect back is built
    # on it, since behind a TLS proxy the app itself sees plain http on 127.0.0.1. Unset: the request's own address.
    public_url: str | None = None


@dataclass(frozen=True)
class OutboxSettings:
    """How sending to a platform backs off (``engine.outbox``): the first retry after about ``backoff_base_seconds``,
    doubling up to ``backoff_cap_seconds``, a dead letter after ``max_attempts`` tries; an action whose job died
    before sending is swept after ``first_try_grace_seconds``. The defaults suit production; tests shorten them."""

    backoff_base_seconds: float = 30.0
    backoff_cap_seconds: float = 3600.0
    max_attempts: int = 12
    first_try_grace_seconds: float = 60.0


@dataclass(frozen=True)
class Config:
    tenants: Mapping[str, Tenant]
    path: Path | None = None
    key_prefix: str = "connector"
    queue_name: str = "connector"
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    admin: AdminConfig | None = None  # no ``admin:`` section: no admin page
    outbox: OutboxSettings = field(default_factory=OutboxSettings)


# --- Loading -------------------------------------------------------------------------------------------------------
# Everything below turns a YAML file into the dataclasses above. Validation is done by marshmallow; each error is
# then traced back through the YAML node tree to the line an admin has to edit, because "field X is wrong"
# without a line is slow to act on in a file with twenty schools.

# Tenant and adapter names end up in URLs (/webhooks/<tenant>/<adapter>) and Redis keys.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


LANGUAGES = ("nb", "nn", "en")

# Only ``check_config`` asks for secrets to be revealed: the service itself reads them when it needs them, so a
# rotated file is picked up without a restart.
_REVEAL_SECRETS: contextvars.ContextVar[bool] = contextvars.ContextVar("_REVEAL_SECRETS", default=False)

FieldPath = tuple  # a position in the configuration: mapping keys and list indices, outermost first


class ConfigError(Exception):
    """Carries `problems`: list[str], each 'path/to/file.yaml:LINE: dotted.path: message'.

    All problems are collected before raising, so an admin fixes a file in one round rather than one error per run.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n" + "\n".join(self.problems))


class _Loader(yaml.SafeLoader):
    """PyYAML fails the whole file with a bare ValueError on an impossible date (2026-11-31); keeping it as text
    lets validation report it at its own line and field instead."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


# --- Fields --------------------------------------------------------------------------------------------------------


class _Day(fields.Field):
    """A date: YAML gives ``date`` objects for unquoted dates, strings when quoted; both mean the same day."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise ValidationError("Not a valid date; use YYYY-MM-DD.")


class _Language(fields.Field):
    """One of LANGUAGES. YAML 1.1 reads an unquoted ``no`` (Norwegian, to many admins) as false, so say so."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and value in LANGUAGES:
            return value
        hint = " (YAML reads unquoted no/yes/on/off as true/false)" if isinstance(value, bool) else ""
        raise ValidationError(f"Must be one of: {', '.join(LANGUAGES)}{hint}.")


class _Named(fields.Field):
    """A mapping whose keys become part of URLs and Redis keys, so they are restricted; values go to ``load_value``.

    Errors come back keyed by name, so a problem points at the right tenant or adapter instead of at the whole map.
    """

    def __init__(self, load_value: Callable[[Any], Any], **kwargs):
        super().__init__(**kwargs)
        self.load_value = load_value

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError("Expected a mapping of names.")
        result: dict[str, Any] = {}
        errors: dict[Any, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
                errors[name] = ["Invalid name: use 1-64 letters, digits, '-' or '_'."]
                continue
            try:
                result[name] = self.load_value(item)
            except ValidationError as exc:
                errors[name] = exc.messages
        if errors:
            raise ValidationError(errors)
        return result


def _user_or_group_id(value: Any) -> str | None:
    """Platform ids are strings, but YAML reads ``10`` or ``7`` as numbers; both are accepted as the same id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


class _RoleMap(fields.Field):
    """Role -> user id. An unknown role is an error because a typo would otherwise leave a role silently unfilled."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError("Expected a mapping of role -> user id.")
        roles: dict[str, str] = {}
        errors: dict[Any, list[str]] = {}
        for role, user in value.items():
            if role not in DIRECTORY_ROLES:
                errors[role] = [f"Unknown role {str(role)!r}. Known: {', '.join(DIRECTORY_ROLES)}."]
            elif _user_or_group_id(user) is None:
                errors[role] = ["Expected a user id."]
            else:
                roles[role] = _user_or_group_id(user)
        if errors:
            raise ValidationError(errors)
        return roles


class _Groups(fields.Field):
    """Group id -> role map, for the roles that differ per class (the contact teacher above all)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError("Expected a mapping of group id -> roles.")
        groups: dict[str, dict[str, str]] = {}
        errors: dict[Any, Any] = {}
        role_map = _RoleMap()
        for group, roles in value.items():
            group_id = _user_or_group_id(group)
            if group_id is None:
                errors[group] = ["Invalid group id."]
                continue
            try:
                groups[group_id] = role_map.deserialize(roles)
            except ValidationError as exc:
                errors[group] = exc.messages
        if errors:
            raise ValidationError(errors)
        return groups


class _Plan(fields.Field):
    """The tenant's overrides merged over the plan's defaults, so a worker never meets a missing or bad setting."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError("Expected a mapping of rule id -> settings.")
        return merge_plan(value)


class _CalendarEntry(fields.Field):
    """One ``calendar:`` item: ``{file: path}`` or an inline school year; loads to a list of year mappings.

    Each year is checked on its own here so that a bad one is reported at its own list item; the years are joined
    into one calendar by the tenant schema.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, Mapping) and set(value) == {"file"}:
            return _calendar_file_years(value["file"])
        if isinstance(value, Mapping):
            _check_year(value)
            return [dict(value)]
        raise ValidationError("Expected {file: path} or a school year (first_day, last_day, breaks).")


def _check_year(year: Mapping[str, Any], where: str = "") -> None:
    try:
        SchoolCalendar.from_mapping([dict(year)])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"{where}{_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def _calendar_file_years(name: Any) -> list[dict[str, Any]]:
    """The school years in a calendar file; errors are keyed ``file`` so they point at the referencing line."""
    if not isinstance(name, str) or not name:
        raise ValidationError({"file": ["Expected a path to a calendar file."]})
    path = Path(name)
    base = CONFIG_DIR.get()
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError({"file": [f"Calendar file {name} cannot be read ({exc.strerror or exc})."]}) from None
    try:
        content = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValidationError({"file": [f"Calendar file {name}{_yaml_error_text(exc)}"]}) from None
    years = content if isinstance(content, list) else [content]
    for index, year in enumerate(years):
        where = f"Calendar file {name}" + (f", year {index + 1}" if len(years) > 1 else "") + ": "
        if not isinstance(year, Mapping):
            raise ValidationError({"file": [f"{where}expected a school year (first_day, last_day, breaks)."]})
        try:
            _check_year(year, where)
        except ValidationError as exc:
            raise ValidationError({"file": exc.messages}) from None
    return [dict(year) for year in years]


# --- Adapters and secrets ------------------------------------------------------------------------------------------


def _load_adapter(raw: Any) -> tuple[str, Mapping[str, Any]]:
    """``type`` picks the adapter; everything else is that adapter's own business, checked by its schema."""
    if not isinstance(raw, Mapping):
        raise ValidationError("Expected a mapping with 'type' and the adapter's settings.")
    settings = dict(raw)
    type_name = settings.pop("type", None)
    types = adapter_types()
    if type_name is None:
        raise ValidationError({"type": ["Missing data for required field."]})
    if not isinstance(type_name, str) or type_name not in types:
        known = ", ".join(sorted(types))
        raise ValidationError({"type": [f"Unknown adapter type {str(type_name)!r}. Known: {known}."]})
    try:
        loaded, errors = types[type_name].config_schema().load(settings), {}
    except ValidationError as exc:
        # The settings that did load still have their secrets checked, so one run reports both kinds of problem.
        loaded, errors = exc.valid_data or {}, exc.messages
    if _REVEAL_SECRETS.get():
        errors = {**(_unrevealable(loaded) or {}), **errors}
    if errors:
        raise ValidationError(errors)
    return type_name, loaded


def _unrevealable(value: Any) -> Any:
    """The secret references under ``value`` that cannot be read, as marshmallow-shaped errors naming references.

    The revealed values are dropped at once: they must never reach a message.
    """
    if isinstance(value, SecretRef):
        problem = value.problem()
        return [problem] if problem else None
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    errors = {key: found for key, item in items if (found := _unrevealable(item))}
    return errors or None


# --- Schemas -------------------------------------------------------------------------------------------------------


class _DirectorySchema(Schema):
    roles = _RoleMap(load_default=dict)
    groups = _Groups(load_default=dict)

    @post_load
    def _build(self, data, **kwargs):
        return Directory(roles=data["roles"], groups=data["groups"])


class _TenantSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1))
    language = _Language(load_default="nb")
    calendar = fields.List(_CalendarEntry(), required=True, validate=validate.Length(min=1))
    extra_days_off = fields.List(_Day(), load_default=list)
    adapters = _Named(_load_adapter, required=True)
    directory = fields.Nested(_DirectorySchema, load_default=Directory)
    plan = _Plan(load_default=lambda: merge_plan(None))
    actions_adapter = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    mode = fields.String(load_default=LIVE, validate=validate.OneOf(MODES))

    @validates_schema
    def _actions_adapter_exists(self, data, **kwargs):
        name = data.get("actions_adapter")
        adapters = data.get("adapters", {})
        if name is not None and name not in adapters:
            raise ValidationError(f"No adapter named {name!r} in this tenant's adapters.", "actions_adapter")
        types = adapter_types()
        read_only = sorted(n for n, (type_name, _) in adapters.items() if not getattr(types[type_name], "writes", True))
        if name is not None and name in read_only:
            raise ValidationError(f"Adapter {name!r} cannot write (its platform is read-only); name one that can.",
                                  "actions_adapter")
        if name is None and read_only:  # a read-only platform's events would have nowhere to write their tasks
            raise ValidationError(f"Adapter {read_only[0]!r} is read-only: name the adapter that writes this school's "
                                  "tasks, alerts and notes (m365 or generic).", "actions_adapter")

    @post_load
    def _build(self, data, **kwargs):
        years = [year for entry in data["calendar"] for year in entry]
        try:
            data["calendar"] = _school_calendar(years, data.pop("extra_days_off"))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(_describe(exc), field_name="calendar") from None
        data["adapters"] = {
            name: AdapterConfig(name=name, type=type_name, settings=settings)
            for name, (type_name, settings) in data["adapters"].items()
        }
        return data


def _school_calendar(years: list[dict[str, Any]], extra_days_off: list[date]) -> SchoolCalendar:
    """All of a tenant's school years as one calendar, plus its own extra days off."""
    years_only = SchoolCalendar.from_mapping(years)
    return SchoolCalendar(years=years_only.years, extra_days_off=tuple(extra_days_off))


def _load_tenant(raw: Any) -> dict[str, Any]:
    return _TenantSchema().load(raw)


ADMIN_ROLES = ("admin", "school")


class _RoleRuleSchema(Schema):
    claim = fields.String(required=True, validate=validate.Length(min=1))
    value = fields.String(required=True, validate=validate.Length(min=1))
    role = fields.String(required=True, validate=validate.OneOf(ADMIN_ROLES))
    tenant = fields.String(load_default=None)

    @validates_schema
    def _school_has_tenant(self, data, **kwargs):
        if data.get("role") == "school" and not data.get("tenant"):
            raise ValidationError("A 'school' role needs the tenant it may see.", "tenant")

    @post_load
    def _build(self, data, **kwargs):
        return RoleRule(**data)


class _ProviderSchema(Schema):
    label = fields.String(load_default=None)
    discovery_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    client_id = fields.String(required=True, validate=validate.Length(min=1))
    client_secret = SecretField(required=True)
    scope = fields.String(load_default="openid")
    roles = fields.List(fields.Nested(_RoleRuleSchema), required=True, validate=validate.Length(min=1))


def _load_provider(raw: Any) -> dict[str, Any]:
    return _ProviderSchema().load(raw)


class _AdminSchema(Schema):
    session_secret = SecretField(required=True)
    username = fields.String(load_default="admin", validate=validate.Regexp(r"^[A-Za-z0-9_.@-]{1,64}$"))
    password_file = fields.String(load_default=None)
    oidc = _Named(_load_provider, load_default=dict)
    secure_cookies = fields.Boolean(load_default=True)
    public_url = fields.Url(load_default=None, require_tld=False, schemes={"http", "https"})

    @validates_schema
    def _secrets_readable(self, data, **kwargs):
        """``check-config`` only: the session key and each provider's client secret can be read now."""
        if not _REVEAL_SECRETS.get():
            return
        errors: dict[str, Any] = {}
        if isinstance(data.get("session_secret"), SecretRef) and (problem := data["session_secret"].problem()):
            errors["session_secret"] = [problem]
        for name, provider in (data.get("oidc") or {}).items():
            if (problem := provider["client_secret"].problem()):
                errors.setdefault("oidc", {})[name] = {"client_secret": [problem]}
        if errors:
            raise ValidationError(errors)

    @post_load
    def _build(self, data, **kwargs):
        password_file = None
        if data["password_file"]:
            password_file = Path(data["password_file"])
            base = CONFIG_DIR.get()
            if not password_file.is_absolute() and base is not None:
                password_file = base / password_file
        providers = {
            name: OidcProvider(name=name, label=loaded["label"] or name, discovery_url=loaded["discovery_url"],
                               client_id=loaded["client_id"], client_secret=loaded["client_secret"],
                               scope=loaded["scope"], roles=tuple(loaded["roles"]))
            for name, loaded in data["oidc"].items()
        }
        return AdminConfig(session_secret=data["session_secret"], username=data["username"],
                           password_file=password_file, providers=providers, secure_cookies=data["secure_cookies"],
                           public_url=data["public_url"])


class _OutboxSchema(Schema):
    backoff_base_seconds = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=3600))
    backoff_cap_seconds = fields.Float(load_default=3600.0, validate=validate.Range(min=0.1, max=24 * 3600))
    max_attempts = fields.Integer(load_default=12, strict=True, validate=validate.Range(min=1, max=100))
    first_try_grace_seconds = fields.Float(load_default=60.0, validate=validate.Range(min=0.5, max=3600))

    @post_load
    def _build(self, data, **kwargs):
        return OutboxSettings(**data)


class _ConfigSchema(Schema):
    key_prefix = fields.String(load_default="connector", validate=validate.Regexp(r"^[A-Za-z0-9_:.-]{1,64}$"))
    queue_name = fields.String(load_default="connector", validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    dedupe_ttl_seconds = fields.Integer(load_default=7 * 24 * 3600, strict=True, validate=validate.Range(min=60))
    outbox = fields.Nested(_OutboxSchema, load_default=OutboxSettings)
    tenants = _Named(_load_tenant, required=True)
    admin = fields.Nested(_AdminSchema, load_default=None)

    @validates_schema
    def _school_roles_name_tenants(self, data, **kwargs):
        admin, tenants = data.get("admin"), data.get("tenants") or {}
        if admin is None:
            return
        errors = {}
        for name, provider in admin.providers.items():
            for index, rule in enumerate(provider.roles):
                if rule.tenant is not None and rule.tenant not in tenants:
                    errors.setdefault(name, {}).setdefault("roles", {})[index] = {
                        "tenant": [f"No tenant named {rule.tenant!r}."]}
        if errors:
            raise ValidationError({"oidc": errors}, "admin")

    @post_load
    def _build(self, data, **kwargs):
        data["tenants"] = {tenant_id: Tenant(id=tenant_id, **loaded) for tenant_id, loaded in data["tenants"].items()}
        return data


# --- Locating problems ---------------------------------------------------------------------------------------------


def _flatten(messages: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, str]]:
    """Marshmallow's nested messages as (path, message) pairs; ``_schema`` means the enclosing mapping itself."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            yield from _flatten(value, path if key == "_schema" else (*path, key))
    elif isinstance(messages, (list, tuple)):
        for message in messages:
            yield from _flatten(message, path)
    else:
        yield path, str(messages)


def _line_of(root: yaml.Node, path: FieldPath) -> int:
    """The 1-based line of the key or item at ``path``; where the path stops existing (a missing field), its parent."""
    node, line = root, root.start_mark.line
    for element in path:
        child = _child(node, element)
        if child is None:
            break
        line, node = child[0].start_mark.line, child[1]
    return line + 1


def _child(node: yaml.Node, element: Any) -> tuple[yaml.Node, yaml.Node] | None:
    """(node to point at, node to descend into) for one step; the key is pointed at, not its possibly long value."""
    if isinstance(node, yaml.MappingNode):
        # YAML keeps the last of duplicate keys, so the last one is the one that was validated.
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode) and key.value == str(element):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(element, int) and 0 <= element < len(node.value):
        return node.value[element], node.value[element]
    return None


def _dotted(path: FieldPath) -> str:
    return ".".join(str(element) for element in path)


def _problem(message: str, path: FieldPath = (), where: str = "") -> str:
    parts = [part for part in (where, _dotted(path), message) if part]
    return ": ".join(parts)


def _duplicate_keys(
    node: yaml.Node, path: FieldPath = (), seen: set[int] | None = None
) -> Iterator[tuple[int, FieldPath, str]]:
    """Duplicate keys are legal YAML where the last silently wins; in a config that is almost always a mistake.

    Run on the composed tree before construction, which folds ``<<`` merges into the mapping: an override of a
    merged key is intended, not a duplicate. ``seen`` guards against aliases that refer to themselves.
    """
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        names: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name in names:
                yield key.start_mark.line + 1, (*path, name), "Duplicate key; only the last one would be used."
            if name is not None:
                names.add(name)
            yield from _duplicate_keys(value, (*path, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, index), seen)


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    """``:LINE: YAML syntax error: problem`` without the snippet of source PyYAML adds: it may hold a secret."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    line = f":{mark.line + 1}" if mark is not None else ""
    return f"{line}: YAML syntax error: {problem}"


# --- Entry points --------------------------------------------------------------------------------------------------


def _compose(text: str, where: str) -> tuple[yaml.Node | None, Any, list[tuple[int, FieldPath, str]]]:
    """The node tree (for line numbers), the plain data (for validation) and any duplicate keys, from one parse."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None, []
            duplicates = list(_duplicate_keys(node))
            return node, loader.construct_document(node), duplicates
        except yaml.YAMLError as exc:
            raise ConfigError([f"{where}{_yaml_error_text(exc)}"]) from None
    finally:
        loader.dispose()


def _validate(data: Any, base_dir: Path | None) -> tuple[dict[str, Any] | None, list[tuple[FieldPath, str]]]:
    if not isinstance(data, Mapping):
        return None, [((), "The configuration must be a mapping with a 'tenants' key.")]
    token = CONFIG_DIR.set(base_dir)
    try:
        return _ConfigSchema().load(data), []
    except ValidationError as exc:
        return None, list(_flatten(exc.messages))
    finally:
        CONFIG_DIR.reset(token)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: configuration file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError([f"{path}: configuration file cannot be read ({reason})"]) from None


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate the configuration; raise ``ConfigError`` listing every problem, each with its line."""
    path = Path(path)
    node, data, located = _compose(_read(path), str(path))
    loaded, errors = _validate(data, path.resolve().parent)
    located += [(1 if node is None else _line_of(node, p), p, m) for p, m in errors]
    if located:
        located.sort(key=lambda item: item[0])
        raise ConfigError([_problem(message, p, f"{path}:{line}") for line, p, message in located])
    return Config(path=path, **loaded)


def config_from_dict(data: dict, base_dir: Path | None = None) -> Config:
    """A configuration built in code (tests, embedding): the same validation, problems without line numbers."""
    loaded, errors = _validate(data, Path(base_dir) if base_dir is not None else None)
    if errors:
        raise ConfigError([_problem(message, p) for p, message in errors])
    return Config(**loaded)


def check_config(path: str | os.PathLike, warnings: list[str] | None = None) -> list[str]:
    """What ``load_config`` would complain about, plus every secret reference that cannot be read right now or holds
    a value its user would refuse (a webhook secret that is no Standard Webhooks secret).

    Meant to run before a deploy, so a missing variable or unreadable file shows up here and not at the first
    webhook. Problems name the reference (variable or file), never a value. Given a list, ``warnings`` receives what
    deserves a look but works (a secret file its group or others can read), once the file has no problems, each as
    ``file:LINE: dotted.path: warning: message``.
    """
    token = _REVEAL_SECRETS.set(True)
    try:
        config = load_config(path)
    except ConfigError as exc:
        return exc.problems
    finally:
        _REVEAL_SECRETS.reset(token)
    if warnings is not None:
        warnings.extend(_secret_warnings(Path(path), config))
    return []


def _secret_warnings(path: Path, config: Config) -> list[str]:
    node, _, _ = _compose(_read(path), str(path))
    found = []
    for tenant_id, tenant in config.tenants.items():
        for name, adapter in tenant.adapters.items():
            for where, ref in _secret_refs(adapter.settings, ("tenants", tenant_id, "adapters", name)):
                warning = ref.exposure()
                if warning:
                    line = 1 if node is None else _line_of(node, where)
                    found.append((line, _problem(f"warning: {warning}", where, f"{path}:{line}")))
    return [text for _, text in sorted(found, key=lambda item: item[0])]


def _secret_refs(value: Any, where: FieldPath) -> Iterator[tuple[FieldPath, SecretRef]]:
    if isinstance(value, SecretRef):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_refs(item, (*where, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _secret_refs(item, (*where, index))
