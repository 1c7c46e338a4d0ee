"""Signing in with a Virtuous user: the password grant, two-factor codes, saved tokens."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.virtuous.support import (
    Virtuous,
    donations_csv,
    gifts_recipe,
    report,
    running,
)

USER = {
    "email": "ops@example.org",
    "password": "correct horse 9!",
    "two_factor": True,
    "otp": "424242",
    "org": "org-1",
}


def _recipe(otp: str) -> str:
    return gifts_recipe().replace(
        '    api_key: "${VIRTUOUS_API_KEY}"\n',
        '    username: ops@example.org\n    password: "${VIRTUOUS_PASSWORD}"\n'
        f"    otp: '{otp}'\n",
    )


@contextmanager
def _serving(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[Virtuous]:
    """An emulator that knows USER, with the recipes' ${VIRTUOUS_BASE_URL} and
    ${VIRTUOUS_PASSWORD} pointing at it (and no API key)."""
    with running(users=[USER], **settings) as emulator:
        monkeypatch.setenv("VIRTUOUS_BASE_URL", emulator.url)
        monkeypatch.setenv("VIRTUOUS_PASSWORD", USER["password"])
        yield emulator


def test_two_factor_login_once_then_saved_tokens(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    with _serving(monkeypatch) as emulator:
        donations_csv(tmp_path / "donations.csv", 2)
        recipe = write_recipe(_recipe("424242"))
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 2
        logins = emulator.requests("/Token")
        assert [r["status"] for r in logins] == [202, 200]
        donations_csv(tmp_path / "donations.csv", 3)
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 1
        assert len(emulator.requests("/Token")) == 2  # the saved token was used
    database = (tmp_path / ".connector" / "state.db").read_bytes()
    assert USER["password"].encode() not in database


def test_a_wrong_two_factor_code_stops_the_run(monkeypatch, write_recipe, invoke, tmp_path) -> None:
    with _serving(monkeypatch):
        donations_csv(tmp_path / "donations.csv", 1)
        result = invoke("run", write_recipe(_recipe("000000")))
    assert result.exit_code == 3
    assert "Virtuous" in result.stderr
    assert USER["password"] not in result.output


def _recipe_without_code() -> str:
    return _recipe("").replace("    otp: ''\n", "")


def test_the_two_factor_code_can_come_from_the_environment(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    with _serving(monkeypatch) as emulator:
        monkeypatch.setenv("VIRTUOUS_OTP", "424242")
        donations_csv(tmp_path / "donations.csv", 1)
        result = invoke("run", write_recipe(_recipe_without_code()), "--json")
        assert report(result)["outcomes"]["written"] == 1
        assert [r["status"] for r in emulator.requests("/Token")] == [202, 200]
    assert "424242" not in result.output


def test_no_code_and_no_terminal_says_how_to_give_one(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    with _serving(monkeypatch):
        monkeypatch.delenv("VIRTUOUS_OTP", raising=False)
        donations_csv(tmp_path / "donations.csv", 1)
        result = invoke("run", write_recipe(_recipe_without_code()))
    assert result.exit_code == 3
    assert "Virtuous asked for a two-factor code" in result.stderr
    assert "VIRTUOUS_OTP" in result.stderr


def _read_until(stream: int, text: bytes, seconds: float) -> bytes:
    seen, deadline = b"", time.monotonic() + seconds
    while text not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            chunk = os.read(stream, 1024)
            if not chunk:
                break
            seen += chunk
    return seen


def _run_without_code(folder: Path, url: str) -> dict[str, str]:
    """Two donations and a password recipe with no two-factor code in ``folder``; the
    environment for a ``connector run`` subprocess there, holding no code and no API key."""
    donations_csv(folder / "donations.csv", 2)
    (folder / "recipe.yaml").write_text(_recipe_without_code())
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUOUS_OTP", "VIRTUOUS_API_KEY")}
    return env | {
        "VIRTUOUS_BASE_URL": url,
        "VIRTUOUS_PASSWORD": USER["password"],
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "CONNECTOR_DISABLE_PLUGIN_AUTOLOAD": "1",
    }


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_on_a_terminal_the_code_is_asked_for(tmp_path) -> None:
    with running(users=[USER]) as emulator:
        env = _run_without_code(tmp_path, emulator.url)
        controller, terminal = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-c", "from core.cli import main; main()", "run", "recipe.yaml"],
            cwd=tmp_path,
            env=env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no controlling terminal: the code is read from stdin
        )
        os.close(terminal)
        try:
            assert process.stderr is not None
            prompt = _read_until(process.stderr.fileno(), b"Virtuous two-factor code", 30)
            assert b"Virtuous two-factor code" in prompt
            os.write(controller, b"424242\n")
            out, err = process.communicate(timeout=60)
        finally:
            os.close(controller)
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, (out, err)
        assert [r["status"] for r in emulator.requests("/Token")] == [202, 200]
        assert emulator.state()["counts"]["pending"] == 2
    assert b"424242" not in out + err


def test_expired_or_revoked_tokens_are_refreshed_without_a_new_login(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    # Without VIRTUOUS_OTP on the later runs, a password login would stop at the 202: only the
    # refresh grant can get them through.
    with _serving(monkeypatch, token_lifetime_seconds=2) as emulator:
        state = emulator.app.state.emulator
        monkeypatch.setenv("VIRTUOUS_OTP", USER["otp"])
        recipe = write_recipe(_recipe_without_code())
        donations_csv(tmp_path / "donations.csv", 1)
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 1
        monkeypatch.delenv("VIRTUOUS_OTP")
        first_refresh = set(state.refresh_tokens)

        time.sleep(1.2)  # past the refresh point (half the 2 s lifetime)
        donations_csv(tmp_path / "donations.csv", 2)
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 1
        assert [r["status"] for r in emulator.requests("/Token")] == [202, 200, 200]
        assert not first_refresh & set(state.refresh_tokens)  # rotated, and the new one saved

        state.access_tokens.clear()  # revoked on the server: the next request gets a 401
        donations_csv(tmp_path / "donations.csv", 3)
        assert report(invoke("run", recipe, "--json"))["outcomes"]["written"] == 1
        statuses = [r["status"] for r in emulator.requests() if r["path"] != "/Token"]
        assert statuses[-2:] == [401, 200]  # refreshed once, and the request sent again
        assert [r["status"] for r in emulator.requests("/Token")] == [202, 200, 200, 200]


def _screen(output: bytes) -> list[str]:
    """What a terminal shows after ``output``: enough of one for rich's live line (carriage
    returns, erase-line, cursor-up; other escape sequences are dropped)."""
    rows, row, col = [""], 0, 0
    text = output.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\x1b":
            end = i + 1
            if end < len(text) and text[end] == "[":
                end += 1
                while end < len(text) and not text[end].isalpha():
                    end += 1
            command, argument = text[end : end + 1], text[i + 2 : end]
            if command == "K":
                rows[row] = rows[row][:col] if argument in ("", "0") else ""
            elif command == "A":
                row = max(0, row - int(argument or 1))
            i = end + 1
            continue
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            col = 0
            if row == len(rows):
                rows.append("")
        else:
            line = rows[row].ljust(col)
            rows[row] = line[:col] + char + line[col + 1 :]
            col += 1
        i += 1
    return rows


def _own_terminal() -> None:
    """In the child: a new session whose controlling terminal is its stdin (the pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_code_prompt_stays_on_screen_under_the_progress_line(tmp_path) -> None:
    # On a terminal the run draws a live progress line on stderr; the prompt must not be wiped
    # by its next redraw, or the run looks stuck while it waits for the code.
    with running(users=[USER]) as emulator:
        env = _run_without_code(tmp_path, emulator.url) | {"TERM": "xterm", "COLUMNS": "120"}
        env.pop("NO_COLOR", None)
        controller, terminal = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-c", "from core.cli import main; main()", "run", "recipe.yaml"],
            cwd=tmp_path,
            env=env,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            preexec_fn=_own_terminal,  # a real session: the prompt goes to /dev/tty
        )
        os.close(terminal)
        try:
            seen = _read_until(controller, b"two-factor code", 30)
            seen += _read_until(controller, b"never arrives", 1.0)  # several redraws
            screen = _screen(seen)
            os.write(controller, b"424242\n")
            seen += _read_until(controller, b"records read", 60)
            process.wait(timeout=60)
        finally:
            os.close(controller)
            if process.poll() is None:
                process.kill()
        assert any("type it and press Enter" in line for line in screen), screen
        assert process.returncode == 0, seen
        assert emulator.state()["counts"]["pending"] == 2


def test_saved_tokens_are_readable_by_their_owner_only(
    monkeypatch, write_recipe, invoke, tmp_path
) -> None:
    # The run opens its state database (with the usual umask) before the first login saves the
    # tokens into it: that file, and SQLite's files beside it, must not stay world-readable.
    previous = os.umask(0o022)
    try:
        with _serving(monkeypatch):
            donations_csv(tmp_path / "donations.csv", 1)
            result = invoke("run", write_recipe(_recipe("424242")), "--json")
            assert report(result)["outcomes"]["written"] == 1
    finally:
        os.umask(previous)
    folder = tmp_path / ".connector"
    files = [p for p in folder.iterdir() if p.name.startswith("state.db")]
    assert files
    assert {p.name: oct(p.stat().st_mode & 0o077) for p in files} == {p.name: "0o0" for p in files}
