"""How much visible text rendering keeps, on real READMEs and on a document the parser cuts.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/rendering_kept_share.py

For every Markdown and reStructuredText README of the installed packages (the
corpus of `document_prose.py`): the share of the source's visible letters and
digits (`render_loss.visible_chars`) that the rendered prose keeps. The lowest
shares show how far ordinary documents are from `MIN_KEPT_SHARE`, below which a
document is set aside as lost_in_rendering. Last line: a 4.4 MB Markdown list
nested 2,100 levels deep, what rendering says about it and how long it takes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from document_prose import readmes

from llm_platform.documents.render_loss import MIN_KEPT_SHARE, visible_chars
from llm_platform.documents.rendering import render_document

LOWEST_SHOWN = 5


def kept_shares() -> None:
    shares = []
    for name, fmt, text in readmes():
        rendering = render_document(text, fmt)
        kept = sum(1 for char in rendering.prose if char.isalnum())
        shares.append((kept / max(1, visible_chars(text)), name, fmt, rendering.lost is not None))
    shares.sort()
    print(
        f"{len(shares)} READMEs; set aside as lost_in_rendering: "
        f"{sum(lost for *_, lost in shares)}; threshold {MIN_KEPT_SHARE:.2f}"
    )
    print(
        f"median share kept {shares[len(shares) // 2][0]:.3f}; lowest: "
        + ", ".join(f"{n}.{f} {s:.3f}" for s, n, f, _ in shares[:LOWEST_SHOWN])
    )


def deep_list() -> None:
    text = "".join("  " * depth + f"- item {depth}\n" for depth in range(2_100)) + "\nA closing paragraph.\n"
    started = time.perf_counter()
    rendering = render_document(text, "md")
    print(
        f"{len(text) / 1e6:.1f} MB list nested 2,100 deep: "
        f"{time.perf_counter() - started:.2f} s, lost: {rendering.lost}"
    )


if __name__ == "__main__":
    kept_shares()
    deep_list()
