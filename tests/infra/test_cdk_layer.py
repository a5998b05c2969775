"""The core layer's asset hash: what makes a dependency or code change rebuild the layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.constructs.layer import source_hash


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, Path]:
    lock = tmp_path / "uv.lock"
    lock.write_text('[[package]]\nname = "pydantic"\nversion = "2.11.0"\n')
    tree = tmp_path / "core"
    (tree / "payplat").mkdir(parents=True)
    (tree / "payplat" / "__init__.py").write_text("")
    return lock, tree


def test_a_dependency_change_changes_the_hash(source: tuple[Path, Path]) -> None:
    # Given the hash of a lock file and a package tree
    lock, tree = source
    before = source_hash(lock, tree)

    # When a locked version changes
    lock.write_text(lock.read_text().replace("2.11.0", "2.12.0"))

    # Then the layer hash changes
    assert source_hash(lock, tree) != before


def test_a_code_change_changes_the_hash(source: tuple[Path, Path]) -> None:
    # Given the hash of a lock file and a package tree
    lock, tree = source
    before = source_hash(lock, tree)

    # When a module is added
    (tree / "payplat" / "ledger.py").write_text("X = 1\n")

    # Then the layer hash changes
    assert source_hash(lock, tree) != before


def test_bytecode_does_not_change_the_hash(source: tuple[Path, Path]) -> None:
    # Given the hash of a lock file and a package tree
    lock, tree = source
    before = source_hash(lock, tree)

    # When Python writes bytecode caches next to the sources
    (tree / "payplat" / "__pycache__").mkdir()
    (tree / "payplat" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")

    # Then the layer hash is unchanged (the layer would not rebuild for it)
    assert source_hash(lock, tree) == before
