"""The import rules of ``docs/architecture.md``, checked on every module of the package (tests excepted).

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
