"""The deployment files in ``deploy/`` say what they should and name commands that exist (no image is built here)."""
from __future__ import annotations

import configparser
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connector import cli

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = ("connector-web.service", "connector-worker.service", "connector-scheduler.service", "connector-poll.service")


@pytest.fixture(scope="module")
def subcommands() -> set[str]:
    """The subcommands ``connector --help`` lists (under "positional arguments", one per line)."""
    out = subprocess.run([sys.executable, "-m", "connector.cli", "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    listed = set(re.findall(r"^    ([a-z][a-z-]+)\s", out, flags=re.MULTILINE))
    assert {"web", "worker", "scheduler", "poll", "serve", "check-config", "send-test"} <= listed, out
    return listed


def accepted(argv: list[str]) -> None:
    """The command line parses with the connector's own parser (options included)."""
    args = cli.build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_compose_names_the_services_and_redis_appends_to_a_volume(subcommands):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "scheduler", "poll", "redis"} <= set(services)

    redis = services["redis"]
    command = redis["command"] if isinstance(redis["command"], str) else " ".join(redis["command"])
    assert "--appendonly yes" in command
    (volume,) = [v for v in redis["volumes"] if v.endswith(":/data")]
    assert volume.split(":")[0] in compose["volumes"]  # a named volume, kept across restarts

    for name, subcommand in (("web", "web"), ("worker", "worker"), ("scheduler", "scheduler"), ("poll", "poll")):
        service = services[name]
        assert service["command"][0] == subcommand and subcommand in subcommands
        accepted(service["command"])
        env = service["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        config = env["CONNECTOR_CONFIG"]
        assert any(mount.split(":")[1] == str(Path(config).parent) for mount in service["volumes"]), name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert set(service["secrets"]) <= set(compose["secrets"])
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "ports" in services["web"] and "ports" not in services["worker"]
    # secrets come from files or the environment, never written into the compose file
    assert all("file" in secret for secret in compose["secrets"].values())
    assert not re.search(r"whsec_|Bearer ", (DEPLOY / "compose.yaml").read_text())


def test_the_dockerfile_installs_the_package_as_a_non_root_user_with_connector_as_entrypoint(subcommands):
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.12-slim"
    assert json.loads(next(l for l in instructions if l.startswith("ENTRYPOINT "))[len("ENTRYPOINT "):]) == ["connector"]
    command = json.loads(next(l for l in instructions if l.startswith("CMD "))[len("CMD "):])
    assert command[0] in subcommands
    accepted(command)
    assert any(re.match(r"RUN pip install \.( |$)", l) for l in instructions)
    (user,) = [l for l in instructions if l.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("root", "0")
    assert "useradd" in " ".join(instructions)
    # what the image copies exists, and is enough for pip install . (pyproject's readme and the package)
    for copied in (l.split()[1:-1] for l in instructions if l.startswith("COPY ")):
        for path in copied:
            assert (ROOT / path).exists(), path


@pytest.mark.parametrize("unit", UNITS)
def test_the_systemd_units_run_existing_subcommands(unit, subcommands):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / unit).read_text())
    service = parser["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "connector"
    assert argv[1] in subcommands and argv[1] == unit.removeprefix("connector-").removesuffix(".service")
    accepted(argv[1:])
    assert service["User"] == "connector"
    assert "REDIS_URL=" in (DEPLOY / unit).read_text()  # never the embedded Redis in production
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_the_deployment_guide_is_linked_from_running_in_production_and_covers_its_topics():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    assert "(docs/deployment.md)" in section
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for topic in ("## TLS at a reverse proxy", "proxy_request_buffering on", "request_buffers", "sync",
                  "## How many processes per core", "## Redis: persistence and backup", "appendonly yes", "BGSAVE",
                  "## Upgrades", "connector.engine.jobs", "## Scaling out", "Sentinel", "One Redis per school owner"):
        assert topic in guide, topic
    for link in re.findall(r"\]\((\.\./[^)#]+)\)", guide):  # every file the guide links to exists
        assert (ROOT / "docs" / link).resolve().exists(), link


def test_readme_set_up_commands_are_unchanged():
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/connector serve\n" in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q\n" in readme
