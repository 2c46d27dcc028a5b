"""Build the bundled demo corpus from Python's own documentation text.

Run once (`python -m llm_platform.demo.build_corpus`); its output under
`llm_platform/demo/corpus/` is committed, so the demo never needs this script
or a network. Two sources:

- `handbook/`: one file per pydoc topic in several formats (md, txt, rst,
  html pages with navigation, cookie banner and footer, small PDFs), plus
  deliberate defects: a file with PII, a near duplicate, an exact duplicate,
  a binary file named .txt, an empty .md, an undecodable .txt, a mojibake
  .txt that ftfy repairs, a cp1252 .txt, and a .md too short after cleaning.
- `faq/faq.jsonl`: one record per section of two large topics, plus one
  malformed line.

`expected.json` records what each defect is meant to trigger, so tests can
check the pipeline against the corpus author's intent.
"""

from __future__ import annotations

import html
import json
import random
import re
import shutil
from pathlib import Path
from pydoc_data.topics import topics

import ftfy.bad_codecs  # noqa: F401  (registers the "sloppy-windows-1252" codec)
import numpy as np

from llm_platform.documents.chunking import find_headings
from llm_platform.documents.dedup import minhash_signature

CORPUS = Path(__file__).parent / "corpus"
HANDBOOK = CORPUS / "handbook"
FAQ = CORPUS / "faq"

FAQ_TOPICS = ("specialnames", "types")
# Left out so that no unplanned duplicates appear: "else" is "if" verbatim,
# "naming" mostly repeats "execmodel", "compound" contains the "if", "while",
# "for", "try" and "with" topics, and the FAQ topics feed the other source.
SKIPPED_TOPICS = ("else", "naming", "compound", *FAQ_TOPICS)
PDF_TOPICS = ("break", "continue")
HTML_TOPICS = ("while", "for", "try", "with", "class", "import")
RST_TOPICS = ("assert", "assignment", "augassign", "global", "nonlocal", "raise")
MOJIBAKE_TOPIC = "objects"
CP1252_TOPIC = "customization"
NEAR_DUPLICATE_TOPIC = "comparisons"
EXACT_DUPLICATE_TOPIC = "return"
DEFECT_TOPICS = (MOJIBAKE_TOPIC, CP1252_TOPIC, NEAR_DUPLICATE_TOPIC, EXACT_DUPLICATE_TOPIC)
PLAIN_TOPIC_COUNT = 36
MAX_TOPIC_CHARS = 15_000
FAQ_COUNT = 40

_HEADING_BLOCK = re.compile(r"(?:([*=\-~])\1+\n)?(.+)\n([*=\-~])\3+")


def main() -> None:
    """Rebuild the corpus folders from scratch and print a summary."""
    for folder in (HANDBOOK, FAQ):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for topic in PDF_TOPICS:
        _write(f"{topic}.pdf", minimal_pdf(_title(topic), topics[topic]))
    for topic in HTML_TOPICS:
        _write(f"{topic}.html", html_page(_title(topic), topics[topic]).encode("utf-8"))
    for topic in RST_TOPICS:
        _write(f"{topic}.rst", to_rst(topics[topic]).encode("utf-8"))
    for index, topic in enumerate(_plain_topics()):
        if index % 5 in (1, 3):
            _write(f"{topic}.txt", topics[topic].encode("utf-8"))
        else:
            _write(f"{topic}.md", to_markdown(topics[topic]).encode("utf-8"))
    expected = _write_defects()
    _write_faq()
    (CORPUS / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    size = sum(path.stat().st_size for path in CORPUS.rglob("*") if path.is_file())
    print(f"wrote {len(list(HANDBOOK.iterdir()))} handbook files and {FAQ_COUNT + 1} FAQ lines, {size:,} bytes")


def _plain_topics() -> list[str]:
    special = {*SKIPPED_TOPICS, *PDF_TOPICS, *HTML_TOPICS, *RST_TOPICS, *DEFECT_TOPICS}
    pool = [name for name in sorted(topics) if name not in special and len(topics[name]) <= MAX_TOPIC_CHARS]
    return pool[:PLAIN_TOPIC_COUNT]


def _write(name: str, data: bytes) -> None:
    (HANDBOOK / name).write_bytes(data)


def _title(topic: str) -> str:
    return find_headings(topics[topic], "rst")[0].title


def to_markdown(text: str) -> str:
    """Return pydoc topic text as Markdown: underlined titles become `#` headings."""
    levels = {heading.title: heading.level for heading in find_headings(text, "rst")}

    def heading(match: re.Match[str]) -> str:
        title = match.group(2)
        return f"{'#' * levels[title]} {title}" if title in levels else match.group(0)

    # pydoc indents code by 3 spaces; Markdown needs 4.
    indented = re.sub(r"^   (?=\S)", "    ", text, flags=re.MULTILINE)
    return _HEADING_BLOCK.sub(heading, indented)


def to_rst(text: str) -> str:
    """Return pydoc topic text as reStructuredText with an overlined document title."""
    lines = text.split("\n", 2)
    return f"{lines[1]}\n{lines[0]}\n{lines[1]}\n{lines[2]}" if len(lines) == 3 else text


def html_page(title: str, text: str) -> str:
    """Return `text` as the article of a realistic page (cookie banner, nav, sidebar, footer)."""
    article = "\n".join(_html_block(block) for block in re.split(r"\n\s*\n", text.strip()))
    return _PAGE.format(title=html.escape(title), article=article)


def _html_block(block: str) -> str:
    match = _HEADING_BLOCK.fullmatch(block.strip("\n"))
    if match:
        tag = {"*": "h1", "=": "h2", "-": "h3"}.get(match.group(3), "h4")
        return f"<{tag}>{html.escape(match.group(2))}</{tag}>"
    if all(line.startswith("   ") for line in block.splitlines() if line.strip()):
        return f"<pre><code>{html.escape(block)}</code></pre>"
    return f"<p>{html.escape(' '.join(block.split()))}</p>"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title} | Acme Engineering Handbook</title>
