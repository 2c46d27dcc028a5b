"""Split cleaned text into token-bounded chunks, each labelled with its section heading.

Splitting is semantic-text-splitter's job (it keeps paragraphs, sentences and,
for Markdown, sections together while respecting a token budget); this module
only adds section headings and token counts, the latter remembered from the
splitter's own sizing rather than tokenized again.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tokenizers

CHUNKER_VERSION = "stsplit-1"  # bump when chunking changes; part of chunk identity

# html_text.html_to_text turns HTML into Markdown, so HTML chunks like Markdown.
MARKDOWN_FORMATS = frozenset({"md", "html"})

_ATX_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*")
_FENCE = re.compile(r" {0,3}(```|~~~)")
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1{2,}[ \t]*")
_MAX_TITLE_CHARS = 80
_MAX_PLAIN_TITLE_WORDS = 8
# Whitespace where BERT's pre-tokenizer always splits (a subset is enough: each split must be a token boundary).
_WORD_BREAK = re.compile(r"[ \t\n\r]+")
_SPLIT_BUT_JOINED = "\x0b\x0c\x1c\x1d\x1e\x1f\x85"
# Distinct words remembered across batches; past this the memory is dropped with the batch's counts.
_MAX_REMEMBERED_WORDS = 500_000


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: its order, text, section heading and size."""

    position: int
    text: str
    heading: str | None
    token_count: int
    char_start: int


@dataclass(frozen=True)
class Heading:
    """A section title found in a text, with where it starts and its depth (1 = top)."""

    offset: int
    level: int
    title: str


def load_tokenizer(model_path: str) -> tokenizers.Tokenizer:
    """Load `<model_path>/tokenizer.json` with truncation and padding off, for counting tokens."""
    path = Path(model_path) / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no tokenizer.json in the model folder; point model_path at a Hugging Face model folder"
        )
    import tokenizers

    return _counting_tokenizer(tokenizers.Tokenizer.from_file(str(path)))


def find_headings(text: str, fmt: str) -> list[Heading]:
    """Return the section headings of `text` in order.

    Markdown (and HTML, which arrives as Markdown): ATX `#` headings outside
    fenced code. reStructuredText: titles underlined (optionally overlined)
    with a repeated punctuation character at least as long as the title, the
    level being the order in which each adornment style first appears. Other
    formats: the reStructuredText rule, plus a short unindented line without
    closing punctuation that stands alone between blank lines (level 1).
    """
    lines = list(_lines(text))
    if fmt in MARKDOWN_FORMATS:
        return list(_markdown_headings(lines))
    headings = list(_underlined_headings(lines))
    if fmt != "rst":
        headings = sorted([*headings, *_plain_title_headings(lines)], key=lambda heading: heading.offset)
    return headings


@dataclass(frozen=True)
class ChunkerSettings:
    """What a Chunker is built from; a picklable factory, so each worker process builds its own."""

    model_path: str
    max_tokens: int
    overlap: int

    def __call__(self) -> Chunker:
        return Chunker(load_tokenizer(self.model_path), max_tokens=self.max_tokens, overlap=self.overlap)


