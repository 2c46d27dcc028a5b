"""A search hit as lines a person reads: each score named, and a snippet of prose."""

from __future__ import annotations

import re

_BARE_FENCE = re.compile(r"^(```|~~~)[\w+-]*$")


def snippet(text: str, width: int = 160) -> str:
    """The chunk's text on one line, without blank lines or bare code-fence markers, cut to `width`."""
    lines = (line.strip() for line in text.splitlines())
    return " ".join(" ".join(line for line in lines if line and not _BARE_FENCE.match(line)).split())[:width]


def _score(label: str, value: float | None, digits: int) -> str:
    return f"{label} {value:.{digits}f}" if value is not None else f"{label} -"


def scores_label(hit: dict) -> str:
    """`fused … | similarity … | keyword (BM25) …`: the fused (reciprocal
    rank) score alone says little across queries.
    """
    similarity, keyword = (
        _score("similarity", hit.get("similarity"), 3),
        _score("keyword (BM25)", hit.get("keyword"), 2),
    )
    if hit.get("similarity") is not None and hit.get("keyword") is None and hit["score"] == hit["similarity"]:
        return similarity
    if hit.get("keyword") is not None and hit.get("similarity") is None and hit["score"] == hit["keyword"]:
        return keyword
    return f"fused {hit['score']:.3f} | {similarity} | {keyword}"


def hit_line(rank: int, hit: dict) -> str:
    """Rank and scores, source, title and heading; then the locator and a snippet."""
    title = hit["title"] or hit["locator"]
    heading = f" › {hit['heading']}" if hit["heading"] and hit["heading"] != title else ""
    return (
        f"{rank:>2}. [{scores_label(hit)}] {hit['source']}: {title}{heading}\n    "
        f"{hit['locator']}\n    {snippet(hit['text'])}"
    )
