"""Every error the runtime raises, grouped by what the runner should do about it.

::

    ConnectorError
    ├── RecipeError              the recipe or command line is wrong; nothing read or written
    │   ├── RecipeSyntaxError        malformed YAML
    │   ├── RecipeValidationError    a key, type, component or expression is wrong
    │   ├── MissingSecretError       a ${VAR} is not set
    │   └── UnknownComponentError    `use:` names no registered source, sink or transform
    ├── PluginError              a plugin could not be loaded or broke its contract
    ├── FatalError               stop the run; later records would fail the same way
    │   ├── InputError               an input file is missing or unreadable
    │   ├── AuthError                a service refused the credential (401/403)
    │   └── RunInProgressError       another process is running the same recipe
    ├── RetriableError           back off and try again (429, 5xx, timeouts, dropped connections)
    └── SkippableError           give up on this one record, dead-letter it, carry on
        ├── MappingError             the record could not be mapped (bad value, missing field)
        └── InvalidRecord            the payload fails the sink's model, or the service said 4xx

Messages name the recipe, the line, the field and the valid choices. None of them ever contains a
secret. Only ``core.cli`` turns these into exit codes.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConnectorError(Exception):
    """The root of every error this project raises on purpose."""


# --- the recipe or the command line ---------------------------------------------------------


class RecipeError(ConnectorError):
    """The recipe is wrong. ``where`` is ``file:line:column`` when known."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class RecipeSyntaxError(RecipeError):
    """The file is not valid YAML."""


class RecipeValidationError(RecipeError):
    """A key, a type, a component's settings or an expression is wrong."""


class MissingSecretError(RecipeError):
    """A ``${VAR}`` in the recipe names an environment variable that is not set."""


class UnknownComponentError(RecipeError):
    """A name that no plugin registered; the message lists the known names."""

    def __init__(
        self,
        kind: str,
        name: str,
        known: Iterable[str],
        *,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        import difflib  # here: every command imports this module, few ever need it

        close = difflib.get_close_matches(name, self.known, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        message = f"unknown {kind} {name!r}{guess}; known: {', '.join(self.known) or '(none)'}"
        if hint:
            message = f"{message} ({hint})"
        super().__init__(message, where=where)


# --- plugins ---------------------------------------------------------------------------------


class PluginError(ConnectorError):
    """A plugin failed to load, or registered something that breaks the contract."""


# --- stop the run ----------------------------------------------------------------------------


class FatalError(ConnectorError):
    """Stop the run: every later record would fail the same way."""


class InputError(FatalError):
    """An input (a file, a directory) is missing or unreadable."""


class AuthError(FatalError):
    """A service refused the credential. The message never contains the credential."""

    def __init__(
        self, service: str, status: int, detail: str = "", *, credential: str = "credential"
    ) -> None:
        self.service = service
        self.status = status
        # ``credential`` names what was refused ("API key", "access token"), never its value.
        what = "denied access" if status == 403 else f"refused the {credential}"
        message = f"{service} {what} ({status})"
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)


class RunInProgressError(FatalError):
    """Another process holds the recipe's lock; running alongside it could double records."""


# --- retry -----------------------------------------------------------------------------------


class RetriableError(ConnectorError):
    """A transient failure: back off and try again. ``retry_after`` is in seconds, if known."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


# --- one record ------------------------------------------------------------------------------


class SkippableError(ConnectorError):
    """This record cannot be written; dead-letter it and carry on.

    ``field`` names the offending field (a dotted path) when one is to blame.
    """

    outcome = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class MappingError(SkippableError):
    """The record could not be mapped: a transform refused a value, or a needed field is absent."""


class InvalidRecord(SkippableError):
    """The mapped payload fails the sink's model, or the service rejected it with a 4xx."""