<link rel="stylesheet" href="/static/site.css"></head>
<body>
<div class="cookie-banner" id="cookies"><p>We use cookies to improve your experience on this site.</p>
<button>Accept all cookies</button> <a href="/cookie-policy">Cookie policy</a></div>
<a class="skip" href="#main">Skip to content</a>
<header><div class="logo">Acme Engineering Handbook</div>
<nav><ul><li><a href="/">Home</a></li><li><a href="/handbook">Handbook</a></li><li><a href="/teams">Teams</a></li>
<li><a href="/blog">Blog</a></li><li><a href="/search">Search</a></li></ul></nav></header>
<aside class="sidebar"><h3>In this section</h3><ul><li><a href="/handbook/while">The while statement</a></li>
<li><a href="/handbook/for">The for statement</a></li>\
<li><a href="/handbook/try">The try statement</a></li></ul></aside>
<main id="main"><article>
{article}
</article></main>
<footer><p>Copyright 2024 Acme Corp. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a> | \
<a href="/contact">Contact</a></p></footer>
</body>
</html>
"""


def minimal_pdf(title: str, text: str) -> bytes:
    """Return a one-page PDF that shows `text` in Helvetica, with `title` as its metadata title."""
    lines = [line for raw in text.splitlines() for line in _wrap(raw.replace("\t", "    "), 95)]
    stream = "BT /F1 9 Tf 11 TL 40 800 Td\n" + "".join(f"({_pdf_escape(line)}) Tj T*\n" for line in lines) + "ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>"
        ),
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Title ({_pdf_escape(title)}) /Producer (llm_platform build_corpus) >>",
    ]
    body, offsets = "%PDF-1.4\n", []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body.encode("latin-1")))
        body += f"{number} 0 obj\n{obj}\nendobj\n"
    xref = len(body.encode("latin-1"))
    table = "".join(f"{offset:010d} 00000 n \n" for offset in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return (body + f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n{table}" + trailer).encode("latin-1")


def _wrap(line: str, width: int) -> list[str]:
    words, lines, current = line.split(" "), [], ""
    for word in words:
        if current and len(current) + len(word) + 1 > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current]


def _pdf_escape(text: str) -> str:
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _write_defects() -> dict[str, object]:
    _write("oncall-contacts.md", _PII_PAGE.encode("utf-8"))
    near = to_markdown(topics[NEAR_DUPLICATE_TOPIC])
    _write(f"{NEAR_DUPLICATE_TOPIC}.md", near.encode("utf-8"))
    for old, new in (("comparison", "compare"), ("result", "outcome"), ("operators", "operations")):
        near = near.replace(old, new, 1)
    _write(f"{NEAR_DUPLICATE_TOPIC}_draft.md", near.encode("utf-8"))
    _write(f"{EXACT_DUPLICATE_TOPIC}.txt", topics[EXACT_DUPLICATE_TOPIC].encode("utf-8"))
    _write(f"{EXACT_DUPLICATE_TOPIC}_copy.txt", topics[EXACT_DUPLICATE_TOPIC].encode("utf-8"))
    _write("architecture-diagram.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    _write("meeting-notes.md", b"\n   \n")
    _write("legacy-export.txt", _undecodable_bytes())
    _write(f"{MOJIBAKE_TOPIC}.txt", _mojibake(topics[MOJIBAKE_TOPIC]))
    _write(f"{CP1252_TOPIC}.txt", topics[CP1252_TOPIC].encode("cp1252"))
    _write("status.md", b"Copyright 2024 Acme Corp. All rights reserved.\n\nok\n")
    # Keyed by source, then by locator relative to that source's folder.
    return {
        "handbook": {
            "rejections": {
                "architecture-diagram.txt": "binary",
                "meeting-notes.md": "empty",
                "legacy-export.txt": "encoding",
                "status.md": "too_short",
            },
            "duplicates": {
                f"{EXACT_DUPLICATE_TOPIC}_copy.txt": ["exact", f"{EXACT_DUPLICATE_TOPIC}.txt"],
                f"{NEAR_DUPLICATE_TOPIC}_draft.md": ["near", f"{NEAR_DUPLICATE_TOPIC}.md"],
            },
            "pii": {"oncall-contacts.md": ["email", "phone", "ip_address", "credit_card", "api_key"]},
            "repaired_encoding": [f"{MOJIBAKE_TOPIC}.txt", f"{CP1252_TOPIC}.txt"],
        },
        "faq": {"rejections": {"faq.jsonl#L21": "malformed"}},
    }


def _mojibake(text: str) -> bytes:
    # UTF-8 misread as Windows-1252 and saved again as UTF-8: the classic mojibake
    # ftfy repairs. The "sloppy" codec keeps the bytes cp1252 leaves undefined.
    return text.encode("utf-8").decode("sloppy-windows-1252").encode("utf-8")


def _undecodable_bytes() -> bytes:
    # ASCII words interleaved with random high bytes: valid in no encoding as readable text.
    rng = random.Random(7)
    noise = (bytes(rng.randrange(0x80, 0x100) for _ in range(12)) for _ in range(200))
    return b"".join(b"record " + chunk for chunk in noise)


_PII_PAGE = """# On-call contacts and escalation

