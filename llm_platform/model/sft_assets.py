"""sft_dataset, sft_eval_split, base_model and prompt_template: what a fine-tune is trained and judged on.

One factory per asset (sft_pairs is one step that writes two assets), taking the document
asset it reads and the op tags; checks are declared just above their asset and computed below it.
"""

import dataclasses

import dagster as dg
import pyarrow as pa

from llm_platform.config import SFT_RULE_NAMES, PlatformConfig
from llm_platform.datasets import Dataset
from llm_platform.documents.datasets import CHUNKS_DATA, CLEANED_CORPUS_DATA
from llm_platform.metadata import markdown_table
from llm_platform.model.datasets import (
    BASE_MODEL_DATA,
    PROMPT_TEMPLATE_DATA,
    SFT_DATASET_DATA,
    SFT_EVAL_SPLIT_DATA,
    SFT_QUARANTINE_DATA,
    SFT_QUARANTINE_SCHEMA,
)
from llm_platform.model.feedback import approvals_location, read_approvals
from llm_platform.model.sft_build import (
    SFT_SCHEMA,
    SftBuild,
    build_sft,
    feedback_files,
    read_jsonl_files,
    set_aside_summary,
)
from llm_platform.model.sft_rules import RULE_DESCRIPTIONS, RuleReport
from llm_platform.resources.platform import PlatformConfigResource, StorageResource

SFT_DATASET = dg.AssetKey(SFT_DATASET_DATA.name)
SFT_EVAL_SPLIT = dg.AssetKey(SFT_EVAL_SPLIT_DATA.name)
BASE_MODEL = dg.AssetKey(BASE_MODEL_DATA.name)
PROMPT_TEMPLATE = dg.AssetKey(PROMPT_TEMPLATE_DATA.name)
GROUP = "model"
# Entries listed one by one (metadata, DEBUG lines); the summary line counts all. Feedback grows with traffic.
MAX_LISTED_SET_ASIDE = 1000


def _sft_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            rule,
            asset=SFT_DATASET,
            blocking=True,
            description=f"share of supplied curated/feedback records breaking {rule} "
            f"({RULE_DESCRIPTIONS[rule]}) is within sft.max_violation_share",
        )
        for rule in SFT_RULE_NAMES
    ]


def sft_pairs_asset(chunks: dg.AssetsDefinition, op_tags: dict) -> dg.AssetsDefinition:
    """sft_dataset and sft_eval_split, one step: both sides of the same hash split."""

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                SFT_DATASET,
                deps=[chunks],
                group_name=GROUP,
                kinds={"parquet"},
                description="Training pairs (the train side of the hash split).",
            ),
            dg.AssetSpec(
                SFT_EVAL_SPLIT,
                deps=[chunks],
                group_name=GROUP,
                kinds={"parquet"},
                description="Held-out pairs; never trained on.",
            ),
        ],
        check_specs=_sft_check_specs(),
        op_tags=op_tags,
        can_subset=False,
    )
    def sft_pairs(context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource):
        """Curated, corpus-derived and feedback pairs; supplied records checked by the data
        rules before filtering; curated and corpus pairs split by content hash, feedback (one
        rating per answer, approved corrections) to training only.
        """
        config = platform.config
        chunk_rows, versions = _chunk_rows(storage, config.partition_keys)
        approved, approval_problems = read_approvals(approvals_location(config.sft.approved_corrections, storage.root))
        built = build_sft(
            chunk_rows,
            read_jsonl_files(config.sft.curated_location),
            feedback_files(config.sft.feedback_location, storage.root),
            eval_fraction=config.sft.eval_fraction,
            min_feedback_rating=config.sft.min_feedback_rating,
            max_corpus_pairs=config.sft.max_corpus_pairs,
            approved_corrections=approved,
            grounding_chars=config.evaluation.rag_context_chars if config.sft.grounded_corpus_pairs else None,
        )
        for message in approval_problems:
            context.log.warning(f"approvals: {message}")
        _log_set_aside(context, built)
        violations = [v.__dict__ for v in built.report.violations]
        storage.datasets.write(
            SFT_QUARANTINE_DATA,
            None,
            [pa.Table.from_pylist(violations, schema=SFT_QUARANTINE_SCHEMA)],
            run_id=context.run.run_id,
        )
        common = {**_sft_metadata(built, violations), **versions}
        for key, dataset, rows in (
            (SFT_DATASET, SFT_DATASET_DATA, built.train),
            (SFT_EVAL_SPLIT, SFT_EVAL_SPLIT_DATA, built.eval),
        ):
            yield _split_result(storage, key, dataset, rows, common, context.run.run_id)
        yield from _rule_checks(built.report, config.sft.max_violation_share)

    return sft_pairs


