"""/v1/search as a caller: each API key (or a trusted proxy's header)
searches as its groups, filtered inside the search.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from llm_platform.index.access import ReaderGroups
from llm_platform.serving.server import Service, build_service, check_exposure
from llm_platform_tests.serving.conftest import IDLE
from llm_platform_tests.serving.restricted import (
    ENG,
    HR,
    KEYS,
    NOBODY,
    PUBLIC,
    QUESTION,
    bearer,
    chunk_ids,
    loaded,
    over_restricted,
    restricted_table,
)
from llm_platform_tests.serving.test_feedback import demo_config

MODES = ("vector", "fts", "hybrid")
HEADER = "X-Auth-Request-Groups"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restricted")
    return restricted_table(folder, demo_config(folder))


def client_of(
    table, tmp_path, monkeypatch, *, keys: dict | None = KEYS, single_key: str | None = None, **serving
) -> Service:
    """A service over the restricted table, with `keys` in $LLM_PLATFORM_API_KEYS,
    `single_key` in $LLM_PLATFORM_API_KEY and `serving` settings.
    """
    config = demo_config(tmp_path, **serving)
    for env, value in (
        (config.serving.api_keys_env, json.dumps(keys) if keys else None),
        (config.serving.api_key_env, single_key),
    ):
        monkeypatch.setenv(env, value) if value else monkeypatch.delenv(env, raising=False)
    return loaded(build_service(config, str(tmp_path / "home"), sources=over_restricted(IDLE, table)))


@pytest.fixture
def client(table, tmp_path, monkeypatch) -> Service:
    return client_of(table, tmp_path, monkeypatch)


def post_search(service: Service, headers: dict, **body):
    return TestClient(service.app).post("/v1/search", headers=headers, json={"query": QUESTION, **body})


def found(service: Service, headers: dict, mode: str = "vector", k: int = 10) -> set[str]:
    response = post_search(service, headers, mode=mode, k=k)
    assert response.status_code == 200, response.text
    return chunk_ids(response.json()["data"])


def test_the_question_finds_hr_rows_first_when_nothing_is_filtered(table):
    """Without this, the tests below could pass because HR's rows never ranked anyway."""
    from llm_platform.index.table import search

    top = search(table, QUESTION, None, mode="fts", k=2, readers=ReaderGroups.everyone())
    assert chunk_ids(top) <= HR | NOBODY


@pytest.mark.parametrize("mode", MODES)
def test_an_eng_caller_never_gets_an_hr_chunk(client, mode):
    assert found(client, bearer("eng-key"), mode) == ENG | PUBLIC


@pytest.mark.parametrize("mode", MODES)
def test_an_hr_caller_gets_hr_chunks_and_public_ones(client, mode):
    assert found(client, bearer("hr-key"), mode) == HR | PUBLIC


