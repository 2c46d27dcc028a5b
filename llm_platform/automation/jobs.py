"""Jobs over the asset graph (the UI, sensors and `dagster job backfill` launch these)."""

from __future__ import annotations

import dagster as dg

from llm_platform.documents.assets import CHUNKS, CLEANED_CORPUS, RAW_DOCUMENTS
from llm_platform.index.assets import PUBLISHED_INDEX, RETRIEVAL_EVAL, VECTOR_INDEX
from llm_platform.index.embedding_assets import EMBEDDINGS
from llm_platform.model.assets import LORA_ADAPTER, MODEL_EVAL, PRODUCTION_MODEL
from llm_platform.model.sft_assets import BASE_MODEL, PROMPT_TEMPLATE, SFT_DATASET, SFT_EVAL_SPLIT

DOCUMENT_ASSETS = (RAW_DOCUMENTS, CLEANED_CORPUS, CHUNKS, EMBEDDINGS, VECTOR_INDEX)
PUBLISH_ASSETS = (RETRIEVAL_EVAL, PUBLISHED_INDEX)
INDEX_JOB = "index_job"
PUBLISH_INDEX_JOB = "publish_index_job"
TRAINING_JOB = "training_job"
MODEL_ASSETS = (SFT_DATASET, SFT_EVAL_SPLIT, BASE_MODEL, PROMPT_TEMPLATE, LORA_ADAPTER, MODEL_EVAL, PRODUCTION_MODEL)


def build_jobs(tags: dict[str, str] | None = None) -> list[dg.UnresolvedAssetJobDefinition]:
    """index_job (per source or source shard: partitioned like its assets), publish_index_job
    (evaluate, move the tag) and training_job, each run tagged with `tags`.
    """
    index_job = dg.define_asset_job(
        INDEX_JOB,
        tags=tags,
        selection=dg.AssetSelection.assets(*DOCUMENT_ASSETS),
        description="One source's (or source shard's) files to its rows in the LanceDB table. "
        "Backfill it over its partitions to re-process them all.",
    )
    publish_job = dg.define_asset_job(
        PUBLISH_INDEX_JOB,
        tags=tags,
        selection=dg.AssetSelection.assets(*PUBLISH_ASSETS),
        description="Score the latest table version and move the served tag to it if the retrieval checks pass.",
    )
    training_job = dg.define_asset_job(
        TRAINING_JOB,
        tags=tags,
        selection=dg.AssetSelection.assets(*MODEL_ASSETS),
        description="Build the SFT data and base model, fine-tune, evaluate, and promote if every gate passes.",
    )
    return [index_job, publish_job, training_job]
