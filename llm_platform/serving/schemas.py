"""Request bodies: OpenAI-compatible where a client expects it, strict everywhere (unknown fields are refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

MAX_EMBEDDING_INPUTS = 64
MAX_CORRECTION_CHARS = 8192
# Below this, logits / temperature overflow float32 and the sampler dies; 0 asks for greedy decoding.
MIN_TEMPERATURE = 0.01


def lone_surrogate(text: str) -> str | None:
    """The first unpaired UTF-16 surrogate in `text` (JSON can escape one; no
    tokenizer, cache key or log can encode it), or None.
    """
    return next((ch for ch in text if "\ud800" <= ch <= "\udfff"), None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _encodable_text(cls, value):
        for text in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            found = lone_surrogate(text) if isinstance(text, str) else None
            if found is not None:
                raise ValueError(
                    "holds a lone UTF-16 surrogate "
                    f"({found.encode('unicode_escape').decode()}), which is not text; send "
                    "valid Unicode"
                )
        return value


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
    temperature: float = Field(
        0.0, ge=0.0, le=2.0, description=f"0: greedy; otherwise sampled, at least {MIN_TEMPERATURE}."
    )
    top_p: float | None = Field(
        None, gt=0.0, le=1.0, description="Nucleus sampling when temperature > 0; greedy decoding ignores it."
    )
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("temperature")
    @classmethod
    def _samplable(cls, value: float) -> float:
        if 0 < value < MIN_TEMPERATURE:
            raise ValueError(f"must be 0 (greedy) or at least {MIN_TEMPERATURE}: smaller values overflow the sampler")
        return value


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
