"""``python -m tests.core.serve.launch ARGS...``: the CLI with ``test.webhook`` registered and
the kill points of ``$KILL_AT`` armed (see :mod:`tests.reliability.kill_points`)."""

from __future__ import annotations

import os

from tests.reliability import kill_points


def main() -> None:
    import core.plugins

    original = core.plugins.load_plugin_manager

    def with_test_source(*, load_entrypoints: bool = True) -> core.plugins.Plugins:
        from tests.core.serve.signed import SignedPlugin

        loaded = original(load_entrypoints=load_entrypoints)
        loaded.pm.register(SignedPlugin(), "test-webhooks")
        return loaded

    core.plugins.load_plugin_manager = with_test_source  # type: ignore[assignment]
    for spec in filter(None, os.environ.get("KILL_AT", "").split(",")):
        name, _, nth = spec.partition(":")
        kill_points.arm(name, int(nth))
    from core.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
