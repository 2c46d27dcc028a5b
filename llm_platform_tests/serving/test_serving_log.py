"""serving_log folds the redacted query log into a dataset; its drift
check fails when questions leave the corpus's topics.
"""

from __future__ import annotations

import dagster as dg
import pytest

from llm_platform.datasets import DatasetStore
from llm_platform.definitions import build_definitions
from llm_platform.serving.assets import QUERY_DRIFT
from llm_platform.serving.datasets import SERVING_LOG_DATA
from llm_platform.serving.query_log import QueryLog, read_query_log
from llm_platform_tests.serving.conftest import platform_of, serving_config

ON_TOPIC = [
    "How does a for loop iterate over a list?",
    "What does the with statement do with a context manager?",
    "How do I add a key to a dict?",
    "What happens when an exception is raised in a try block?",
    "How does augmented assignment like += work?",
    "What are the boolean operations and, or, not?",
]
OFF_TOPIC = [
    "What is a good recipe for banana bread?",
    "How do I repot an orchid?",
    "Which football team won the league in 1998?",
    "How long should I boil an egg?",
    "What is the best beach in Portugal for surfing?",
    "How do I knit a scarf?",
]


def log_questions(home: str, questions: list[str]) -> QueryLog:
    log = QueryLog(home)
    for n, question in enumerate(questions):
        log.append(
            {
                "id": f"chatcmpl-{n}",
                "question": question,
                "answer": "an answer",
                "citations": ["c1"],
                "cached": False,
                "latency_ms": 12.5,
                "index_version": 3,
                "adapter_version": "1",
                "prompt_version": "p",
            }
        )
    return log


def materialize(platform, config) -> dg.ExecuteInProcessResult:
    defs = build_definitions(config, home=platform.home, executor="in_process")
    return dg.materialize(
        [defs.get_assets_def("serving_log")], instance=platform.instance, resources=defs.resources, raise_on_error=False
    )


def drift_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == QUERY_DRIFT]
    return evaluation


@pytest.fixture
def platform(promoted, tmp_path):
    return platform_of(promoted, tmp_path)


def test_questions_about_the_corpus_pass_the_drift_check(platform):
    config = serving_config(platform)
    log_questions(platform.home, ON_TOPIC)

    result = materialize(platform, config)

    check = drift_check(result)
    assert result.success and check.passed
    assert check.metadata["centroid_distance"].value <= config.serving.query_drift_threshold
    assert DatasetStore(platform.home).read(SERVING_LOG_DATA, None).num_rows == len(ON_TOPIC)


def test_questions_off_the_corpus_fail_the_drift_check_with_the_numbers(platform):
    config = serving_config(platform)
    log_questions(platform.home, OFF_TOPIC)

    check = drift_check(materialize(platform, config))

    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert (
        check.metadata["centroid_distance"].value
        > check.metadata["threshold"].value
        == config.serving.query_drift_threshold
    )
    assert check.metadata["questions"].value == len(OFF_TOPIC)


def test_personal_data_never_reaches_the_log_or_the_dataset(platform):
    config = serving_config(platform)
    log_questions(platform.home, ["My email is jane.doe@example.com, how do for loops work?"])

    result = materialize(platform, config)

    (record,), _ = read_query_log(platform.home)
    (row,) = DatasetStore(platform.home).read(SERVING_LOG_DATA, None).to_pylist()
    assert "jane.doe@example.com" not in record["question"] and "jane.doe@example.com" not in row["question"]
    assert row["pii_redacted"] == 1
    assert result.asset_materializations_for_node("serving_log")[0].metadata["pii_redacted"].value == 1


def test_a_torn_line_is_reported_and_the_rest_kept(platform):
    log = log_questions(platform.home, ON_TOPIC[:2])
    with open(log.segments.current, "a", encoding="utf-8") as handle:  # as a writer killed mid-line leaves its segment
        handle.write('{"question": "cut sh')

    records, problems = read_query_log(platform.home)

    assert len(records) == 2 and len(problems) == 1 and "not valid JSON" in problems[0]
