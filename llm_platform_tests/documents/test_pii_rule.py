"""`no_pii_left` reads a file's path as a path: "/" separates its names."""

import pandas as pd
import pandera.errors
import pytest

from llm_platform.documents.pii import redact_locator
from llm_platform.documents.pii_rule import no_pii_left, pii_left, pii_left_in_path


def _passes(locator: str) -> bool:
    try:
        no_pii_left("text", "locator", paths=("locator",)).validate(
            pd.DataFrame({"text": ["ok"], "locator": [locator]})
        )
    except pandera.errors.SchemaError:
        return False
    return True


# Found by `benchmarks/sharded_scale.py --megabytes 2000 --shards 64`: 1,874 of 2,779 documents of the first shard
# failed the check on their file names alone ("copy-0138/0001-accelerate.md"), which read as a German phone number.
@pytest.mark.parametrize("locator", ["copy-0138/0001-accelerate.md", "tickets/0301/234567.md"])
def test_numbered_folders_and_files_are_no_phone_number(locator):
    assert pii_left(locator)  # the same digits as prose would be one
    assert not pii_left_in_path(locator) and _passes(locator)


@pytest.mark.parametrize(
    "locator",
    [
        "customers/jane.doe@example.com.md",
        "calls/+44 20 7946 0958.txt",
        "https://deploy:hunter2xyz@git.example.com/repo/README.md",  # a credential across the URL's names
        "keys/ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A.md",
    ],
)
def test_pii_in_a_file_name_or_across_a_url_still_fails_the_check(locator):
    assert pii_left_in_path(locator) and not _passes(locator)


def test_a_column_not_named_as_a_path_is_read_as_prose():
    frame = pd.DataFrame({"text": ["copy-0138/0001"], "locator": ["a.md"]})
    with pytest.raises(pandera.errors.SchemaError):
        no_pii_left("text", "locator", paths=("locator",)).validate(frame)


@pytest.mark.parametrize("locator", ["docs/0769 53333.md", "docs/(085) 289-222.md", "a/b/call 030 1234567.txt#L4"])
def test_a_phone_number_that_starts_a_name_inside_a_folder_is_redacted_and_then_passes(locator):
    redacted = redact_locator(locator)
    assert "[REDACTED_PHONE]" in redacted and pii_left_in_path(locator) and _passes(redacted)
