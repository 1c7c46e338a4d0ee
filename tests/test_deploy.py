"""docs/deploy.md and the files its commands use agree: every compose command names services the
compose file defines, the image copies what exists, the state URL is Postgres's, and no port of
the compose file listens beyond loopback. (The machines running the suite have no Docker daemon:
the files are checked, not started.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def _compose_commands() -> list[list[str]]:
    """Each ``docker compose -f deploy/docker-compose.yml ...`` of the docs, as its words."""
    joined = DOCS.replace("\\\n", " ")
    found = re.findall(r"docker compose -f deploy/docker-compose\.yml ([^\n`]+)", joined)
    return [shlex.split(command) for command in found]


def test_every_compose_command_of_the_docs_names_services_the_file_defines() -> None:
    commands = _compose_commands()
    assert len(commands) >= 2
    for words in commands:
        verb, *rest = words
        named = [w for w in rest if not w.startswith("-")]
        if verb == "run":
            named = named[:1]  # the service; what follows is the connector command
        assert named, words
        assert set(named) <= set(COMPOSE["services"]), words


def test_the_image_copies_what_exists_and_the_state_is_postgres() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            assert all((ROOT / source).exists() for source in sources), line
    environment = COMPOSE["services"]["connector"]["environment"]
    assert environment["CONNECTOR_STATE_URL"].startswith("postgresql://")
    assert "${CONNECTOR_DB_PASSWORD}" in environment["CONNECTOR_STATE_URL"]  # never written in


def test_no_port_listens_beyond_loopback() -> None:
    ports = [port for service in COMPOSE["services"].values() for port in service.get("ports", [])]
    assert ports
    assert all(port.startswith("127.0.0.1:") for port in ports)
