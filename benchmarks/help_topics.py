"""The benchmarks' own workloads, built from Python's help topics (in the standard library, so no download).

A benchmark owns what it measures: these corpora are copies of the shapes the tests
use, kept here so a change to a test fixture never moves a benchmark's figures.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import llm_platform

# Two sources, with the four files the document stage must set aside (binary, empty, undecodable, too short).
TWO_SOURCE_CONFIG = """\
sources:
  - name: docs
    location: corpus/docs
  - name: notes
    location: corpus/notes
    glob: "*.md"
chunking:
  max_tokens: 128
  overlap: 16
index:
  min_retrieval_hit_rate: 0.5
  max_retrieval_regression: 0.2
"""
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
UNDECODABLE = Path(llm_platform.__file__).parent / "demo" / "corpus" / "handbook" / "legacy-export.txt"

# One source of sectioned topics and a tiny model small enough for 2 CPU cores (the serving benchmark's platform).
TINY_SOURCE = "topics"
TINY_TOPICS = ("augassign", "booleans", "class", "context-managers", "dict", "exceptions", "for", "with")
TINY_SETTINGS: dict[str, Any] = {
    "index": {"min_retrieval_hit_rate": 0.0, "eval_questions": 16},
    "sft": {
        "curated_location": str(Path(llm_platform.__file__).parent / "demo" / "sft" / "curated.jsonl"),
        "eval_fraction": 0.25,
        "max_corpus_pairs": 24,
    },
    "base_model": {
        "tiny": {"vocab_size": 320, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "pretrain_steps": 20}
    },
    "training": {
        "rank": 4,
        "alpha": 8,
        "dropout": 0.0,
        "epochs": 4,
        "batch_size": 8,
        "max_length": 64,
        "learning_rate": 0.05,
        "checkpoint_every_steps": 2,
        "min_new_examples": 0,
        "device": "cpu",
    },
    "evaluation": {"max_examples": 6, "max_new_tokens": 8},
    "gates": {"minimums": {"perplexity": 100000.0, "rouge_l": 0.0}, "max_regression": 0.02},
    "mlflow": {"experiment": "serving_bench", "registered_model": "serving_bench_lora"},
}
_UNDERLINE = re.compile(r"^[*=\-]{3,}$")


def _title(name: str) -> str:
    return topics[name].split("\n", 1)[0]


def _markdown(name: str) -> str:
    title, _, body = topics[name].partition("\n")
    return f"# {title}\n\n{body.lstrip('*').lstrip()}"


def write_two_source_corpus(root: Path) -> None:
    """`root/docs` (Markdown, text, HTML and the four bad files) and
    `root/notes` (Markdown), as TWO_SOURCE_CONFIG reads them.
    """
    docs, notes = root / "docs", root / "notes"
    docs.mkdir(parents=True)
    notes.mkdir()
    for name in DOCS_MARKDOWN:
        (docs / f"{name}.md").write_text(_markdown(name), encoding="utf-8")
    for name in DOCS_TEXT:
        text = topics[name] + (
            "\nQuestions about this page: write to docs-team@example.org.\n" if name == "global" else ""
        )
        (docs / f"{name}.txt").write_text(text, encoding="utf-8")
    for name in DOCS_HTML:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in topics[name].split("\n\n")[1:])
        page = (
            f"<html><head><title>{html.escape(_title(name))}</title></head><body><nav>Ho"
            f"me</nav><main>{paragraphs}</main></body></html>"
        )
        (docs / f"{name}.html").write_text(page, encoding="utf-8")
    for name in NOTES_MARKDOWN:
        (notes / f"{name}.md").write_text(_markdown(name), encoding="utf-8")
    (docs / "diagram.txt").write_bytes(bytes(range(256)) * 8)
    (docs / "blank.md").write_bytes(b"")
    (docs / "legacy.txt").write_bytes(UNDECODABLE.read_bytes())
    (docs / "todo.md").write_text("# TODO\n\nWrite this page.\n", encoding="utf-8")


def _sectioned(topic: str) -> str:
    """One help topic as Markdown under two `##` headings (corpus SFT pairs need a heading)."""
    lines = topics[topic].strip().splitlines()
    title = lines[0].strip()
    paragraphs = [
        p.strip()
        for p in "\n".join(line for line in lines[1:] if not _UNDERLINE.match(line.strip())).split("\n\n")
        if p.strip()
    ]
    half = max(1, len(paragraphs) // 2)
    return (
        "\n\n".join(
            [f"# {title}", f"## How {title} work", *paragraphs[:half], f"## More about {title}", *paragraphs[half:]]
        )
        + "\n"
    )


def write_tiny_platform_config(folder: Path) -> Path:
    """The sectioned-topics corpus under `folder/corpus` and the tiny
    platform's config beside it; returns the config's path.
    """
    import yaml

    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    for topic in TINY_TOPICS:
        (corpus / f"{topic}.md").write_text(_sectioned(topic), encoding="utf-8")
    mapping = {
        "sources": [{"name": TINY_SOURCE, "location": str(corpus), "glob": "*.md"}],
        **copy.deepcopy(TINY_SETTINGS),
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return path
