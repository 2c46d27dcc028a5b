"""Publishing folders to an S3-compatible store and staging them back in."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from llm_platform.datasets import Dataset
from llm_platform.resources.mlflow import MlflowError, MlflowResource
from llm_platform.storage_files import MARKER, RemoteFolder, lance_storage_options, local_path, publish, stage_in

RECORDS = Dataset("records")


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_published_folder_stages_back_with_every_file(bucket, tmp_path):
    local = _folder(tmp_path / "model", {"config.json": "{}", "weights/part-1.bin": "abc"})
    url = publish(local, f"{bucket}/models/base")
    staged = stage_in(url, tmp_path / "staged")
    assert (staged / "config.json").read_text() == "{}" and (staged / "weights/part-1.bin").read_text() == "abc"


def test_an_upload_cut_short_is_never_staged_in(bucket, tmp_path):
    fs, root = fsspec.core.url_to_fs(f"{bucket}/models/torn")
    fs.pipe(f"{root}/config.json", b"{}")  # the files got there, the marker did not
    with pytest.raises(FileNotFoundError, match=f"no {MARKER} marker"):
        stage_in(f"{bucket}/models/torn", tmp_path / "staged")


def test_local_paths_and_hub_ids_pass_through(tmp_path):
    assert local_path(str(tmp_path)) == str(tmp_path)
    assert local_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"


def test_mirroring_uploads_complete_checkpoints_and_removes_pruned_ones(bucket, tmp_path):
    folder = RemoteFolder(f"{bucket}/adapters/run")
    root = Path(folder.local) / "checkpoints"
    complete = lambda p: (p / "state.pt").is_file()
    _folder(root, {"step-2/state.pt": "2", "step-4/state.pt": "4", ".tmp-step-6/weights": "half"})
    assert folder.mirror_children("checkpoints", complete) == ["step-2", "step-4"]
    (root / "step-2/state.pt").unlink()
    (root / "step-2").rmdir()
    _folder(root, {"step-6/state.pt": "6"})
    assert folder.mirror_children("checkpoints", complete) == ["step-6"]
    fs, path = fsspec.core.url_to_fs(f"{bucket}/adapters/run/checkpoints")
    assert sorted(Path(p).parent.name for p in fs.glob(f"{path}/*/{MARKER}")) == ["step-4", "step-6"]
    assert not fs.exists(f"{path}/step-2")


def test_lance_gets_the_endpoint_only_for_s3(s3_env):
    assert lance_storage_options("s3://bucket/lancedb") == {"aws_endpoint": s3_env, "allow_http": "true"}
    assert lance_storage_options("/tmp/lancedb") == {}


def test_mlflow_refuses_a_sqlite_store_inside_an_object_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(MlflowError, match="mlflow.tracking_uri"):
        MlflowResource(home="s3://bucket/home").client()


def test_a_pointer_another_process_moved_is_read_fresh(bucket):
    import subprocess
    import sys

    import pyarrow as pa

    from llm_platform.resources.platform import StorageResource

    store = StorageResource(home=f"{bucket}/home").datasets
    first = pa.table({"x": [1]})
    store.write(RECORDS, None, [first], first.schema)
    store.read(RECORDS, None)  # lists the folder, as a long-lived process (a sensor, the daemon) would have
    write = (
        "import pyarrow as pa; from llm_platform.datasets import Dataset, DatasetStore; t = pa.table({'x': [2]}); "
        f"DatasetStore('{bucket}/home').write(Dataset({RECORDS.name!r}), None, [t], t.schema)"
    )
    subprocess.run([sys.executable, "-c", write], check=True, stdin=subprocess.DEVNULL, timeout=120)
    assert store.read(RECORDS, None).to_pylist() == [{"x": 2}]
