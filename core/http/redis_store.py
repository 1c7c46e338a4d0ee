"""Rate budgets in Redis (``CONNECTOR_RATE_URL=redis://...``), shared by every machine using it.

The same arithmetic as the SQLite budget (:mod:`core.http.budget`): a sliding-window log per
budget key, capped further by what the server reported. A budget is two keys, in one hash slot
(``{key}``), so a Redis Cluster keeps them together:

* ``<prefix>{key}:log``, a sorted set: one member per request, scored by when it counts from;
* ``<prefix>{key}:server``, a hash: what the server last said (:class:`ServerReport`'s fields).

A claim is one Lua script, which Redis runs atomically: two machines can never both see room for
the last request of a window, and a claim costs one round trip. The server's reports are merged
by :meth:`ServerReport.merged` itself inside a ``WATCH`` transaction (optimistic: retried when
another machine wrote the report meanwhile), so both stores read headers exactly alike.

Times are the callers' clocks, as with SQLite and Postgres budgets: machines sharing a budget
need their clocks kept (NTP), a second off only shifts a window by a second.
"""

from __future__ import annotations

import functools
import os
import uuid
from typing import Any
from urllib.parse import urlsplit

from core.errors import FatalError, RecipeError
from core.http.budget import BudgetStore, ServerReport, Usage

#: The variable naming the Redis that holds every rate budget.
RATE_URL_VARIABLE = "CONNECTOR_RATE_URL"
SCHEMES = ("redis://", "rediss://", "unix://")
#: Prefix of every key this store writes; ``CONNECTOR_RATE_PREFIX`` keeps deployments (or test
#: runs) sharing one Redis apart.
PREFIX_VARIABLE = "CONNECTOR_RATE_PREFIX"
DEFAULT_PREFIX = "connector:budget:"
# A server's report outlives its window (the window length it told is worth keeping), not forever.
_REPORT_TTL = 86_400
_FIELDS = ("blocked_until", "remaining", "reset", "limit", "window")

# KEYS: log, server. ARGV: limit, window, now, member.
# The server's word first (blocked, or nothing left until its reset), then every budget that
# applies: ours, and the server's limit in its own window (never longer than ours).
_TAKE = """
-- Lua turns a number into text with 14 digits, too few for an epoch time to the microsecond.
local function exact(x) return string.format('%.17g', x) end
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[2], 'blocked_until', 'remaining', 'reset', 'limit', 'window')
local blocked, remaining, reset = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
local slimit, swindow = tonumber(s[4]), tonumber(s[5])
if blocked and blocked > now then return exact(blocked - now) end
local capped = remaining ~= nil and reset ~= nil and reset > now
if capped and remaining < 1 then return exact(reset - now) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', exact(now - window))
local budgets = {{limit, window}}
if slimit and swindow and swindow > 0 then
  budgets[2] = {slimit, math.min(swindow, window)}
end
local wait = 0
for _, budget in ipairs(budgets) do
  local n, per = budget[1], budget[2]
  local since = '(' .. exact(now - per)
  local count = redis.call('ZCOUNT', KEYS[1], since, '+inf')
  if count >= n then
    local oldest = redis.call(
      'ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', count - n, 1)
    wait = math.max(wait, tonumber(oldest[2]) + per - now, 0.001)
  end
end
if wait > 0 then return exact(wait) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 60)
if capped then redis.call('HINCRBY', KEYS[2], 'remaining', -1) end
return '0'
"""

# KEYS: log. ARGV: claimed_at, now. The request claimed at claimed_at counts from now.
_SETTLE = """
local found = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1], 'LIMIT', 0, 1)
if found[1] then redis.call('ZADD', KEYS[1], 'XX', ARGV[2], found[1]) end
return 0
"""

