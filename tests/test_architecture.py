"""The import rules of ``docs/architecture.md``, checked on every module of the package (tests excepted), and its rule
that only the store calls Redis.

A forbidden import fails here with the module, the line and the rule it breaks, so the layout cannot drift back to
"everything imports everything". Imports inside functions count too: a late import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "connector"

# layer -> (what it may not import, why)
FORBIDDEN = {
    "connector.rules": (
        ("connector.store", "connector.engine", "connector.webhooks", "connector.adapters", "connector.config",
         "flask", "redis", "rq", "requests"),
        "rules are plain functions over plain data: no store, HTTP, adapters or configuration loader",
    ),
    "connector.adapters": (
        ("connector.rules", "connector.engine", "connector.store", "connector.webhooks", "connector.config.schema"),
        "an adapter speaks the contract and its platform; rules, engine and store are not its business",
    ),
    "connector.store": (
        ("connector.engine", "connector.webhooks", "connector.adapters", "connector.config", "flask"),
        "the store knows how state is laid out, not what it means or where it came from",
    ),
    "connector.contract": (
        ("connector.rules", "connector.engine", "connector.store", "connector.webhooks", "connector.adapters",
         "connector.config", "flask", "redis", "rq"),
        "the contract is what crosses the edges; it depends on nothing of the connector's",
    ),
    "connector.config": (
        ("connector.engine", "connector.store", "connector.webhooks", "redis", "rq"),
        "configuration is loaded and checked; it runs nothing",
    ),
    "connector.webhooks": (
        ("connector.rules", "connector.store"),
        "the door is HTTP only: it reaches state through the engine",
    ),
    "connector.admin": (
        ("connector.webhooks", "connector.adapters", "redis", "rq"),
        "the admin page reads through the store and acts through the engine, never the door, an adapter or RQ",
    ),
}


def is_test(path: Path) -> bool:
    return path.name in ("tests.py", "conftest.py") or path.name.startswith("test_")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # "from connector import outbox" names a module
                yield node.lineno, f"{node.module}.{alias.name}"


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if is_test(path):
            continue
        name = module_name(path)
        for layer, (forbidden, why) in FORBIDDEN.items():
            if not (name == layer or name.startswith(layer + ".")):
                continue
            reported = set()
            for line, imported in imports(path):
                if line in reported:
                    continue
                if any(imported == bad or imported.startswith(bad + ".") for bad in forbidden):
                    reported.add(line)
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {imported} ({why})")
    return sorted(found)


def test_no_module_breaks_the_import_rules():
    assert violations() == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_says_what_it_owns_and_may_import(layer):
    doc = ast.get_docstring(ast.parse((PACKAGE.parent / layer.replace(".", "/") / "__init__.py").read_text()))
    assert doc and "Owns" in doc and "import" in doc


def test_the_check_catches_a_forbidden_import(tmp_path, monkeypatch):
    """The checker itself can fail: a rule module importing the store is reported."""
    fake = tmp_path / "connector"
    (fake / "rules").mkdir(parents=True)
    (fake / "rules" / "bad.py").write_text("def f():\n    from connector.store.keys import Keys\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert violations() == ["connector/rules/bad.py:2: imports connector.store.keys (" + FORBIDDEN["connector.rules"][1] + ")"]


# --- Only the store calls Redis ------------------------------------------------------------------------------------

# Modules that may call Redis themselves, and why. Everything else hands the connection to one of them.
REDIS_ALLOWED = {
    "connector.store": "the store owns every key and layout, and is the one way state is read and written",
    "connector.engine.runtime": "holds the process's connection (and gives it to RQ's Queue)",
    "connector.engine.rq_compat": "writes RQ's own job layout, which is RQ's state, not the connector's",
    "connector.engine.failed_jobs": "reads RQ's failed-job registry through RQ's API: RQ's state",
}
CONNECTIONS = ("redis", "pipe", "pipeline")  # names a connection or a pipeline goes by
REDIS_CALLS = ("pipeline", "Redis", "StrictRedis", "eval", "evalsha", "script_load", "register_script")
WHY_STORE = "only the store calls Redis: hand the connection to a function of connector.store"


def redis_uses(path: Path):
    """``(line, what)`` for each way the module reaches Redis itself: importing redis (its exceptions excepted: a
    door catching ``RedisError`` calls nothing), touching a ``.redis`` connection other than handing it on as an
    argument, calling a method of something named ``redis``, ``pipe`` or ``pipeline``, or making a client, a
    pipeline or a script."""
    tree = ast.parse(path.read_text(), str(path))
    handed_on = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
                 for arg in [*node.args, *(keyword.value for keyword in node.keywords)]}
    for line, imported in imports(path):
        if (imported == "redis" or imported.startswith("redis.")) and not imported.startswith("redis.exceptions"):
            yield line, f"imports {imported}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "redis" and id(node) not in handed_on:
            yield node.lineno, f"uses {ast.unparse(node)}"
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in CONNECTIONS:
            yield node.lineno, f"calls {ast.unparse(func)}"
        elif (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) in REDIS_CALLS:
            yield node.lineno, f"calls {ast.unparse(func)}"


def redis_violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if is_test(path) or any(name == allowed or name.startswith(allowed + ".") for allowed in REDIS_ALLOWED):
            continue
        for line, what in sorted(set(redis_uses(path))):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what} ({WHY_STORE})")
    return found


def test_no_module_outside_the_store_calls_redis():
    assert redis_violations() == []


@pytest.mark.parametrize("allowed", sorted(REDIS_ALLOWED))
def test_each_module_allowed_to_call_redis_exists(allowed):
    """An allowance for a module that was renamed or removed would wave through whatever takes its name."""
    path = PACKAGE.parent / allowed.replace(".", "/")
    assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_the_check_catches_a_module_calling_redis(tmp_path, monkeypatch):
    """The checker itself can fail: the engine reaching into Redis is reported, handing on the connection is not,
    and the runtime, which holds the connection, may use it."""
    fake = tmp_path / "connector"
    (fake / "engine").mkdir(parents=True)
    (fake / "engine" / "bad.py").write_text(
        "from redis.exceptions import RedisError\n"
        "from connector.store import due\n"
        "def f(rt, member):\n"
        "    due.forget(rt.redis, rt.keys, member)\n"
        "    rt.redis.set('k', '1')\n"
        "    with rt.redis.pipeline() as pipe:\n"
        "        pipe.sadd('s', 'm')\n"
        "def g(redis):\n"
        "    return redis.get('k')\n"
    )
    (fake / "engine" / "runtime.py").write_text("def ping(self):\n    return self.redis.ping()\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert redis_violations() == [f"connector/engine/bad.py:{line}: {what} ({WHY_STORE})" for line, what in [
        (5, "uses rt.redis"), (6, "calls rt.redis.pipeline"), (6, "uses rt.redis"), (7, "calls pipe.sadd"),
        (9, "calls redis.get"),
    ]]