class Chunker:
    """Token-bounded splitter, built once and reused for many documents."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, *, max_tokens: int = 256, overlap: int = 32) -> None:
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        if max_tokens <= overlap:
            raise ValueError(f"max_tokens must be greater than overlap ({overlap}), got {max_tokens}")
        # A private copy: counting needs truncation and padding off, and the
        # caller's tokenizer must stay as it was.
        import tokenizers
        from semantic_text_splitter import MarkdownSplitter, TextSplitter

        self._tokenizer = _counting_tokenizer(tokenizers.Tokenizer.from_str(tokenizer.to_str()))
        # The splitter sizes every chunk it returns through this counter, so the chunks'
        # token counts are already known when it is done: no second tokenization.
        self._sizer = TokenCounter(self._tokenizer)
        self._markdown = MarkdownSplitter.from_callback(self._sizer, max_tokens, overlap)
        self._plain = TextSplitter.from_callback(self._sizer, max_tokens, overlap)

    def chunk(self, text: str, *, fmt: str) -> list[Chunk]:
        """Return the chunks of `text` (format `fmt`) in order, each within the token budget."""
        return self.chunk_all([(text, fmt)])[0]

    def chunk_all(self, documents: Sequence[tuple[str, str]]) -> list[list[Chunk]]:
        """The chunks of each (text, format) document, in order.

        Splitting is the costly part of chunking; the splitter spreads a batch of
        texts over all cores, so many documents are best chunked in one call.
        """
        pieces: list[list[tuple[int, str]]] = [[] for _ in documents]
        for splitter, markdown in ((self._markdown, True), (self._plain, False)):
            chosen = [i for i, (_, fmt) in enumerate(documents) if (fmt in MARKDOWN_FORMATS) == markdown]
            if chosen:
                for i, found in zip(chosen, splitter.chunk_all_indices([documents[i][0] for i in chosen]), strict=True):
                    pieces[i] = found
        counts = iter(self._sizer.take([piece for found in pieces for _, piece in found]))
        return [_labelled(text, fmt, found, counts) for (text, fmt), found in zip(documents, pieces, strict=True)]


class TokenCounter:
    """Counts tokens of the texts a splitter sizes and remembers them until taken.

    The splitter sizes the same candidate text many times while it searches for
    boundaries; remembering counts makes that search cheaper than the splitter's own
    tokenizer binding, and leaves the final chunks' counts ready to take. It also
    sizes ever longer spans of one document (about ten times the text in all), so
    where whitespace always ends a token (`words_add_up`) a text's count is the sum
    of its words' counts, each word tokenized once.
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._counts: dict[str, int] = {}
        self._word_counts: dict[str, int] = {}
        self._by_words = words_add_up(tokenizer)
        self.counted_after_split = 0

    def __call__(self, text: str) -> int:
        count = self._counts.get(text)
        if count is None:
            count = self._counts[text] = self._count_words(text) if self._by_words else self._encoded_length(text)
        return count

    def take(self, texts: Sequence[str]) -> list[int]:
        """The counts of `texts` (the final chunks), then forget every count, so memory stays per batch."""
        # A splitter that trimmed a chunk after sizing it would leave it uncounted.
        missing = [text for text in dict.fromkeys(texts) if text not in self._counts]
        self.counted_after_split += len(missing)
        for text, encoding in zip(
            missing, self._tokenizer.encode_batch(missing, add_special_tokens=False), strict=False
        ):
            self._counts[text] = len(encoding.ids)
        counts = [self._counts[text] for text in texts]
        self._counts = {}
        if len(self._word_counts) > _MAX_REMEMBERED_WORDS:
            self._word_counts = {}
        return counts

    def _encoded_length(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _count_words(self, text: str) -> int:
        words = _words(text)
        counts = self._word_counts
        try:
            return sum(map(counts.__getitem__, words))
        except KeyError:
            new = [word for word in set(words) if word not in counts]
            for word, encoding in zip(new, self._tokenizer.encode_batch(new, add_special_tokens=False), strict=True):
                counts[word] = len(encoding.ids)
            return sum(map(counts.__getitem__, words))


def words_add_up(tokenizer: tokenizers.Tokenizer) -> bool:
    """Whether a text's token count is the sum of its whitespace-separated words' counts.

    True for WordPiece behind BERT's normalizer and pre-tokenizer (MiniLM and
    most sentence-transformers): the normalizer maps whitespace to spaces, the
    pre-tokenizer always splits there, and WordPiece reads each piece alone.
    Byte-level BPE and SentencePiece fold the space into the next token, so
    they are counted whole.
    """
    from tokenizers import models, normalizers, pre_tokenizers

    added = tokenizer.get_added_tokens_decoder().values()
    return (
        isinstance(tokenizer.model, models.WordPiece)
        and isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
        and (tokenizer.normalizer is None or isinstance(tokenizer.normalizer, normalizers.BertNormalizer))
        and not any(_WORD_BREAK.search(token.content) for token in added)
    )


def _words(text: str) -> list[str]:
    # str.split() also splits at a few control characters (\x0b, \x1c, \x85, ...)
    # that BERT's normalizer deletes, joining the letters around them.
    if any(char in text for char in _SPLIT_BUT_JOINED):
        return _WORD_BREAK.split(text)
    return text.split()


def _labelled(text: str, fmt: str, pieces: list[tuple[int, str]], token_counts: Iterator[int]) -> list[Chunk]:
    headings = find_headings(text, fmt) if pieces else []
    offsets = [heading.offset for heading in headings]
    chunks = []
    for position, (start, piece) in enumerate(pieces):
        index = bisect.bisect_right(offsets, start) - 1
        heading = headings[index].title if index >= 0 else None
        chunks.append(Chunk(position, piece, heading, next(token_counts), start))
    return chunks


def _counting_tokenizer(tokenizer: tokenizers.Tokenizer) -> tokenizers.Tokenizer:
    # Model configs often truncate (MiniLM: 128) and pad, which would cap or
    # inflate every count.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _lines(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.splitlines(keepends=True):
        yield offset, line.rstrip("\r\n")
        offset += len(line)


def _markdown_headings(lines: list[tuple[int, str]]) -> Iterator[Heading]:
    in_fence = False
    for offset, line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX_HEADING.fullmatch(line)
        if match:
            yield Heading(offset, len(match.group(1)), match.group(2).strip())


def _is_title_line(line: str) -> bool:
    stripped = line.strip()
    return (
        bool(stripped)
        and not line[0].isspace()
        and len(stripped) <= _MAX_TITLE_CHARS
        and not _ADORNMENT.fullmatch(line)
    )


def _underlined_headings(lines: list[tuple[int, str]]) -> Iterator[Heading]:
    styles: list[tuple[str, bool]] = []
    for index in range(len(lines) - 1):
        offset, line = lines[index]
        underline = _ADORNMENT.fullmatch(lines[index + 1][1])
        if not underline or not _is_title_line(line) or len(underline.group(0).rstrip()) < len(line.rstrip()):
            continue
        char = underline.group(1)
        overlined = index > 0 and lines[index - 1][1].strip() == lines[index + 1][1].strip()
        style = (char, overlined)
        if style not in styles:
            styles.append(style)
        start = lines[index - 1][0] if overlined else offset
        yield Heading(start, styles.index(style) + 1, line.strip())


def _plain_title_headings(lines: list[tuple[int, str]]) -> Iterator[Heading]:
    # Underlined titles never qualify here: their next line is the adornment, not blank.
    for index, (offset, line) in enumerate(lines):
        before_blank = index == 0 or not lines[index - 1][1].strip()
        after_blank = index + 1 < len(lines) and not lines[index + 1][1].strip()
        if before_blank and after_blank and _is_plain_title(line):
            yield Heading(offset, 1, line.strip())


def _is_plain_title(line: str) -> bool:
    stripped = line.strip()
    return (
        _is_title_line(line)
        and stripped[0].isupper()
        and stripped[-1] not in ".,;:!?)]}\"'"
        and len(stripped.split()) <= _MAX_PLAIN_TITLE_WORDS
    )
