"""The no-PII rule, and the mask every document rule's failure examples pass through.

Both ask two opinions: the redactor's detectors (`pii`) and the broader, independent
audit (`pii_audit`), which shares no rule with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from llm_platform.documents.pii import find_pii, redact_pii
from llm_platform.documents.pii_audit import audit_pii, audit_random_tokens, mask_audit_hits
from llm_platform.rules import masked_examples

if TYPE_CHECKING:
    import pandera.pandas as pa


def pii_left(text: str) -> bool:
    """Whether `text` holds PII by either opinion: the redactor's detectors, or the broader independent audit."""
    return bool(find_pii(text) or audit_pii(text))


def pii_left_in_path(path: str) -> bool:
    """Whether the file path `path` holds PII by either opinion, "/" read as what separates its names
    (as `pii.redact_locator` reads it).

    Digits on either side of a separator are two names ("copy-0138/0001-a.md"),
    never one phone number ("0138/0001" in prose is a German one); every other
    finding counts in the whole path, since a URL's `user:password@host` spans names.
    """
    spanning = [kind for kind, _ in (*find_pii(path), *audit_pii(path)) if kind != "phone"]
    return bool(spanning) or any(pii_left(name) for name in path.split("/"))


def shown_without_pii(text: str) -> str:
    # Examples land in the event log, which must never hold what cleaning
    # redacts, nor what the audit found that the redactor missed.
    return mask_audit_hits(redact_pii(text)[0])


def without_pii_in_examples(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """`schema`, its failure examples shown with every PII finding of either opinion masked."""
    return masked_examples(schema, shown_without_pii)


def no_pii_left(*columns: str, paths: tuple[str, ...] = ()) -> pa.DataFrameSchema:
    """No value in `columns` (default: text) holds anything the redactor or the
    independent audit finds; a column named in `paths` holds file paths
    (`pii_left_in_path`); nulls pass.
    """
    import pandera.pandas as pa

    def check(found: Callable[[str], bool]) -> pa.Check:
        return pa.Check(lambda s: s.map(lambda text: text is None or not found(text)), name="no PII pattern")

    return without_pii_in_examples(
        pa.DataFrameSchema(
            {
                column: pa.Column(str, check(pii_left_in_path if column in paths else pii_left), nullable=True)
                for column in columns or ("text",)
            },
            name="no_pii",
        )
    )


def no_random_tokens_left(*columns: str) -> pa.DataFrameSchema:
    """No value in `columns` (default: text) holds a run the audit reads as a
    generated key with nothing naming it one; nulls pass.
    """
    import pandera.pandas as pa

    check = pa.Check(
        lambda s: s.map(lambda text: text is None or not audit_random_tokens(text)), name="no random token"
    )
    return without_pii_in_examples(
        pa.DataFrameSchema(
            {column: pa.Column(str, check, nullable=True) for column in columns or ("text",)}, name="no_random_tokens"
        )
    )