# KEYS: server. ARGV: until, ttl.
_BLOCK = """
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked_until'))
if not blocked or blocked < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'blocked_until', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""


def check_rate_url(url: str) -> str:
    """``url`` if it names a Redis; else a usage error naming the variable and what it takes."""
    if not url.startswith(SCHEMES):
        msg = (
            f"{RATE_URL_VARIABLE} must be a Redis URL ({', '.join(s + '...' for s in SCHEMES)}),"
            f" not {display(url)!r}"
        )
        raise RecipeError(msg)
    return url


def display(url: str) -> str:
    """``url`` without its password (``redis://:secret@host`` -> ``redis://host``)."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url.split("?", 1)[0]
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    return None if value is None else kind(float(value))


class RedisBudgetStore:
    """A :class:`~core.http.budget.BudgetStore` in Redis, shared by every process using ``url``."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        import redis

        self._url = check_rate_url(url)
        self._prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self._take = self._redis.register_script(_TAKE)
        self._settle = self._redis.register_script(_SETTLE)
        self._block = self._redis.register_script(_BLOCK)

    def _keys(self, key: str) -> tuple[str, str]:
        base = f"{self._prefix}{{{key}}}"
        return f"{base}:log", f"{base}:server"

    def take(self, key: str, limit: int, window: float, now: float) -> float:
        # A member of its own per request: two claims at one instant are two requests.
        member = f"{now!r}:{uuid.uuid4().hex}"
        args = [limit, repr(window), repr(now), member]
        return float(self._call(self._take, self._keys(key), args))

    def settle(self, key: str, claimed_at: float, now: float) -> None:
        if now > claimed_at:
            self._call(self._settle, self._keys(key)[:1], [repr(claimed_at), repr(now)])

    def block_until(self, key: str, until: float) -> None:
        self._call(self._block, self._keys(key)[1:], [repr(until), _REPORT_TTL])

    def observe(
        self, key: str, remaining: int, reset_at: float, limit: int | None, now: float
    ) -> None:
        if reset_at <= now:
            return  # a report about a window that is already over
        import redis

        server = self._keys(key)[1]
        with self._errors(), self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(server)  # type: ignore[no-untyped-call]
                    new = _report(pipe.hmget(server, _FIELDS)).merged(
                        remaining, reset_at, limit, now
                    )
                    pipe.multi()
                    fields = dict(zip(_FIELDS, new, strict=True))
                    del fields["blocked_until"]  # block_until's alone, never lowered here
                    pipe.hset(
                        server, mapping={k: repr(v) for k, v in fields.items() if v is not None}
                    )
                    pipe.expire(server, _REPORT_TTL)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue  # another machine reported meanwhile: merge with theirs

    def usage(self, key: str, limit: int, window: float, now: float) -> Usage:
        log, server = self._keys(key)
        with self._errors():
            report = _report(self._redis.hmget(server, _FIELDS))
            spent = [
                (int(self._redis.zcount(log, f"({now - per!r}", "+inf")), n)
                for n, per in report.budgets(limit, window)
            ]
        return report.usage(spent, limit, now)

    def reported(self, now: float) -> dict[str, int]:
        """The requests each budget has left by the server's last word, where that still
        applies (``connector serve``'s metrics)."""
        left: dict[str, int] = {}
        with self._errors():
            for name in self._redis.scan_iter(match=f"{self._prefix}*:server", count=1000):
                text = name.decode() if isinstance(name, bytes) else str(name)
                remaining, reset = self._redis.hmget(text, ["remaining", "reset"])
                if remaining is not None and reset is not None and float(reset) > now:
                    key = text.removeprefix(self._prefix).removesuffix(":server")[1:-1]
                    left[key] = max(0, int(float(remaining)))
        return left

    def _call(self, script: Any, keys: Any, args: list[Any]) -> Any:
        with self._errors():
            return script(keys=list(keys), args=args)

    def _errors(self) -> _RedisErrors:
        return _RedisErrors(self._url)


class _RedisErrors:
    """Turns a Redis that cannot be reached into one line naming it (never its password)."""

    def __init__(self, url: str) -> None:
        self._url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import redis

        if isinstance(exc, redis.RedisError) and not isinstance(exc, redis.WatchError):
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            msg = f"cannot use the rate budget Redis {display(self._url)}: {reason}"
            raise FatalError(msg) from None


def _report(values: list[Any]) -> ServerReport:
    blocked, remaining, reset, limit, window = values
    return ServerReport(
        _number(blocked, float) or 0.0,
        _number(remaining, int),
        _number(reset, float),
        _number(limit, int),
        _number(window, float),
    )


def budget_store(url: str) -> BudgetStore:
    """The budgets in the Redis at ``url``, one store (and connection pool) per process."""
    return _budget_store(url, os.environ.get(PREFIX_VARIABLE) or DEFAULT_PREFIX)


@functools.cache
def _budget_store(url: str, prefix: str) -> BudgetStore:
    return RedisBudgetStore(url, prefix=prefix)
