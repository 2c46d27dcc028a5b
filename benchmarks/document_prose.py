"""Real READMEs as raw markup against rendered prose, and near-duplicate hashing memory, side by side.

    .venv/bin/python benchmarks/document_prose.py

READMEs: the long descriptions (Markdown and reStructuredText) in the METADATA of every
package installed in this environment: real documents the project has never seen. For
each, the raw text (what was indexed before) and the rendered prose (what is indexed now)
are compared on the Gopher-style quality score (share of READMEs under the default
min_quality 0.35, i.e. set aside), and on the share of non-blank lines that carry markup
(HTML tags, link targets, badge images, reference definitions, directives).

A big file: a 6.5 MB text file beside a normal one through read_source and clean_corpus
with the default rules, in a fresh process: its peak RSS and what happened to each file.

MinHash: tracemalloc peak of one document's signature, all shingles in one batch (before)
against streamed batches (now), on the same text; the streamed one also on a 19 MB text.
"""

from __future__ import annotations

import email
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from pydoc_data.topics import topics

from llm_platform.documents.cleaning import normalize_text, quality_score
from llm_platform.documents.dedup import minhash_signature
from llm_platform.documents.rendering import render_prose

MIN_QUALITY = 0.35
MARKUP = re.compile(r"<[a-zA-Z/!][^>]*>|\]\(|\]\[|^\s*\[[^\]]+\]:\s|!\[|^\.\. \w|\|\w[\w -]*\||https?://", re.MULTILINE)
FORMATS = {"text/markdown": "md", "text/x-rst": "rst"}


def readmes() -> list[tuple[str, str, str]]:
    """(package, format, text) for every installed package whose description is Markdown or reST."""
    found = []
    site = Path(email.__file__).parent  # any stdlib module; site-packages is found from sys.path below
    for folder in {Path(p) for p in sys.path if p.endswith("site-packages")} or {site}:
        for metadata in sorted(folder.glob("*.dist-info/METADATA")):
            message = email.message_from_string(metadata.read_text(encoding="utf-8", errors="replace"))
            fmt = FORMATS.get((message.get("Description-Content-Type") or "").split(";")[0].strip())
            body = message.get_payload()
            if fmt and isinstance(body, str) and len(body) > 500:
                found.append((metadata.parent.name.split("-")[0], fmt, body))
    return found


def markup_share(text: str) -> float:
    lines = [line for line in text.splitlines() if line.strip()]
    return sum(bool(MARKUP.search(line)) for line in lines) / len(lines) if lines else 0.0


def compare_readmes() -> None:
    docs = readmes()
    started = time.perf_counter()
    rendered = [(name, fmt, raw, normalize_text(render_prose(raw, fmt))) for name, fmt, raw in docs]
    seconds = time.perf_counter() - started
    print(
        f"READMEs: {len(docs)} ({sum(f == 'md' for _, f, _ in docs)} Markdown, "
        f"{sum(f == 'rst' for _, f, _ in docs)} reST), "
        f"{sum(len(r) for _, _, r in docs) / 1e6:.1f} MB, rendered in {seconds:.1f} s"
    )
    print(f"{'':34}{'raw markup':>12}{'prose':>12}")
    set_aside = [
        sum(quality_score(text) < MIN_QUALITY for text in texts) / len(docs)
        for texts in ([d[2] for d in rendered], [d[3] for d in rendered])
    ]
    print(f"{'set aside as low quality (<0.35)':34}{set_aside[0]:>12.1%}{set_aside[1]:>12.1%}")
    shares = [
        sum(markup_share(text) for text in texts) / len(docs)
        for texts in ([d[2] for d in rendered], [d[3] for d in rendered])
    ]
    print(f"{'lines carrying markup (mean)':34}{shares[0]:>12.1%}{shares[1]:>12.1%}")
    means = [
        sum(quality_score(text) for text in texts) / len(docs)
        for texts in ([d[2] for d in rendered], [d[3] for d in rendered])
    ]
    print(f"{'mean quality score':34}{means[0]:>12.2f}{means[1]:>12.2f}")


def whole_document_signature(text: str) -> None:
    from datasketch import MinHash

    words = re.findall(r"\w+", text.lower())
    minhash = MinHash(num_perm=128, scheme="affine64")
    minhash.update_batch([" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)])


def peak_mib(function, text: str) -> float:
    tracemalloc.start()
    function(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def compare_minhash() -> None:
    corpus = "\n\n".join(topics.values())
    one_mb = corpus[:1_000_000]
    print(f"\nMinHash signature peak memory (tracemalloc){'':4}{'one batch':>12}{'streamed':>12}")
    print(
        f"{'1 MB of text':47}{peak_mib(whole_document_signature, one_mb):>10.0f} "
        f"MiB{peak_mib(minhash_signature, one_mb):>8.0f} MiB"
    )
    big = (corpus * (19_000_000 // len(corpus) + 1))[:19_000_000]
    print(f"{'19 MB of text':47}{'(not run)':>14}{peak_mib(minhash_signature, big):>8.0f} MiB")


def big_file() -> None:
    from llm_platform.documents.corpus import CleaningRules, clean_corpus
    from llm_platform.documents.sources import read_source

    folder = Path(tempfile.mkdtemp())
    corpus = "\n\n".join(topics.values())
    (folder / "big.txt").write_text(corpus * 14, encoding="utf-8")
    (folder / "for.txt").write_text(topics["for"], encoding="utf-8")
    started = time.perf_counter()
    raw = read_source("bench", str(folder), "**/*", None)
    result = clean_corpus(raw.rows, None, CleaningRules(80, 0.35, 0.85))
    outcome = {row["locator"]: "kept" for row in result.rows} | {q["locator"]: q["kind"] for q in result.quarantine}
    print(
        f"\n6.5 MB text file + a normal one: {time.perf_counter() - started:.0f} s, peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, {dict(sorted(outcome.items()))}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--big-file"]:
        big_file()
        sys.exit(0)
    compare_readmes()
    compare_minhash()
    subprocess.run([sys.executable, __file__, "--big-file"], check=True)
