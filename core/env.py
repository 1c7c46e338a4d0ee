"""What the environment says: ``${VAR}`` and ``${VAR:-default}`` in recipes (from the
environment and an optional ``.env``), and the process's settings in seconds
(``CONNECTOR_LEASE_SECONDS``...)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError

from core.errors import MissingSecretError, RecipeError

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
# Values of variables named like these are credentials: they are registered for redaction.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASS|PRIVATE|OTP|CREDENTIAL|AUTH", re.IGNORECASE)
#: The error type of a settings check that reads a secret's value (see :func:`secret_format_error`).
SECRET_FORMAT = "secret_format"


def secret_format_error(setting: str, message: str) -> PydanticCustomError:
    """An error of a whole-settings check that reads the value of ``setting`` (a Mailchimp key's
    data center): ``connector validate`` without the secret excuses it while a placeholder stands
    there, and no other whole-settings error (a missing ``events:`` is refused either way)."""
    return PydanticCustomError(SECRET_FORMAT, message, {"setting": setting})


def environment(recipe_dir: Path) -> dict[str, str]:
    """The process environment over the values of ``.env`` files (the recipe's, then the cwd's).

    Real environment variables win, so a deployment can override a developer's ``.env``.
    """
    merged: dict[str, str] = {}
    for candidate in (Path.cwd() / ".env", recipe_dir / ".env"):
        if candidate.is_file():
            from dotenv import dotenv_values  # imported only when there is a .env (start-up)

            merged.update({k: v for k, v in dotenv_values(candidate).items() if v is not None})
    merged.update(os.environ)
    return merged


class WithPlaceholders(dict[str, str]):
    """An environment in which every unset variable reads as ``<NAME>``.

    ``connector test`` maps records and never reaches a service, so a recipe's tests run on a
    machine that holds none of its secrets (a CI job, a newcomer's laptop).
    """

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        super().__init__(values or {})
        #: The variables read as placeholders so far: what reaching a service would need.
        self.missing: set[str] = set()

    def placeholder(self, name: str) -> str:
        self.missing.add(name)
        return f"<{name}>"

    def holds_placeholder(self, data: Any) -> bool:
        """Whether a placeholder stands somewhere in ``data`` (a component's ``with:``)."""
        return bool(self.placeholders_in(data))

    def placeholders_in(self, data: Any) -> list[str]:
        """The variables whose placeholders stand in ``data``, in order, each once."""
        if isinstance(data, dict):
            data = list(data.values())
        if isinstance(data, list):
            return list(dict.fromkeys(n for v in data for n in self.placeholders_in(v)))
        if not isinstance(data, str):
            return []
        return [m.group(1) for m in _PLACEHOLDER.finditer(data) if m.group(1) in self.missing]


def interpolate(
    data: Any,
    env: Mapping[str, str],
    where: Callable[[tuple[str | int, ...]], str],
    on_secret: Callable[[str], None],
    path: tuple[str | int, ...] = (),
) -> Any:
    """Replace every ``${VAR}`` in the strings of ``data``; a missing variable is an error."""
    if isinstance(data, dict):
        return {k: interpolate(v, env, where, on_secret, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, env, where, on_secret, (*path, i)) for i, v in enumerate(data)]
    if not isinstance(data, str) or "$" not in data:
        return data

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        # An empty credential is never meant: it would be sent as "Bearer " and refused.
        empty_secret = value == "" and _SECRET_NAME.search(name) is not None
        if value is None or (value == "" and default is not None) or empty_secret:
            if default is not None:
                value = default
            elif isinstance(env, WithPlaceholders):
                return env.placeholder(name)
            else:
                raise MissingSecretError(_unset(name, value), where=where(path))
        if _SECRET_NAME.search(name) and value:
            on_secret(value)
        return value

    return _REFERENCE.sub(substitute, data)


def references(text: str) -> dict[str, str | None]:
    """The variables ``text`` names, each with its default (None when it has none): what a
    recipe needs set (``connector init`` writes them to ``.env.example``)."""
    found: dict[str, str | None] = {}
    for match in _REFERENCE.finditer(text):
        name, default = match.group(1), match.group(2)
        if name is not None and found.get(name) is None:
            found[name] = default
    return found


def _unset(name: str, value: str | None) -> str:
    if value is None:
        return (
            f"environment variable {name} is not set; set it, add it to .env, or write"
            f" ${{{name}:-default}}"
        )
    return f"environment variable {name} is set but empty; give it the credential (check .env)"


def seconds_setting(variable: str, default: float, least: float) -> float:
    """The seconds the environment variable ``variable`` gives (``default`` when it is unset or
    blank); a :class:`RecipeError` naming it when it is no number, or less than ``least``."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (seconds >= least and math.isfinite(seconds)):
        msg = f"{variable} must be a number of seconds ({least:g} or more), not {text!r}"
        raise RecipeError(msg)
    return seconds