This page lists who to contact when the payments service pages at night, and
the details the incident commander needs during the first hour of an outage.

## People

The primary on-call engineer this quarter is Jane Doe (jane.doe@example.com,
phone +1 415 555 0134). The secondary is Omar Haddad, reachable at
omar.haddad@example.org or (212) 555-0199 outside office hours.

## Systems

The payments gateway runs on 10.20.30.40 and its standby on
2001:db8:85a3::8a2e:370:7334. Test transactions use the card number
4111 1111 1111 1111 with any future expiry date. The deploy robot still uses
the access key AKIAIOSFODNN7EXAMPLE, which must be rotated before the audit.

## Escalation

If neither engineer answers within fifteen minutes, escalate to the service
owner and open an incident in the tracker with the time the page fired, the
dashboards you looked at, and what you already tried.
"""


def _write_faq() -> None:
    records = [
        {"id": f"faq-{index:03d}", "title": title, "text": body}
        for index, (title, body) in enumerate(_faq_sections()[:FAQ_COUNT], start=1)
    ]
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    lines.insert(20, '{"id": "faq-bad", "title": "Truncated record", "text": "This line was cut off')
    (FAQ / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _faq_sections() -> list[tuple[str, str]]:
    # Some sections repeat a whole handbook topic; leave them out so the two
    # sources do not duplicate each other.
    others = [minhash_signature(text) for name, text in topics.items() if name not in FAQ_TOPICS]
    sections = []
    for topic in FAQ_TOPICS:
        text = topics[topic]
        headings = find_headings(text, "rst")
        for heading, following in zip(headings, [*headings[1:], None], strict=True):
            end = following.offset if following else len(text)
            body = text[heading.offset : end].split("\n", 2)[-1].strip()
            if len(body) >= 200 and not _repeats_a_topic(body, others):
                sections.append((heading.title, body))
    return sections


def _repeats_a_topic(text: str, signatures: list[np.ndarray]) -> bool:
    signature = minhash_signature(text)
    # The share of equal MinHash values estimates Jaccard similarity.
    return any(float(np.mean(signature == other)) >= 0.5 for other in signatures)


if __name__ == "__main__":
    main()
