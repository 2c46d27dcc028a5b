"""A source of documents (`sources[]`): where its files are, how it is sharded, who may read it."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from llm_platform.config.strict import Strict
from llm_platform.readers import groups_of, source_readers

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class SourceConfig(Strict):
    name: str
    location: str = Field(description="Local folder or fsspec URL (s3://, gs://, memory://).")
    glob: str = "**/*"
    jsonl_text_field: str = "text"
    jsonl_title_field: str | None = "title"
    jsonl_readers_field: str | None = Field(
        "readers",
        description="A record's own reader groups (replacing the source's); empty: records cannot declare any.",
    )
    allow_mass_deletion: bool = False
    max_removed_fraction: float = Field(0.5, ge=0.0, le=1.0)
    shards: int = Field(
        1,
        ge=1,
        le=1024,
        description=(
            "Partitions (steps, pods) the source is split into by doc_id hash; 1 keeps the source name as its key."
        ),
    )
    readers: list[str] = Field(
        default_factory=list,
        description="Groups that may read the source's documents; none and not public: nobody may.",
    )
    public: bool = Field(
        False, description="Everyone may read the source's documents (except those that declare their own readers)."
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_partition_key(cls, name: str) -> str:
        if not _SOURCE_NAME.match(name):
            raise ValueError(
                f"source name {name!r} must be lowercase letters, digits, '-' or '_' "
                "(it becomes a Dagster partition key and a LanceDB filter value)"
            )
        return name

    @field_validator("readers")
    @classmethod
    def _readers_are_group_names(cls, readers: list[str]) -> list[str]:
        return groups_of(readers, "readers")

    @property
    def default_readers(self) -> list[str]:
        """The readers of a document that declares none ([] means nobody: access fails closed)."""
        return source_readers(self.readers, public=self.public)
