"""What the independent PII audit still finds in real READMEs after cleaning: each hit, its kind and its context.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/pii_audit_readmes.py [--context 40]

READMEs: the long descriptions of every installed package (as in document_prose.py),
each cleaned by `clean_document` (rendered, normalized, redacted) and then read by
`audit_pii` and `audit_random_tokens`, as `no_pii_left` and `no_random_tokens_left` read
them. A hit is either a leak the redactor missed or a false alarm of the audit; either
blocks the pipeline (a random_token only warns), so the count should be 0. Hits are listed
by kind, each with the package and the text around it.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from document_prose import readmes

from llm_platform.documents.cleaning import clean_document
from llm_platform.documents.pii_audit import audit_spans, random_token_spans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--context", type=int, default=40, help="characters shown on each side of a hit")
    args = parser.parse_args()
    started = time.perf_counter()
    docs = readmes()
    hits: list[tuple[str, str, str]] = []
    for name, fmt, raw in docs:
        cleaned = clean_document(raw, fmt=fmt, title=None)
        for field in (cleaned.text, cleaned.title or ""):
            for start, end, kind in [*audit_spans(field), *random_token_spans(field)]:
                before = field[max(0, start - args.context) : start]
                after = field[end : end + args.context]
                hits.append((kind, name, f"{before}>>>{field[start:end]}<<<{after}".replace("\n", "\u23ce")))
    for kind, name, context in sorted(hits):
        print(f"{kind:12} {name:24} {context}")
    by_kind = Counter(kind for kind, _, _ in hits)
    print(
        f"\n{len(docs)} READMEs, {len(hits)} audit hits after redaction in {len({n for _, n, _ in hits})} of them "
        f"({', '.join(f'{k} {n}' for k, n in sorted(by_kind.items())) or 'none'}); "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
