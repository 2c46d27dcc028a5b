"""Only versions that passed the checks are served; rollback returns only to them unless forced."""

from __future__ import annotations

import pytest

from llm_platform.datasets import DatasetStore
from llm_platform.index.publishing import (
    PublishRefused,
    Score,
    probe_answers,
    publication_tag,
    publish_version,
    rollback,
    served_baseline,
    version_statuses,
)
from llm_platform.index.table import open_published, open_table, published_version, sync_source
from llm_platform_tests.index.tables import DIMENSION, SETTINGS, TABLE, TAG, rows, topic_slice

SCORE = Score(hit_rate=0.8, mrr=0.6, k=5, questions=10)


@pytest.fixture
def store(tmp_path):
    return DatasetStore(str(tmp_path / "home"))


def publish_now(db, store, table, keep=5, score=SCORE):
    return publish_version(db, store, TABLE, tag=TAG, version=table.version, score=score, keep=keep, run_id="test")


def test_an_empty_version_is_not_published(db, store, table):
    with pytest.raises(PublishRefused, match="has no rows"):
        publish_now(db, store, table)
    assert published_version(table, TAG) is None


def test_a_version_without_a_full_text_index_is_not_published(db, store, table):
    table.add(rows("docs", topic_slice(0, 5)))  # as a writer killed before upkeep leaves it
    with pytest.raises(PublishRefused, match="fts search fails"):
        publish_now(db, store, table)


def test_a_published_version_is_recorded_with_its_scores_and_tagged(db, store, table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    assert publish_now(db, store, table) is None
    [status] = version_statuses(table, store, TAG)
    assert (status.version, status.hit_rate, status.mrr, status.served) == (table.version, 0.8, 0.6, True)
    assert publication_tag(table.version) in table.tags.list()


def test_rollback_to_a_version_that_was_never_published_is_refused(db, store, table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    publish_now(db, store, table)
    with pytest.raises(PublishRefused, match="never published.*--force"):
        rollback(db, store, TABLE, tag=TAG, version=1)
    assert published_version(table, TAG) == table.version


def test_rollback_to_an_earlier_published_version_moves_the_tag(db, store, table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    first = table.version
    publish_now(db, store, table)
    sync_source(table, "docs", rows("docs", topic_slice(0, 9)), settings=SETTINGS)
    publish_now(db, store, table)
    assert rollback(db, store, TABLE, tag=TAG, version=first) == table.version
    assert open_published(db, TABLE, TAG).count_rows() == 5


def test_forced_rollback_still_refuses_a_version_that_cannot_answer(db, store, table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    with pytest.raises(PublishRefused, match="has no rows"):
        rollback(db, store, TABLE, tag=TAG, version=1, force=True)


def test_forced_rollback_serves_an_answering_unpublished_version(db, store, table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    unpublished = table.version
    sync_source(table, "docs", rows("docs", topic_slice(0, 9)), settings=SETTINGS)
    publish_now(db, store, table)
    rollback(db, store, TABLE, tag=TAG, version=unpublished, force=True)
    assert published_version(table, TAG) == unpublished


def test_only_the_last_publications_stay_tagged_for_rollback(db, store, table):
    published = []
    for stop in (3, 5, 7):
        sync_source(table, "docs", rows("docs", topic_slice(0, stop)), settings=SETTINGS)
        publish_now(db, store, table, keep=2)
        published.append(table.version)
    statuses = {s.version: s for s in version_statuses(table, store, TAG)}
    assert [statuses[v].rollback_target for v in published] == [False, True, True]


def test_probe_finds_nothing_wrong_with_a_synced_version(table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    assert probe_answers(table) == []


def test_a_new_models_table_is_compared_with_the_served_table_of_the_old_model(db, store, table):
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    publish_now(db, store, table)
    new = open_table(db, "chunks__new_model", DIMENSION)
    baseline = served_baseline(db, "chunks", TAG, "chunks__new_model")
    assert (baseline.name, baseline.version, baseline.model) == (TABLE, table.version, "test")
    assert served_baseline(db, "chunks", TAG, TABLE) is None and new.count_rows() == 0
