"""Keeping secrets out of logs, error messages and reports.

Two complementary nets:

* by *shape*: :func:`redact_headers` and :func:`redact_url` mask anything whose name says it is a
  credential (``Authorization``, ``api_key=``...), whether or not its value is known;
* by *value*: :func:`register_secret` records a credential once (the auth classes do it when they
  are built, the recipe loader for every ``${VAR}`` it resolves), and :func:`redact_text` and
  :class:`SecretFilter` replace that exact value wherever it shows up, even inside a server's error
  body that echoes it back.

The registry is module-level on purpose: a secret loaded anywhere must be scrubbed everywhere.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"

# Values shorter than this are not registered: masking every "1" or "abc" in the logs would make
# them unreadable, and such values are not credentials anyway.
_MIN_SECRET_LENGTH = 6

_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_SENSITIVE_WORDS = ("key", "token", "secret", "password", "passwd", "signature")
_SENSITIVE_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "client_secret",
        "password",
        "otp",
        "signature",
        "sig",
    }
)
# The same parameters, found inside free text (an exception message, a log line with a URL).
# This pattern and the next are compiled where first used (``re`` keeps them): a command that
# masks nothing, like ``validate``, does not pay for them.
_PARAM_IN_TEXT = (
    r"(?i)([?&;](?:[\w.-]*(?:key|token|secret|password|signature)[\w.-]*|otp|sig)=)[^&\s\"'<>]+"
)

# A URL's userinfo inside free text (``scheme://user:password@host``, or a token alone before the
# ``@``): httpx logs each request's URL whole, and a recipe may put credentials there.
_USERINFO_IN_TEXT = r"(?i)\b([a-z][a-z0-9+.-]*://)(?:([^\s/?#@:]*):)?[^\s/?#@]+@"


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, user = match.group(1), match.group(2)
    return f"{scheme}{user}:{MASK}@" if user is not None else f"{scheme}{MASK}@"


_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so every later log record and error message has it masked.

    Empty and very short values are ignored. Registering the same value twice is harmless.
    """
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.add(value)


def register_basic_credentials(user: str, password: str) -> None:
    """Register a password and the base64 form it takes inside a ``Basic`` header."""
    register_secret(password)
    register_secret(base64.b64encode(f"{user}:{password}".encode()).decode("ascii"))


def _is_sensitive_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SENSITIVE_HEADERS or any(word in lowered for word in _SENSITIVE_WORDS)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of ``headers`` with credential-bearing values replaced by ``***``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name: MASK if _is_sensitive_name(name) else value for name, value in items}


def redact_url(url: object) -> str:
    """``url`` as text with credential query parameters and any userinfo password masked."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, sep, _value = pair.partition("=")
        decoded = unquote_plus(name).lower()
        if sep and (decoded in _SENSITIVE_PARAMS or _is_sensitive_name(decoded)):
            pair = f"{name}={MASK}"
        pairs.append(pair)
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))
    return redact_text(rebuilt)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every registered secret, every value in ``secrets``, every credential query
    parameter and every password in a URL's userinfo replaced by ``***``."""
    with _lock:
        known = set(_secrets)
    known.update(value for value in secrets if value)
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted(known, key=len, reverse=True):
        if value not in text:
            continue
        if value.isdigit():
            # A numeric secret (a two-factor code such as 000000) is masked where it stands
            # alone, never inside a longer number: a money total of 1000000.00 stays readable.
            text = re.sub(rf"(?<!\d){value}(?!\d)", MASK, text)
        else:
            text = text.replace(value, MASK)
    text = re.sub(_USERINFO_IN_TEXT, _mask_userinfo, text)
    return re.sub(_PARAM_IN_TEXT, rf"\1{MASK}", text)


class SecretFilter(logging.Filter):
    """A logging filter that scrubs registered secrets from a record's message and traceback.

    It never drops a record. Attach it to handlers (the CLI does) or loggers; :func:`install`
    attaches it to the loggers of this package and of httpx/httpcore.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it, the filter must not raise
            return True
        scrubbed = redact_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once set, so the scrubbed traceback is what they print.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


_FILTER = SecretFilter()
# Filters on a logger do not apply to its children, so every logger that may print a URL or a
# header is named: httpx logs each request's full URL at INFO (query keys included).
_LOGGERS = (
    "core.http",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def install() -> None:
    """Attach the shared :class:`SecretFilter` to the HTTP loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
