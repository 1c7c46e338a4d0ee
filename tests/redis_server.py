"""The Redis the scale-out tests share (127.0.0.1:6379; ``CONNECTOR_TEST_REDIS`` points elsewhere).

Other suites use the same server at the same time: each test writes under a key prefix of its
own and deletes what it wrote at the end. Tests skip, with the reason, when it is unreachable.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: The server the suite uses.
SERVER = os.environ.get("CONNECTOR_TEST_REDIS", "redis://127.0.0.1:6379/0")


@functools.cache
def _unreachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(SERVER, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        return f"Redis is not reachable at {SERVER}: {error}"
    return None


def redis_or_skip() -> str:
    """The server's URL, or the test is skipped saying why."""
    if (reason := _unreachable()) is not None:
        pytest.skip(reason)
    return SERVER


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted at the end."""
    import redis

    redis_or_skip()
    prefix = f"connector-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(SERVER)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