def _chunk_rows(storage: StorageResource, partitions: list[str]) -> tuple[list[tuple], dict[str, str | None]]:
    """Every source's (and shard's) chunks as (chunk_id, title, heading, text), and the chunk versions read."""
    chunk_rows = []
    versions = {}
    for partition in partitions:
        table = storage.datasets.read(CHUNKS_DATA, partition, columns=["chunk_id", "title", "heading", "text"])
        versions[f"upstream_chunks_{partition}"] = storage.datasets.current_version(CHUNKS_DATA, partition)
        if table is not None:
            chunk_rows += [(r["chunk_id"], r["title"], r["heading"], r["text"]) for r in table.to_pylist()]
    return chunk_rows, versions


def _log_set_aside(context: dg.AssetExecutionContext, built: SftBuild) -> None:
    """One warning line with the counts; each record at DEBUG (the run's page in the UI shows them)."""
    summary = set_aside_summary(built.set_aside)
    if summary:
        context.log.warning(f"{summary}. Each is listed in the metadata set_aside_records and at DEBUG")
    for item in built.set_aside[:MAX_LISTED_SET_ASIDE]:
        context.log.debug(f"set aside ({item.kind}): {item.message}")


def _sft_metadata(built: SftBuild, violations: list[dict]) -> dict:
    listed = [{"kind": i.kind, "message": i.message} for i in built.set_aside[:MAX_LISTED_SET_ASIDE]]
    return {
        "supplied_records": built.report.supplied,
        "quarantined": len({(v["file"], v["line"]) for v in violations}),
        "quarantine_preview": markdown_table(violations, ["file", "line", "rule", "reason"]),
        "set_aside": sum(i.count for i in built.set_aside),
        "set_aside_summary": set_aside_summary(built.set_aside) or "none",
        "set_aside_records": dg.MetadataValue.json(listed),
        "by_origin": dg.MetadataValue.json(dict(built.by_origin)),
    }


def _split_result(
    storage: StorageResource, key: dg.AssetKey, dataset: Dataset, rows: list[dict], common: dict, run_id: str
) -> dg.MaterializeResult:
    written = storage.datasets.write(dataset, None, [pa.Table.from_pylist(rows, schema=SFT_SCHEMA)], run_id=run_id)
    return dg.MaterializeResult(
        asset_key=key,
        data_version=dg.DataVersion(written.version),
        metadata={
            "dataset_version": written.version,
            "path": written.path,
            "pairs": len(rows),
            **common,
            "preview": markdown_table(rows, ["origin", "quality", "instruction", "response"]),
        },
    )


def _rule_checks(report: RuleReport, limits: dict[str, float]) -> list[dg.AssetCheckResult]:
    """One result per rule: fails when the rule's share of supplied records exceeds its limit."""
    results = []
    for rule in SFT_RULE_NAMES:
        broken = [v for v in report.violations if v.rule == rule]
        share, limit = report.share(rule), limits[rule]
        description = (
            f"{report.count(rule)} of {report.supplied} supplied records ({share:.1%}) break {rule}; limit {limit:.1%}"
            + (f"; first: {broken[0].message()}" if broken else "")
        )
        results.append(
            dg.AssetCheckResult(
                asset_key=SFT_DATASET,
                check_name=rule,
                passed=share <= limit,
                description=description,
                metadata={
                    "violations": report.count(rule),
                    "supplied": report.supplied,
                    "share": share,
                    "limit": limit,
                    "examples": dg.MetadataValue.json([v.message() for v in broken[:10]]),
                },
            )
        )
    return results


