"""Key-value stores for cached responses and issued answers: in-process, or Redis for several replicas.

A response's key holds every version that produced it (index, adapter, prompt)
and the group set of the caller it was retrieved for, so a swap changes the key
space, a stale answer is never served, and no group is served another's answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Protocol

from llm_platform.identity import stable_hash

_SPACE = re.compile(r"\s+")


class Store(Protocol):
    def get(self, key: str) -> dict | None: ...

    def put(self, key: str, value: dict) -> None: ...


def normalise_question(question: str) -> str:
    """Case- and whitespace-insensitive form of a question, trailing punctuation kept."""
    return _SPACE.sub(" ", question).strip().casefold()


def response_key(
    versions: Mapping[str, object], question: str, params: Mapping[str, object], reader_groups: Iterable[str]
) -> str:
    """The cache key of an answer: versions, normalised question, generation parameters and the caller's group set.

    Two group sets retrieve different chunks, so they never share an answer.
    """
    return stable_hash(
        json.dumps(dict(versions), sort_keys=True, default=str),
        normalise_question(question),
        json.dumps(dict(params), sort_keys=True),
        json.dumps(sorted(set(reader_groups))),
    )


class MemoryStore:
    """A bounded least-recently-used dict with a time to live, safe across threads."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self._items: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self._max, self._ttl = max_entries, ttl_seconds
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)


class RedisStore:
    """JSON values under `prefix` in Redis, expiring after `ttl_seconds`."""

    def __init__(self, url: str, prefix: str, ttl_seconds: int) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix, self._ttl = prefix, ttl_seconds

    def get(self, key: str) -> dict | None:
        raw = self._redis.get(self._prefix + key)
        return None if raw is None else json.loads(raw)

    def put(self, key: str, value: dict) -> None:
        self._redis.set(self._prefix + key, json.dumps(value), ex=self._ttl)

    def ping(self) -> None:
        self._redis.ping()


def build_store(backend: str, *, namespace: str, redis_url: str | None, max_entries: int, ttl_seconds: int) -> Store:
    """The configured store for `namespace` ("response" or "answer")."""
    if backend == "memory":
        return MemoryStore(max_entries, ttl_seconds)
    if not redis_url:
        raise ValueError(
            "serving.cache_backend is 'redis' but no URL is set: set LLM_PLATFORM_REDIS_URL or serving.redis_url"
        )
    store = RedisStore(redis_url, f"llm_platform:{namespace}:", ttl_seconds)
    try:
        store.ping()
    except Exception as exc:  # redis.ConnectionError, AuthenticationError, ...
        raise ValueError(
            f"cannot reach the Redis cache at {redis_url} ({exc}); start it, fix "
            "serving.redis_url, or set serving.cache_backend: memory"
        ) from None
    return store
