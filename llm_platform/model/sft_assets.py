"""sft_dataset, sft_eval_split and base_model: what a fine-tune is trained and judged on."""

import dataclasses

import dagster as dg
import pyarrow as pa

from llm_platform.metadata import check_result, frame, markdown_table
from llm_platform.rules import ids_unique_and_present, no_pii_left, text_length_within, validate_rule, values_within
from llm_platform.model.sft_build import INSTRUCTION_CHARS, QUALITY_RANGE, RESPONSE_CHARS, SFT_SCHEMA, build_sft, read_jsonl_files
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

SFT_FIELDS_PRESENT = "instruction_and_response_present"
SFT_INSTRUCTION_LENGTH = "instruction_length_10_4096"
SFT_RESPONSE_LENGTH = "response_length_5_8192"
SFT_QUALITY_RANGE = "quality_0_6_to_1"
SFT_NO_DUPLICATES = "no_exact_duplicates"
SFT_NO_PII = "no_pii"
EVAL_DISJOINT_FROM_TRAIN = "disjoint_from_training_data"
SFT_RULES = (SFT_FIELDS_PRESENT, SFT_INSTRUCTION_LENGTH, SFT_RESPONSE_LENGTH, SFT_QUALITY_RANGE, SFT_NO_DUPLICATES, SFT_NO_PII)
_COLUMNS = ["instruction", "response", "quality", "pair_hash"]


def _rule_checks(asset: str, rows: list[dict]) -> list[dg.AssetCheckResult]:
    data = frame(rows, _COLUMNS)
    outcomes = {
        SFT_FIELDS_PRESENT: _first_failure(validate_rule(text_length_within(1, 10**9, c), data) for c in ("instruction", "response")),
        SFT_INSTRUCTION_LENGTH: validate_rule(text_length_within(*INSTRUCTION_CHARS, column="instruction"), data),
        SFT_RESPONSE_LENGTH: validate_rule(text_length_within(*RESPONSE_CHARS, column="response"), data),
        SFT_QUALITY_RANGE: validate_rule(values_within("quality", *QUALITY_RANGE), data),
        SFT_NO_DUPLICATES: validate_rule(ids_unique_and_present("pair_hash"), data),
        SFT_NO_PII: _first_failure(validate_rule(no_pii_left(c), data) for c in ("instruction", "response")),
    }
    return [_on(asset, check_result(name, outcome)) for name, outcome in outcomes.items()]


def _first_failure(outcomes):
    outcomes = list(outcomes)
    return next((o for o in outcomes if not o.passed), outcomes[0])


def _on(asset: str, result: dg.AssetCheckResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=dg.AssetKey(asset), check_name=result.check_name, passed=result.passed, metadata=result.metadata)


def _rule_specs(asset: str, blocking: bool) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset, blocking=blocking) for name in SFT_RULES]


def build_sft_assets(chunks_key: str, cleaned_key: str, op_tags: dict) -> list[dg.AssetsDefinition]:
    """sft_dataset + sft_eval_split (one step, two assets) and base_model."""

    @dg.multi_asset(
        specs=[
            dg.AssetSpec("sft_dataset", deps=[chunks_key], group_name="model", kinds={"parquet"}, description="Training pairs (the train side of the hash split)."),
            dg.AssetSpec("sft_eval_split", deps=[chunks_key], group_name="model", kinds={"parquet"}, description="Held-out pairs; never trained on."),
        ],
        check_specs=_rule_specs("sft_dataset", True) + _rule_specs("sft_eval_split", True)
        + [dg.AssetCheckSpec(EVAL_DISJOINT_FROM_TRAIN, asset="sft_eval_split", blocking=True, description="no eval pair hash appears in sft_dataset")],
        op_tags=op_tags,
        can_subset=False,
    )
    def sft_pairs(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource):
        """Curated, corpus-derived and feedback pairs, filtered by the data rules and split by content hash."""
        config = platform.config
        chunk_rows = []
        versions = {}
        for source in config.source_names:
            table = storage.datasets.read("chunks", source, columns=["chunk_id", "title", "heading", "text"])
            versions[f"upstream_chunks_{source}"] = storage.datasets.current_version("chunks", source)
            if table is not None:
                chunk_rows += [(r["chunk_id"], r["title"], r["heading"], r["text"]) for r in table.to_pylist()]
        built = build_sft(
            chunk_rows, read_jsonl_files(config.sft.curated_location), read_jsonl_files(config.sft.feedback_location),
            eval_fraction=config.sft.eval_fraction, min_feedback_rating=config.sft.min_feedback_rating, max_corpus_pairs=config.sft.max_corpus_pairs,
        )
        for message in built.set_aside[:20]:
            context.log.warning(f"set aside: {message}")
        common = {"set_aside": len(built.set_aside), "set_aside_reasons": dg.MetadataValue.json(built.set_aside[:50]), "by_origin": dg.MetadataValue.json(dict(built.by_origin)), **versions}
        for name, rows in (("sft_dataset", built.train), ("sft_eval_split", built.eval)):
            written = storage.datasets.write(name, None, [pa.Table.from_pylist(rows, schema=SFT_SCHEMA)], SFT_SCHEMA, context.run_id)
            yield dg.MaterializeResult(
                asset_key=name, data_version=dg.DataVersion(written.version),
                metadata={"dataset_version": written.version, "path": written.path, "pairs": len(rows), **common,
                          "preview": markdown_table(rows, ["origin", "quality", "instruction", "response"])},
            )
        for name, rows in (("sft_dataset", built.train), ("sft_eval_split", built.eval)):
            yield from _rule_checks(name, rows)
        overlap = {r["pair_hash"] for r in built.train} & {r["pair_hash"] for r in built.eval}
        yield dg.AssetCheckResult(asset_key="sft_eval_split", check_name=EVAL_DISJOINT_FROM_TRAIN, passed=not overlap, metadata={"overlapping_pairs": len(overlap)})

    @dg.asset(group_name="model", kinds={"pytorch"}, deps=[cleaned_key], op_tags=op_tags)
    def base_model(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource) -> dg.MaterializeResult:
        """The base causal LM (configured id/path, else a tiny LM built on the corpus), with its weights hash."""
        config = platform.config
        settings = config.base_model
        texts = []
        for source in config.source_names:
            table = storage.datasets.read("cleaned_corpus", source, columns=["text"])
            texts += table.column("text").to_pylist() if table is not None else []
        from llm_platform.model.base_model import TinyModelConfig, resolve_base_model

        tiny = TinyModelConfig(**settings.tiny.model_dump(), max_positions=max(512, config.training.max_length))
        from llm_platform.storage_files import RemoteFolder

        folder = RemoteFolder(f"{storage.models_dir}/base/{context.run_id}")
        info = resolve_base_model(settings.name_or_path, revision=settings.revision, output_dir=folder.local, corpus_texts=texts, tiny_config=tiny, allow_download=settings.allow_download)
        folder.publish()
        if info.kind == "tiny-local":  # its files are the folder; a configured model's stay where they are
            info = dataclasses.replace(info, path=folder.location(info.path))
        storage.write_record("base_model", info.__dict__, context.run_id)
        context.log.info(f"base model: {info.kind} {info.name} ({info.num_parameters:,} parameters) — {info.note}")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(info.weights_hash),
            metadata={"kind": info.kind, "name": info.name, "revision": info.revision or "", "weights_hash": info.weights_hash,
                      "parameters": info.num_parameters, "path": info.path, "note": info.note, "corpus_texts": len(texts)},
        )

    return [sft_pairs, base_model]
