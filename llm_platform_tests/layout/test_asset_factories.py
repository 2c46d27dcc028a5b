"""Every asset is a short function a reader finds from its name: `<asset>_asset` in its domain's Dagster module."""

from __future__ import annotations

import ast
import inspect
import textwrap

import dagster as dg
import pytest

from llm_platform.config import PlatformConfig, SourceConfig
from llm_platform.definitions import build_definitions

DAGSTER_MODULES = ("assets", "embedding_assets", "sft_assets")
DOMAINS = ("documents", "index", "model", "serving")
# Counted in statements, not lines, so the formatter's layout does not move it: the longest asset today
# (model_eval) has 18; past this, its work belongs in helpers.
MAX_ASSET_STATEMENTS = 20


def _assets() -> list[dg.AssetsDefinition]:
    config = PlatformConfig(sources=[SourceConfig(name="alpha", location="/unused")])
    return list(build_definitions(config, executor="in_process").assets or [])


ASSETS = {asset.op.name: asset for asset in _assets()}


def _compute_fn(asset: dg.AssetsDefinition):
    return asset.op.compute_fn.decorated_fn


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_asset_comes_from_its_own_factory_in_its_domains_dagster_module(name: str) -> None:
    """Either a module-level asset or one made by `<name>_asset`: never one of several assets inside a builder."""
    fn = _compute_fn(ASSETS[name])
    package, domain, module = fn.__module__.split(".")
    assert package == "llm_platform" and domain in DOMAINS and module in DAGSTER_MODULES, fn.__module__
    assert fn.__qualname__ in (name, f"{name}_asset.<locals>.{name}")


def statements_in(source: str) -> int:
    """The statements of the one function in `source`, nested ones included, its `def` not."""
    [node] = ast.parse(textwrap.dedent(source)).body
    return sum(isinstance(inner, ast.stmt) for inner in ast.walk(node)) - 1


def test_a_function_of_more_statements_than_allowed_is_too_long() -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_ASSET_STATEMENTS + 1))
    assert statements_in(f"def long():\n{body}") > MAX_ASSET_STATEMENTS


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_asset_body_is_short_enough_to_scan(name: str) -> None:
    assert statements_in(inspect.getsource(_compute_fn(ASSETS[name]))) <= MAX_ASSET_STATEMENTS