def base_model_asset(cleaned_corpus: dg.AssetsDefinition, op_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(group_name=GROUP, kinds={"pytorch"}, deps=[cleaned_corpus], op_tags=op_tags)
    def base_model(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """The configured base causal LM at its exact revision (or the tiny LM, when
        config chooses it), fingerprinted from its weight files.
        """
        config = platform.config
        texts = _tiny_model_corpus(config, storage)
        info = _resolved_base_model(config, storage, texts, context.run.run_id)
        record = {**info.__dict__, "weight_files": ",".join(info.weight_files)}
        storage.write_record(BASE_MODEL_DATA, record, context.run.run_id)
        context.log.info(f"base model: {info.kind} {info.name} ({info.num_parameters:,} parameters) — {info.note}")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(info.weights_hash),
            metadata={
                "kind": info.kind,
                "name": info.name,
                "revision": info.revision or "",
                "commit": info.commit or "",
                "weights_hash": info.weights_hash,
                "weight_files": ", ".join(info.weight_files),
                "parameters": info.num_parameters,
                "path": info.path,
                "note": info.note,
                "corpus_texts": len(texts),
            },
        )

    return base_model


def _tiny_model_corpus(config: PlatformConfig, storage: StorageResource) -> list[str]:
    """The cleaned texts the tiny LM's tokenizer and weights are trained on; none when a configured model is used."""
    texts: list[str] = []
    if config.base_model.tiny is not None:
        for partition in config.partition_keys:
            table = storage.datasets.read(CLEANED_CORPUS_DATA, partition, columns=["text"])
            texts += table.column("text").to_pylist() if table is not None else []
    return texts


def _resolved_base_model(config: PlatformConfig, storage: StorageResource, texts: list[str], run_id: str):
    """The base model's BaseModelInfo; the tiny LM is built into a run's folder under the storage root."""
    from llm_platform.model.base_model import resolve_base_model
    from llm_platform.model_paths import ModelNotAvailableError
    from llm_platform.storage_files import RemoteFolder

    settings = config.base_model
    # The tiny LM must take the longest example training feeds it.
    tiny = (
        None
        if settings.tiny is None
        else settings.tiny.model_copy(
            update={"max_positions": max(settings.tiny.max_positions, config.training.max_length)}
        )
    )
    folder = RemoteFolder(f"{storage.models_dir}/base/{run_id}")
    try:
        info = resolve_base_model(
            settings.name_or_path,
            revision=settings.revision,
            output_dir=folder.local,
            corpus_texts=texts,
            tiny_config=tiny,
            allow_download=settings.allow_download,
        )
    except ModelNotAvailableError as err:
        raise dg.Failure(str(err)) from None
    folder.publish()
    if info.kind == "tiny-local":  # its files are the folder; a configured model's stay where they are
        info = dataclasses.replace(info, path=folder.location(info.path))
    return info


def prompt_template_asset(op_tags: dict) -> dg.AssetsDefinition:
    @dg.asset(group_name=GROUP, kinds={"python"}, deps=[BASE_MODEL], op_tags=op_tags)
    def prompt_template(
        context: dg.AssetExecutionContext, platform: PlatformConfigResource, storage: StorageResource
    ) -> dg.MaterializeResult:
        """The prompt format every model is trained, evaluated and served with: the
        base model's chat template, else the configured one.
        """
        config = platform.config
        base = storage.read_record(BASE_MODEL_DATA)
        template, origin = _chosen_template(config, base)
        record = {"kind": template.kind, "text": template.text, "version": template.version, "origin": origin}
        storage.write_record(PROMPT_TEMPLATE_DATA, record, context.run.run_id)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(template.version),
            metadata={
                "version": template.version,
                "kind": template.kind,
                "origin": origin,
                "base_model": base["name"],
                "template": dg.MetadataValue.md(f"```\n{template.text[:2000]}\n```"),
            },
        )

    return prompt_template


def _chosen_template(config: PlatformConfig, base: dict):
    """(template, where it came from): the base model's chat template where it
    has one and config allows it, else the configured text.
    """
    from llm_platform.model.base_model import load_base_tokenizer
    from llm_platform.model.prompts import template_for
    from llm_platform.storage_files import local_path

    tokenizer = load_base_tokenizer(
        local_path(base["path"]) if base["kind"] == "tiny-local" else base["name"], revision=base.get("commit")
    )
    configured, origin = config.prompts.template, "prompts.template"
    if config.prompts.template_file:
        configured, origin = _read_template_file(config.prompts.template_file), config.prompts.template_file
    template = template_for(tokenizer, configured, use_chat_template=config.prompts.use_chat_template)
    if template.kind == "chat_template":
        origin = f"chat template of {base['name']}"
    return template, origin


def _read_template_file(location: str) -> str:
    import fsspec

    try:
        with fsspec.open(location, "r", encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise dg.Failure(f"prompts.template_file {location} does not exist; create it or remove the setting") from None
    if "{instruction}" not in text:
        raise dg.Failure(f"prompts.template_file {location} must contain {{instruction}} where the question goes")
    return text
