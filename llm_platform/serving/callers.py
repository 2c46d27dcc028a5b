"""Who is asking: a request's API key, or an auth proxy's groups header, resolved to a caller and the reader groups it
searches as.

Access fails closed. A caller is given groups by its key (`$LLM_PLATFORM_API_KEYS`,
or `serving.api_key_groups` for the single `$LLM_PLATFORM_API_KEY`) or, when
`serving.trust_groups_header` is on, by the header an auth proxy sets; anything
else reads public rows only. No caller ever searches as `ReaderGroups.everyone()`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from llm_platform.config import ServingSettings
from llm_platform.index.access import ReaderGroups
from llm_platform.readers import ReadersError, declared_readers, groups_of
from llm_platform.serving.feedback import ANONYMOUS, caller_identity


class CallerError(ValueError):
    """A request whose key or groups header cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Caller:
    """Who sent a request: an identity for logs and rate limits (a key's
    fingerprint, never the key) and its reader groups.
    """

    identity: str
    readers: ReaderGroups

    @property
    def group_set(self) -> list[str]:
        """The caller's groups, sorted: what answers, cache keys and logs record ([] is a caller in no group)."""
        return sorted(self.readers.groups)


def parse_api_keys(text: str, env: str) -> dict[str, ReaderGroups]:
    """`{"<key>": ["group", ...], ...}` (the value of `$env`) as each key's
    reader groups; ValueError naming `env` otherwise.
    """
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"${env} is not JSON ({exc.msg}); set it to an object of key to groups, e.g. "
            '{"<key>": ["hr", "legal"], "<key2>": []}'
        ) from None
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError(f'${env} must be a non-empty JSON object of key to groups, e.g. {{"<key>": ["hr"]}}')
    keys = {}
    for number, (key, groups) in enumerate(mapping.items(), 1):
        where = f"${env}, key {number} ({caller_identity(key)})"
        if not key.strip():
            raise ValueError(f"${env}, key {number}: an API key must not be empty")
        try:
            keys[key] = ReaderGroups.of(declared_readers(groups, where))
        except ReadersError as exc:
            raise ValueError(str(exc)) from None
    return keys


def configured_keys(settings: ServingSettings, environ: Mapping[str, str]) -> dict[str, ReaderGroups]:
    """Every accepted API key and its reader groups, from `$api_keys_env` and
    the single `$api_key_env`; {}: no key required.
    """
    keys = (
        parse_api_keys(environ[settings.api_keys_env], settings.api_keys_env)
        if environ.get(settings.api_keys_env)
        else {}
    )
    single = environ.get(settings.api_key_env)
    if single:
        keys.setdefault(single, ReaderGroups.of(settings.api_key_groups))
    return keys


class CallerDirectory:
    """Resolves a request's key and groups header to a `Caller`, failing closed."""

    def __init__(self, keys: Mapping[str, ReaderGroups], settings: ServingSettings) -> None:
        self._keys = [(key.encode(), readers) for key, readers in keys.items()]
        self.settings = settings

    def resolve(self, given_key: str, groups_header: str | None) -> Caller:
        identity, readers = ANONYMOUS, ReaderGroups.public_only()
        if self._keys:
            readers = self._matching(given_key)
            identity = caller_identity(given_key)
        if self.settings.trust_groups_header:
            readers = self._header_groups(groups_header)
        return Caller(identity, readers)

    def _matching(self, given_key: str) -> ReaderGroups:
        found = None
        for (
            key,
            readers,
        ) in self._keys:  # every key is compared, so the time taken does not say which one nearly matched
            if hmac.compare_digest(given_key.encode(), key):
                found = readers
        if found is None:
            raise CallerError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>' "
                f"(the keys are in ${self.settings.api_keys_env} or ${self.settings.api_key_env})",
            )
        return found

    def _header_groups(self, value: str | None) -> ReaderGroups:
        # The proxy's header replaces the key's groups: with it trusted, the key only proves the request came
        # through the proxy.
        names = [name.strip() for name in (value or "").split(",") if name.strip()]
        try:
            return ReaderGroups.of(groups_of(names, f"header {self.settings.groups_header}"))
        except ReadersError as exc:
            raise CallerError(400, f"{exc}; the auth proxy must send group names, comma-separated") from None
