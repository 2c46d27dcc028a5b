"""Every test folder mirrors a part of the package, so where a test lives says what it tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import llm_platform

PACKAGE = Path(llm_platform.__file__).parent
TESTS = Path(__file__).resolve().parents[1]
# The only folders that test no single part of the package, each with the reason.
CROSS_CUTTING = {
    # The package's shape as a whole: its import graph, dataset handles and asset factories.
    "layout",
    # What ships outside the package: the k8s/ manifests, Helm values and the cluster's instance config.
    "deploy",
}


def folders_under(tests: Path) -> list[str]:
    """The folders directly under `tests`, less caches."""
    return sorted(path.name for path in tests.iterdir() if path.is_dir() and path.name != "__pycache__")


def mirrors(name: str, package: Path) -> bool:
    """Whether `name` is a package folder (`package/<name>/`) or module (`package/<name>.py`)."""
    return (package / name).is_dir() or (package / f"{name}.py").is_file()


def unmirrored(folders: Iterable[str], package: Path) -> list[str]:
    """The test folders that neither mirror a part of `package` nor are allowed as cross-cutting."""
    return sorted(name for name in folders if name not in CROSS_CUTTING and not mirrors(name, package))


def test_every_test_folder_is_named_for_a_package_folder_or_module():
    assert unmirrored(folders_under(TESTS), PACKAGE) == []


def test_a_test_folder_named_for_no_part_of_the_package_is_reported(tmp_path):
    package, tests = tmp_path / "package", tmp_path / "tests"
    (package / "documents").mkdir(parents=True)
    (package / "config.py").write_text("")
    for name in ("documents", "config", "pipeline", "__pycache__"):
        (tests / name).mkdir(parents=True)

    assert unmirrored(folders_under(tests), package) == ["pipeline"]


def test_the_folders_this_tree_used_to_mix_tests_in_are_reported():
    assert unmirrored(["pipeline", "model_assets", "storage", "ui"], PACKAGE) == [
        "model_assets",
        "pipeline",
        "storage",
        "ui",
    ]


def test_every_cross_cutting_folder_exists_and_mirrors_nothing():
    # An allowance left behind by a removed folder, or one for a folder that now has a
    # package counterpart, would let a misplaced folder of that name back in unnoticed.
    assert sorted(name for name in CROSS_CUTTING if not (TESTS / name).is_dir() or mirrors(name, PACKAGE)) == []


def test_no_test_module_lives_at_the_top_of_the_tests_tree():
    # The top holds only helpers shared across folders (conftest, fake servers); a test there mirrors nothing.
    assert sorted(path.name for path in TESTS.glob("test_*.py")) == []
