"""The HTTP service (`serving`): binding, keys and groups, cache, limits, state segments, drift and tracing."""

from __future__ import annotations

from pydantic import Field, field_validator

from llm_platform.config.strict import Strict
from llm_platform.readers import groups_of


class ServingSettings(Strict):
    host: str = Field("127.0.0.1", description="Bind address of `llm-platform serve`; 0.0.0.0 only inside a container.")
    port: int = Field(8000, ge=1, le=65535)
    api_key_env: str = Field(
        "LLM_PLATFORM_API_KEY",
        description="Environment variable holding the API key; unset or empty (and no api_keys_env): no key required.",
    )
    api_key_groups: list[str] = Field(
        default_factory=list, description="Reader groups of a caller with the api_key_env key; none: public rows only."
    )
    api_keys_env: str = Field(
        "LLM_PLATFORM_API_KEYS",
        description='Environment variable holding several keys and their groups as JSON: {"<key>": ["hr"], ...}.',
    )
    groups_header: str = Field(
        "X-Auth-Request-Groups",
        description="Header an auth proxy sets to the caller's comma-separated groups; "
        "read only when trust_groups_header is on.",
    )
    trust_groups_header: bool = Field(
        False,
        description="Take the caller's groups from groups_header (replacing a key's "
        "groups); only behind a proxy that sets it.",
    )
    cache_backend: str = Field("memory", pattern="^(memory|redis)$")
    redis_url: str | None = Field(
        None, description="redis://host:6379/0 when cache_backend is redis; prefer LLM_PLATFORM_REDIS_URL."
    )
    cache_max_entries: int = Field(10_000, ge=1)
    cache_ttl_seconds: int = Field(86_400, ge=1)
    poll_seconds: float = Field(
        10.0, gt=0, description="How often the service checks the production alias and index tag."
    )
    max_body_bytes: int = Field(65_536, ge=1024)
    max_question_chars: int = Field(2000, ge=1)
    max_tokens: int = Field(256, ge=1, description="Upper bound on a request's max_tokens.")
    default_max_tokens: int = Field(64, ge=1)
    max_context_chars: int = Field(1200, ge=0, description="Retrieved text put into the prompt, at most.")
    max_concurrent_generations: int = Field(1, ge=1)
    feedback_per_minute: int = Field(
        30,
        ge=1,
        description="POST /v1/feedback requests one caller (API key, or client address "
        "without one) may make per minute; more get 429.",
    )
    request_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="A chat request's deadline: waiting for a generation slot plus generating; "
        "past it the token loop stops and the request gets 504.",
    )
    stuck_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="A generation slot held longer than request_timeout_seconds plus this makes /readyz answer 503.",
    )
    segment_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="A replica starts a new local feedback or query-log segment past this size.",
    )
    segment_max_seconds: float = Field(
        3600.0,
        gt=0,
        description="A replica starts a new local segment once its current one is this old; "
        "object-store homes write one object per record instead.",
    )
    query_drift_threshold: float = Field(
        0.5, ge=0.0, le=2.0, description="Cosine distance between the questions' and the corpus's mean vectors."
    )
    query_drift_window: int = Field(500, ge=1, description="The most recent questions the drift check embeds.")
    tracing: bool = Field(
        False,
        description="Export OpenTelemetry traces of requests (cache lookup, retrieval, prompt, generation) to where "
        "the standard OTEL_* variables say (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER); off: a no-op tracer.",
    )

    @field_validator("api_key_groups")
    @classmethod
    def _key_groups_are_group_names(cls, groups: list[str]) -> list[str]:
        return groups_of(groups, "api_key_groups")
