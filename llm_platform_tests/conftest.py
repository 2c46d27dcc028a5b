"""Shared fixtures: a small real corpus from Python's own help topics, its config, and the pipeline over it."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

import dagster as dg
import pytest

import llm_platform
from llm_platform.automation.jobs import INDEX_JOB
from llm_platform.config import PlatformConfig, load_config

# For every test folder: the moto S3 server (one per session) and per-test buckets, and the tiny platform.
pytest_plugins = ["llm_platform_tests.s3_fixtures", "llm_platform_tests.tiny_platform"]

DOCS_MARKDOWN = (
    "for",
    "while",
    "if",
    "with",
    "raise",
    "assert",
    "return",
    "del",
    "exceptions",
    "augassign",
    "dict",
    "booleans",
    "integers",
    "floating",
    "power",
    "slicings",
    "subscriptions",
    "context-managers",
    "lambda",
)
DOCS_TEXT = ("global", "nonlocal")
DOCS_HTML = ("class",)
NOTES_MARKDOWN = ("typesmodules", "typesmethods", "specialattrs", "id-classes", "atom-identifiers")
CONTACT_EMAIL = "docs-team@example.org"
UNDECODABLE = Path(llm_platform.__file__).parent / "demo" / "corpus" / "handbook" / "legacy-export.txt"
BAD_FILES = {  # file name -> where and why it is set aside
    "diagram.txt": ("raw_documents", "binary"),
    "blank.md": ("raw_documents", "empty"),
    "legacy.txt": ("raw_documents", "encoding"),
    "todo.md": ("cleaned_corpus", "too_short"),
}
CONFIG = """\
sources:
  - name: docs
    location: corpus/docs
    public: true
  - name: notes
    location: corpus/notes
    glob: "*.md"
    public: true
chunking:
  max_tokens: 128
  overlap: 16
index:
  min_retrieval_hit_rate: 0.5
  max_retrieval_regression: 0.2
# One process, so a test's monkeypatch reaches cleaning and chunking (test_document_workers sets more).
documents:
  workers: 1
"""


def topic_title(name: str) -> str:
    return topics[name].split("\n", 1)[0]


def topic_markdown(name: str) -> str:
    """A help topic as Markdown: its title as the `#` heading, the underline dropped."""
    title, _, body = topics[name].partition("\n")
    return f"# {title}\n\n{body.lstrip('*').lstrip()}"


def _write_corpus(root: Path) -> None:
    docs, notes = root / "docs", root / "notes"
    docs.mkdir(parents=True)
    notes.mkdir()
    for name in DOCS_MARKDOWN:
        (docs / f"{name}.md").write_text(topic_markdown(name), encoding="utf-8")
    for name in DOCS_TEXT:
        text = topics[name] + (f"\nQuestions about this page: write to {CONTACT_EMAIL}.\n" if name == "global" else "")
        (docs / f"{name}.txt").write_text(text, encoding="utf-8")
    for name in DOCS_HTML:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in topics[name].split("\n\n")[1:])
        page = (
            f"<html><head><title>{html.escape(topic_title(name))}</title></head><body><nav>"
            f"Home</nav><main>{paragraphs}</main></body></html>"
        )
        (docs / f"{name}.html").write_text(page, encoding="utf-8")
    for name in NOTES_MARKDOWN:
        (notes / f"{name}.md").write_text(topic_markdown(name), encoding="utf-8")
    (docs / "diagram.txt").write_bytes(bytes(range(256)) * 8)
    (docs / "blank.md").write_bytes(b"")
    (docs / "legacy.txt").write_bytes(UNDECODABLE.read_bytes())
    (docs / "todo.md").write_text("# TODO\n\nWrite this page.\n", encoding="utf-8")


@dataclass
class Platform:
    """A corpus, its config and storage home in one temp folder, and the Definitions over them."""

    root: Path
    config: PlatformConfig
    home: Path
    defs: dg.Definitions

    @property
    def config_path(self) -> Path:
        return Path(self.config.config_path)

    def corpus(self, source: str) -> Path:
        return self.root / "corpus" / source

    def run(self, job: str = INDEX_JOB, partition: str | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(
            partition_key=partition, instance=dg.DagsterInstance.ephemeral(), **kwargs
        )


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata values of `asset`'s materialization in `result`."""
    for event in result.get_asset_materialization_events():
        found = event.step_materialization_data.materialization
        if found.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in found.metadata.items()}
    raise LookupError(f"{asset} was not materialized in run {result.run_id}")


def installed_readmes(content_type: str) -> dict[str, str]:
    """The long description of every installed distribution whose content type starts with `content_type`, by name."""
    import email
    from importlib import metadata

    found = {}
    for distribution in metadata.distributions():
        message = email.message_from_string(distribution.read_text("METADATA") or "")
        if (message.get("Description-Content-Type") or "").startswith(content_type):
            body = message.get_payload()
            if isinstance(body, str) and body.strip():
                found[distribution.metadata["Name"]] = body
    return found


DOCUMENT_STAGES = ["raw_documents", "cleaned_corpus", "chunks"]


def materialize(platform: Platform, selection, partition: str | None = None, **kwargs) -> dg.ExecuteInProcessResult:
    """`selection` of `platform`'s assets for `partition`, in process on an ephemeral instance."""
    return dg.materialize(
        list(platform.defs.assets),
        selection=selection,
        partition_key=partition,
        resources=platform.defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def run_document_stages(platform: Platform, partition_key: str = "docs") -> dg.ExecuteInProcessResult:
    """The three document stages of `platform` for one source (or shard)."""
    return materialize(platform, DOCUMENT_STAGES, partition_key)


def build_platform(root: Path) -> Platform:
    """Write the corpus and config under `root` and build Definitions with the in-process executor."""
    from llm_platform.definitions import build_definitions  # builds the demo's Definitions on import

    _write_corpus(root / "corpus")
    (root / "platform.yaml").write_text(CONFIG, encoding="utf-8")
    config = load_config(root / "platform.yaml")
    home = root / "home"
    home.mkdir()
    return Platform(root, config, home, build_definitions(config, home=str(home), executor="in_process"))


@pytest.fixture(scope="session", autouse=True)
def onnx_export_cache(tmp_path_factory) -> Iterator[Path]:
    """One ONNX export of the embedding model per test session (searches
    embed queries with it), never the user's cache.
    """
    from llm_platform.index.onnx_model import CACHE_ENV

    folder = tmp_path_factory.mktemp("onnx_export_cache")
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)  # os.environ, not monkeypatch: subprocesses of tests inherit it
    yield folder
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def new_platform(tmp_path_factory) -> Callable[[str], Platform]:
    """Make a fresh platform (own corpus copy and home) in a temp folder named `name`."""
    return lambda name: build_platform(tmp_path_factory.mktemp(name))


@pytest.fixture(autouse=True)
def new_tables_take_rows_at_once(monkeypatch):
    """In-process tests have no racing creator: skip the wait a new LanceDB table gets (writer subprocesses keep it)."""
    from llm_platform.index import table

    monkeypatch.setattr(table, "CREATE_SETTLE_SECONDS", 0.0)
