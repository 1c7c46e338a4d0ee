"""``connector serve``'s command line: what it refuses before it listens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result


def test_a_polled_recipe_is_refused_naming_its_source_line(
    write_recipe: Callable[..., Path], invoke: Callable[..., Result]
) -> None:
    path = write_recipe(
        """
        version: 1
        name: polled
        source:
          use: file.jsonl
          with: {path: in.jsonl}
        sink:
          use: file.jsonl
          with: {path: out.jsonl}
        """
    )
    result = invoke("serve", path, "--port", "0")
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "recipe.yaml:4:3: source file.jsonl is polled; connector serve takes recipes" in said


def test_a_port_in_use_is_a_one_line_error(
    write_recipe: Callable[..., Path], invoke: Callable[..., Result], monkeypatch
) -> None:
    import socket

    monkeypatch.setenv("SECRET", "s3cret-for-test")
    path = write_recipe(
        """
        version: 1
        name: hooks
        source:
          use: virtuous.webhook
          with: {secret: "${SECRET}", events: [GiftCreate]}
        sink:
          use: file.jsonl
          with: {path: out.jsonl}
        """
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", path, "--port", str(port))
    assert result.exit_code == 3
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "s3cret-for-test" not in result.output
