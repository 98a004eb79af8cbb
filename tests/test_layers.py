"""The import graph keeps its floors: the pipeline data, bundle, artifact, runtime,
engine, rollout and state modules never import the providers or the CLI, and the
runtime (what runs inside every bundle) imports nothing of slml outside itself.

Every ``import`` statement counts, wherever it stands (module level, inside a
function, under ``TYPE_CHECKING``), read from the source with ``ast``: a lazy import
is still a dependency. ``check_layers`` also runs on a synthetic tree, so the test is
known to fail when a rule is broken.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import slml

FORBIDDEN_ABOVE = ("slml.providers", "slml.cli")
LOWER_FLOORS = (
    "slml.bundle",
    "slml.artifact",
    "slml.runtime",
    "slml.engine",
    "slml.pipeline",
    "slml.rollout",
    "slml.state",
)
RUNTIME = "slml.runtime"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported name) for every import in ``path``, relative imports resolved;
    ``from a import b`` yields ``a`` and ``a.b`` (b may be a module)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield node.lineno, base
            for alias in node.names:  # `from slml import providers` imports a module
                yield node.lineno, f"{base}.{alias.name}"


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def check_layers(root: Path) -> list[str]:
    """Each broken rule as ``file:line: module imports target``, for the package at
    ``root`` (a directory named like the package, e.g. .../slml)."""
    package = root.name
    lower = tuple(p.replace("slml", package, 1) for p in LOWER_FLOORS)
    above = tuple(p.replace("slml", package, 1) for p in FORBIDDEN_ABOVE)
    runtime = RUNTIME.replace("slml", package, 1)
    broken: dict[str, str] = {}  # the first broken import of each statement
    for path in sorted(root.rglob("*.py")):
        module = module_name(root, path)
        for line, target in imports_of(path, module):
            where = f"{path.relative_to(root.parent)}:{line}"
            if where in broken:
                continue
            if any(within(module, p) for p in lower) and any(within(target, a) for a in above):
                broken[where] = f"{where}: {module} imports {target}"
            elif (
                within(module, runtime)
                and within(target, package)
                and not within(target, runtime)
                and target != package
            ):
                broken[where] = f"{where}: {module} imports {target} (the runtime imports only "
                broken[where] += f"{runtime})"
    return sorted(broken.values())


def test_the_floors_of_slml_hold():
    root = Path(slml.__file__).parent
    assert check_layers(root) == []


def test_every_lower_floor_exists():
    """A renamed module would make its rule vacuous: each named floor must be there."""
    root = Path(slml.__file__).parent
    for floor in LOWER_FLOORS:
        relative = Path(*floor.split(".")[1:])
        assert (root / relative).is_dir() or (root / relative).with_suffix(".py").is_file()


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def synthetic_tree(tmp_path: Path) -> Path:
    root = tmp_path / "slml"
    for package in ("", "providers", "cli", "bundle", "runtime", "config"):
        write(root, f"{package}/__init__.py" if package else "__init__.py", "")
    write(root, "pipeline.py", "from dataclasses import dataclass\n")
    write(root, "runtime/app.py", "from slml.runtime import schema\nfrom . import schema\n")
    write(root, "runtime/schema.py", "import json\n")
    write(root, "providers/aws.py", "from slml.pipeline import Bundle\nfrom slml.cli import x\n")
    return root


def test_a_clean_synthetic_tree_passes(tmp_path):
    assert check_layers(synthetic_tree(tmp_path)) == []


def test_each_kind_of_upward_import_is_caught(tmp_path):
    root = synthetic_tree(tmp_path)
    write(root, "bundle/zip.py", "def f():\n    from slml.providers.base import Bundle\n")
    write(root, "bundle/rel.py", "from ..cli import render\n")
    write(root, "pipeline.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
          "    import slml.providers.aws\n")  # fmt: skip
    write(root, "engine.py", "from slml import cli\n")
    assert check_layers(root) == [
        "slml/bundle/rel.py:1: slml.bundle.rel imports slml.cli",
        "slml/bundle/zip.py:2: slml.bundle.zip imports slml.providers.base",
        "slml/engine.py:1: slml.engine imports slml.cli",
        "slml/pipeline.py:3: slml.pipeline imports slml.providers.aws",
    ]


def test_the_runtime_importing_outside_itself_is_caught(tmp_path):
    root = synthetic_tree(tmp_path)
    write(root, "runtime/app.py", "from slml.config import load_config\nfrom .. import errors\n")
    broken = check_layers(root)
    assert broken == [
        "slml/runtime/app.py:1: slml.runtime.app imports slml.config (the runtime imports only "
        "slml.runtime)",
        "slml/runtime/app.py:2: slml.runtime.app imports slml.errors (the runtime imports only "
        "slml.runtime)",
    ]