@pytest.mark.parametrize("mode", MODES)
def test_top_k_is_taken_among_the_callers_rows_so_it_stays_full(client, mode):
    assert (
        found(client, bearer("eng-key"), mode, k=2) <= ENG | PUBLIC
        and len(found(client, bearer("eng-key"), mode, k=2)) == 2
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_row_with_no_readers_is_read_by_no_caller(client, mode):
    assert not found(client, bearer("both-key"), mode) & NOBODY


@pytest.mark.parametrize("mode", MODES)
def test_a_key_with_no_groups_reads_public_rows_only(client, mode):
    assert found(client, bearer("nogroup-key"), mode) == PUBLIC


def test_without_any_key_configured_callers_read_public_rows_only(table, tmp_path, monkeypatch):
    open_client = client_of(table, tmp_path, monkeypatch, keys=None)
    assert found(open_client, {}) == PUBLIC


def test_the_single_key_reads_as_api_key_groups_and_public_rows_only_without_them(table, tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    (tmp_path / "grouped").mkdir()
    plain = client_of(table, tmp_path / "plain", monkeypatch, keys=None, single_key="the-one-key")
    grouped = client_of(
        table, tmp_path / "grouped", monkeypatch, keys=None, single_key="the-one-key", api_key_groups=["eng"]
    )

    assert found(plain, bearer("the-one-key")) == PUBLIC
    assert found(grouped, bearer("the-one-key")) == ENG | PUBLIC


def test_a_wrong_key_is_refused_naming_where_keys_live(client):
    response = post_search(client, bearer("hr-key-guess"))
    assert response.status_code == 401 and "LLM_PLATFORM_API_KEYS" in response.json()["error"]["message"]


def test_without_the_services_filter_an_eng_caller_would_get_hr_chunks(client, monkeypatch):
    """The guard's own test: remove the filter (the service searches as everyone) and the leak check above fails."""
    original = client.chat.search
    monkeypatch.setattr(
        client.chat,
        "search",
        lambda snap, query, *, readers, **options: original(snap, query, readers=ReaderGroups.everyone(), **options),
    )

    with pytest.raises(AssertionError):
        test_an_eng_caller_never_gets_an_hr_chunk(client, "vector")
    assert found(client, bearer("eng-key")) & HR


def test_a_trusted_proxy_header_gives_the_callers_groups(table, tmp_path, monkeypatch):
    proxied = client_of(table, tmp_path, monkeypatch, keys=None, trust_groups_header=True)

    assert found(proxied, {HEADER: "eng"}) == ENG | PUBLIC
    assert found(proxied, {HEADER: "hr, eng"}) == HR | ENG | PUBLIC
    assert found(proxied, {}) == PUBLIC


def test_the_groups_header_replaces_the_keys_groups_when_trusted(table, tmp_path, monkeypatch):
    proxied = client_of(table, tmp_path, monkeypatch, trust_groups_header=True)
    assert found(proxied, {**bearer("hr-key"), HEADER: "eng"}) == ENG | PUBLIC


def test_the_groups_header_is_ignored_unless_trusted(client):
    assert found(client, {**bearer("eng-key"), HEADER: "hr"}) == ENG | PUBLIC


def test_a_malformed_group_in_the_header_is_a_400_naming_the_header(table, tmp_path, monkeypatch):
    proxied = client_of(table, tmp_path, monkeypatch, keys=None, trust_groups_header=True)

    response = post_search(proxied, {HEADER: "HR Team"})

    assert response.status_code == 400 and HEADER in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "value, named",
    [
        ("not json", "not JSON"),
        ('["hr-key"]', "JSON object"),
        ('{"k": ["HR Team"]}', "HR Team"),
        ('{"k": 5}', "list of group names"),
        ('{"": ["hr"]}', "must not be empty"),
    ],
)
def test_a_malformed_keys_variable_stops_the_service_with_a_message(table, tmp_path, monkeypatch, value, named):
    monkeypatch.setenv("LLM_PLATFORM_API_KEYS", value)
    with pytest.raises(ValueError, match=named) as refused:
        build_service(demo_config(tmp_path), str(tmp_path / "home"), sources=IDLE)
    assert "LLM_PLATFORM_API_KEYS" in str(refused.value) and "hr-key" not in str(refused.value)


def test_a_trusted_header_on_an_open_address_needs_a_key_even_when_auth_is_waived():
    with pytest.raises(ValueError, match="trust_groups_header"):
        check_exposure(
            "0.0.0.0",
            has_key=False,
            key_env="LLM_PLATFORM_API_KEYS",
            insecure_no_auth=True,
            trusts_groups_header=HEADER,
        )
    check_exposure(
        "0.0.0.0", has_key=True, key_env="LLM_PLATFORM_API_KEYS", insecure_no_auth=False, trusts_groups_header=HEADER
    )
    check_exposure(
        "127.0.0.1", has_key=False, key_env="LLM_PLATFORM_API_KEYS", insecure_no_auth=False, trusts_groups_header=HEADER
    )
