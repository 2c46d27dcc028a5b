"""Datasets and assets are named by their handles: no store call, asset selection or dependency names one by a string
literal.

A dataset's name is typed once, in its `Dataset` handle (each domain's `datasets` module);
an asset key's once, in its module-level `AssetKey` constant. Everything else passes those.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llm_platform

PACKAGE = Path(llm_platform.__file__).parent
# Store calls, and where in the call the dataset goes.
DATASET_ARGUMENT = {
    "read": 0,
    "write": 0,
    "schema": 0,
    "current_version": 0,
    "iter_batches": 0,
    "read_record": 0,
    "write_record": 0,
    "of_dataset": 1,
}
STORES = ("datasets", "store", "storage", "PreviousRows")
SELECTIONS = {"assets", "keys"}
ASSET_KEYWORDS = {"deps", "asset", "asset_key", "key"}


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _texts(node: ast.AST) -> list[ast.AST]:
    items = node.elts if isinstance(node, ast.List | ast.Tuple | ast.Set) else [node]
    return [item for item in items if _is_text(item)]


def _store_call_by_name(call: ast.Call) -> bool:
    func = call.func
    if (
        not isinstance(func, ast.Attribute)
        or func.attr not in DATASET_ARGUMENT
        or not ast.unparse(func.value).endswith(STORES)
    ):
        return False
    position = DATASET_ARGUMENT[func.attr]
    return len(call.args) > position and _is_text(call.args[position])


def _selection_by_name(call: ast.Call) -> bool:
    func = call.func
    is_selection = (
        isinstance(func, ast.Attribute)
        and func.attr in SELECTIONS
        and ast.unparse(func.value).endswith("AssetSelection")
    )
    return is_selection and any(_texts(arg) for arg in call.args)


def _asset_keyword_by_name(call: ast.Call) -> bool:
    return any(keyword.arg in ASSET_KEYWORDS and _texts(keyword.value) for keyword in call.keywords)


def _declarations(tree: ast.Module) -> set[int]:
    """Ids of the `AssetKey("…")` calls that are module-level constants: the one place an asset's name is typed."""
    return {id(node.value) for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)}


def _asset_key_by_name(call: ast.Call, declarations: set[int]) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "AssetKey" and any(_is_text(arg) for arg in call.args) and id(call) not in declarations


def named_by_string(source: str) -> list[str]:
    """`line: call` for each call in `source` that names a dataset or an
    asset by a string literal outside its declaration.
    """
    tree = ast.parse(source)
    declarations = _declarations(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (
            _store_call_by_name(node)
            or _selection_by_name(node)
            or _asset_keyword_by_name(node)
            or _asset_key_by_name(node, declarations)
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_no_module_names_a_dataset_or_asset_by_a_string():
    found = {
        str(path.relative_to(PACKAGE)): named_by_string(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert {path: calls for path, calls in found.items() if calls} == {}


def test_a_store_read_naming_its_dataset_by_a_string_is_found():
    assert named_by_string('storage.datasets.read("chunks", key)') == ["1: storage.datasets.read('chunks', key)"]


def test_a_store_write_naming_its_dataset_by_an_f_string_is_found():
    assert len(named_by_string('store.write(f"quarantine_{stage}", source, [table], SCHEMA, run_id)')) == 1


def test_a_record_read_by_a_string_is_found():
    assert len(named_by_string('storage.read_record("base_model")')) == 1


def test_previous_rows_of_a_dataset_named_by_a_string_are_found():
    assert len(named_by_string('PreviousRows.of_dataset(storage.datasets, "chunks", key, COLUMNS)')) == 1


def test_a_selection_by_asset_names_is_found():
    assert len(named_by_string('dg.AssetSelection.assets("retrieval_eval", "published_index")')) == 1


def test_dependencies_named_by_strings_are_found():
    assert len(named_by_string('@dg.asset(deps=["published_index", "production_model"])\ndef serving_log(): ...')) == 1


def test_an_asset_key_typed_inside_a_function_is_found():
    assert len(named_by_string('def keys():\n    return dg.AssetKey("chunks")')) == 1


def test_handles_and_declared_keys_pass():
    source = (
        'CHUNKS = dg.AssetKey(CHUNKS_DATA.name)\nVECTOR_INDEX = dg.AssetKey("vector_index")\n'
        'storage.datasets.read(CHUNKS_DATA, key, columns=["text"])\nstorage.read_record(BASE_MODEL_DATA)\n'
        "dg.AssetSelection.assets(*DOCUMENT_ASSETS)\nhandle.read()\n"
    )
    assert named_by_string(source) == []
