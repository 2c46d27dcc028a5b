"""`python -m llm_platform.serving.fetch_adapter --dest DIR`: the production adapter (and its base model) for another
serving engine.

A vLLM pod's init container runs this: it writes DIR/adapter (the PEFT adapter
MLflow holds for the `production` alias), DIR/base (the base model, when it is
a folder on the shared volume) and DIR/version.json, which vLLM then serves
with `--enable-lora --lora-modules production=DIR/adapter`. The pod's
adapter-sync sidecar (`vllm_sync`) fetches each later promotion the same way,
into DIR/adapters/v<N>.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from llm_platform.config import load_config, platform_home
from llm_platform.home_layout import PRODUCTION_ALIAS

ADAPTER_ARTIFACT = "adapter"  # llm_platform.model.assets.ADAPTER_ARTIFACT, which imports dagster


def fetch_production_adapter(client, registered_model: str, dest: Path) -> dict:
    """Download the alias's adapter into dest/adapter, and a base model packaged with it into dest/base."""
    version = client.get_model_version_by_alias(registered_model, PRODUCTION_ALIAS)
    tags = dict(version.tags)
    staging = dest / ".download"
    shutil.rmtree(staging, ignore_errors=True)
    downloaded = Path(client.download_artifacts(version.run_id, ADAPTER_ARTIFACT, str(staging)))
    if not (downloaded / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{registered_model} version {version.version}: run {version.run_id} has no "
            f"{ADAPTER_ARTIFACT}/adapter_config.json artifact"
        )
    shutil.rmtree(dest / "adapter", ignore_errors=True)
    downloaded.rename(dest / "adapter")
    shutil.rmtree(staging, ignore_errors=True)
    base = tags.get("base_model", "")
    packaged = dest / "adapter" / "base"  # a base that exists nowhere else (the tiny LM) travels inside the artifact
    if packaged.is_dir():
        shutil.rmtree(dest / "base", ignore_errors=True)
        packaged.rename(dest / "base")
    info = {
        "registered_model": registered_model,
        "version": str(version.version),
        "run_id": version.run_id,
        "base_model": base,
        "adapter_dir": str(dest / "adapter"),
        "base_dir": str(dest / "base") if (dest / "base").is_dir() else None,
    }
    (dest / "version.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_platform.serving.fetch_adapter", description=__doc__)
    parser.add_argument("--dest", required=True, help="folder to write adapter/, base/ and version.json into")
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    from llm_platform.resources.mlflow import mlflow_resource

    config = load_config(
        args.config, check_folders=False
    )  # reads only MLflow settings; the pod mounts no source folder
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    info = fetch_production_adapter(
        mlflow_resource(config.mlflow, platform_home(), in_dagster=False).client(), config.mlflow.registered_model, dest
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
