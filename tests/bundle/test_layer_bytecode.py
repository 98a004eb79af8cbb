"""The Lambda layer: compiled whole by the runtime's interpreter, then bytecode only
for what importing the model's frameworks reads (bytecode_only.py, tested on its own in
test_bytecode_only.py); every fallback keeps every module's bytecode and source."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from slml.bundle.bytecode import Interpreter
from slml.bundle.layer_bytecode import compile_layer, foreign_machine
from tests.bundle.test_bytecode_only import GONE, KEPT, SOURCES, cached, layer, sourceless, sources

HERE = Interpreter(sys.executable, platform.python_version())


def compiled(root: Path, **options) -> list[str]:
    requirements = options.pop("requirements", ["fw==1.0", "dep"])
    return compile_layer(HERE, root, lambda_path="/opt/python", requirements=requirements,
                         **options)  # fmt: skip


def test_foreign_machines_are_named_and_this_one_is_not():
    here = platform.machine().lower()
    other = "arm64" if here in ("x86_64", "amd64") else "x86_64"
    assert foreign_machine(None) is None
    assert foreign_machine("x86_64" if other == "arm64" else "arm64") is None
    assert f"{other} code cannot run on this {here} machine" in (foreign_machine(other) or "")


def test_what_the_frameworks_read_ships_as_bytecode_only_and_the_note_says_so(tmp_path):
    root = layer(tmp_path / "python", compiled=False)
    notes = compiled(root)
    assert sourceless(root) == KEPT and sources(root) == GONE and not cached(root)
    note = notes[-1]
    assert note.startswith(f"bytecode for the {len(KEPT)} modules that importing fw ")
    assert f"the other {len(GONE)} ship as source only" in note
    assert "aws.bytecode: full keeps them all" in note
    assert f"{len(KEPT)} of them ship as bytecode only" in note
    assert "proved by importing the frameworks again" in note
    assert "requirements.source_code: keep ships every source" in note


def test_keep_sources_keeps_every_source_beside_the_bytecode_read(tmp_path):
    root = layer(tmp_path / "python", compiled=False)
    notes = compiled(root, keep_sources=True)
    assert cached(root) == KEPT and sources(root) == KEPT | GONE and not sourceless(root)
    assert notes[-1].endswith("every source kept: requirements.source_code: keep")


@pytest.mark.parametrize(
    ("options", "files", "reason"),
    [
        ({"full": True}, SOURCES, "aws.bytecode: full"),
        ({"requirements": ["absent"]}, SOURCES, "the model requires no installed distribution"),
        ({}, {**SOURCES, "fw/__init__.py": "raise RuntimeError('no')\n"}, "fw did not import here"),
    ],
)  # fmt: skip
def test_every_module_keeps_bytecode_and_source_when_the_walk_cannot_tell(
    tmp_path, options, files, reason
):
    root = layer(tmp_path / "python", files, compiled=False)
    notes = compiled(root, **options)
    assert cached(root) == KEPT | GONE and sources(root) == KEPT | GONE
    assert notes[-1].startswith(f"bytecode for every module: {reason}")


def test_a_foreign_machine_keeps_every_module(tmp_path):
    root = layer(tmp_path / "python", compiled=False)
    other = "arm64" if platform.machine().lower() in ("x86_64", "amd64") else "x86_64"
    notes = compiled(root, machine=other)
    assert cached(root) == KEPT | GONE and sources(root) == KEPT | GONE
    assert "cannot run on this" in notes[-1]
