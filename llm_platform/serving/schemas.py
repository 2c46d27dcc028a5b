"""Request bodies: OpenAI-compatible where a client expects it, strict everywhere (unknown fields are refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

MAX_EMBEDDING_INPUTS = 64
MAX_CORRECTION_CHARS = 8192


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str
    name: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


class EmbeddingRequest(_Strict):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class SearchRequest(_Strict):
    query: str = Field(min_length=1)
    mode: Literal["vector", "fts", "hybrid"] = "hybrid"
    k: int = Field(5, ge=1, le=50)
    source: str | None = None


class FeedbackRequest(_Strict):
    answer_id: str = Field(min_length=1, max_length=128)
    rating: StrictInt = Field(ge=1, le=5)
    corrected_answer: str | None = Field(None, min_length=1, max_length=MAX_CORRECTION_CHARS)
