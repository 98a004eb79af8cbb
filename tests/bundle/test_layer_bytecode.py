"""The layer keeps bytecode for what importing the model's frameworks reads: a real
interpreter walks a real tree, and every fallback keeps every module's bytecode."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from slml.bundle.bytecode import Interpreter
from slml.bundle.layer_bytecode import (
    WalkUnavailable,
    compile_layer,
    foreign_machine,
    framework_roots,
    top_level_modules,
    trim_bytecode,
    walk_imports,
)

HERE = Interpreter(sys.executable, platform.python_version())
TAG = sys.implementation.cache_tag
SOURCES = {
    "fw/__init__.py": "from dep import used\n",
    "fw/api.py": "from fw import _core\n",  # public: walked; _core comes along
    "fw/_core.py": "CORE = 1\n",
    "fw/_private.py": "PRIVATE = 1\n",  # nothing public imports it
    "fw/broken.py": "import dep.used\nraise ImportError('needs what is not installed')\n",
    "fw/quits.py": "import sys\nsys.exit(3)\n",
    "fw/waits.py": "import threading\nthreading.Thread(target=threading.Event().wait).start()\n",
    "fw/sub/__init__.py": "",
    "fw/sub/deep.py": "import dep.deep_used\n",
    "fw/tests/__init__.py": "import dep.unused\n",  # a test suite is never walked
    "dep/__init__.py": "",
    "dep/used.py": "",
    "dep/deep_used.py": "",
    "dep/unused.py": "",
}
KEPT = {"fw/__init__", "fw/api", "fw/_core", "fw/broken", "fw/quits", "fw/waits",
        "fw/sub/__init__", "fw/sub/deep", "dep/__init__", "dep/used", "dep/deep_used"}  # fmt: skip
GONE = {"fw/_private", "fw/tests/__init__", "dep/unused"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def distribution(root: Path, name: str, files: list[str], *requires: str) -> None:
    info = root / f"{name}-1.0.dist-info"
    lines = [f"Name: {name}", *(f"Requires-Dist: {r}" for r in requires)]
    write(info / "METADATA", "\n".join(lines))
    write(info / "RECORD", "".join(f"{f},sha256=x,1\n" for f in files))


def layer(root: Path, sources: dict[str, str] = SOURCES) -> Path:
    for rel, text in sources.items():
        write(root / rel, text)
    distribution(root, "fw", [p for p in sources if p.startswith("fw/")], "dep>=1")
    distribution(root, "dep", [p for p in sources if p.startswith("dep/")])
    return root


def pyc(root: Path, module: str) -> Path:
    parent, _, name = module.rpartition("/")
    return root / parent / "__pycache__" / f"{name}.{TAG}.pyc"


def bytecode(root: Path) -> set[str]:
    return {
        f"{p.parent.parent.relative_to(root).as_posix()}/{p.name.split('.')[0]}"
        for p in root.rglob("*.pyc")
    }


def compiled(root: Path, **options) -> list[str]:
    return compile_layer(HERE, root, lambda_path="/opt/python", requirements=["fw==1.0", "dep"],
                         **options)  # fmt: skip


# -- which distributions are walked ----------------------------------------------------
def test_the_frameworks_are_the_requirements_nothing_else_required_needs(tmp_path):
    distribution(tmp_path, "scikit_learn", [], "numpy>=1.22", "scipy", "joblib",
                 "pytest; extra == 'tests'")  # fmt: skip
    distribution(tmp_path, "scipy", [], "numpy<3")
    distribution(tmp_path, "numpy", [])
    distribution(tmp_path, "joblib", [])
    distribution(tmp_path, "xgboost", [], "numpy", "scipy")
    distribution(tmp_path, "pytest", [], "numpy")  # needed only by an extra
    reqs = ["scikit-learn==1.9.1", "numpy==2.4.6", "scipy==1.17.1", "joblib==1.6.0"]
    assert framework_roots(tmp_path, reqs) == ("scikit-learn",)
    assert framework_roots(tmp_path, [*reqs, "xgboost"]) == ("scikit-learn", "xgboost")
    assert framework_roots(tmp_path, ["numpy", "boto3"]) == ("numpy",)  # boto3: not installed
    assert framework_roots(tmp_path, []) == ()


def test_a_dependency_through_another_package_is_no_framework_and_a_cycle_keeps_both(tmp_path):
    distribution(tmp_path, "app", [], "mid")
    distribution(tmp_path, "mid", [], "base")
    distribution(tmp_path, "base", [])
    assert framework_roots(tmp_path, ["app", "base"]) == ("app",)
    distribution(tmp_path, "ying", [], "yang")
    distribution(tmp_path, "yang", [], "ying")
    assert framework_roots(tmp_path, ["ying", "yang"]) == ("yang", "ying")


def test_top_level_modules_come_from_the_record(tmp_path):
    distribution(tmp_path, "Fw_Pkg", [
        "fw/__init__.py", "fw/sub/x.py", "single.py", f"_ext.{TAG}-x86_64-linux-gnu.so",
        "fw_pkg.libs/libfoo-1234.so", "fw_pkg-1.0.dist-info/METADATA", "../../bin/fw",
        f"__pycache__/single.{TAG}.pyc", "bin/fw", "data.txt",
    ])  # fmt: skip
    record = tmp_path / "Fw_Pkg-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "\n")  # a blank line is no module
    assert top_level_modules(tmp_path, "fw-pkg") == ("_ext", "fw", "single")
    assert top_level_modules(tmp_path, "absent") == ()


def test_foreign_machines_are_named_and_this_one_is_not():
    here = platform.machine().lower()
    other = "arm64" if here in ("x86_64", "amd64") else "x86_64"
    assert foreign_machine(None) is None
    assert foreign_machine("x86_64" if other == "arm64" else "arm64") is None
    assert f"{other} code cannot run on this {here} machine" in (foreign_machine(other) or "")


# -- the walk, on real files -----------------------------------------------------------
def test_only_what_importing_the_frameworks_reads_keeps_its_bytecode(tmp_path):
    root = layer(tmp_path / "python")
    notes = compiled(root)
    assert bytecode(root) == KEPT
    assert all((root / f"{m}.py").is_file() for m in KEPT | GONE)  # every source ships
    note = notes[-1]
    assert note.startswith(f"bytecode for the {len(KEPT)} modules that importing fw ")
    assert f"the other {len(GONE)} ship as source only" in note
    assert "aws.bytecode: full keeps them all" in note
    assert not (root / "fw" / "tests" / "__pycache__").exists()  # emptied caches go


def test_a_module_without_bytecode_still_imports_from_its_source(tmp_path):
    root = layer(tmp_path / "python")
    compiled(root)
    code = f"import sys; sys.path[:0] = [{str(root)!r}]\nimport fw._private, dep.unused\n"
    code += "print(fw._private.PRIVATE)"
    done = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr
    assert bytecode(root) == KEPT  # -B: nothing written


def test_the_walk_is_deterministic(tmp_path):
    first, second = layer(tmp_path / "a"), layer(tmp_path / "b")
    compiled(first)
    compiled(second)
    assert bytecode(first) == bytecode(second) == KEPT
    again = walk_imports(HERE, first, ["fw"])
    assert again == {pyc(first, m).relative_to(first).as_posix() for m in KEPT}


@pytest.mark.parametrize(
    ("options", "sources", "reason"),
    [
        ({"full": True}, SOURCES, "aws.bytecode: full"),
        ({"requirements": ["absent"]}, SOURCES, "the model requires no installed distribution"),
        ({}, {**SOURCES, "fw/__init__.py": "raise RuntimeError('no')\n"}, "fw did not import here"),
        ({}, {**SOURCES, "fw/__init__.py": "import sys\nsys.exit(0)\n"}, "fw did not import here"),
    ],
)  # fmt: skip
def test_every_module_keeps_its_bytecode_when_the_walk_cannot_tell(tmp_path, options, sources,
                                                                  reason):  # fmt: skip
    root = layer(tmp_path / "python", sources)
    requirements = options.pop("requirements", ["fw==1.0", "dep"])
    notes = compile_layer(HERE, root, lambda_path="/opt/python", requirements=requirements,
                          **options)  # fmt: skip
    assert bytecode(root) == KEPT | GONE
    assert notes[-1].startswith(f"bytecode for every module: {reason}")


def test_a_foreign_machine_keeps_every_module(tmp_path):
    root = layer(tmp_path / "python")
    other = "arm64" if platform.machine().lower() in ("x86_64", "amd64") else "x86_64"
    notes = compiled(root, machine=other)
    assert bytecode(root) == KEPT | GONE
    assert "cannot run on this" in notes[-1]


def test_a_walk_that_times_out_or_dies_says_so(tmp_path):
    root = layer(tmp_path / "python")

    def slow(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    def dies(command, **kwargs):
        return subprocess.CompletedProcess(command, -9, "", "Killed\n")

    with pytest.raises(WalkUnavailable, match="ran past 5 s"):
        walk_imports(HERE, root, ["fw"], runner=slow, timeout=5)
    with pytest.raises(WalkUnavailable, match=r"failed \(Killed\)"):
        walk_imports(HERE, root, ["fw"], runner=dies)


def test_trim_is_idempotent_and_counts_what_it_removes(tmp_path):
    root = layer(tmp_path / "python")
    compile_layer(HERE, root, lambda_path="/opt/python", requirements=[], full=True)
    keep = frozenset(pyc(root, m).relative_to(root).as_posix() for m in KEPT)
    first = trim_bytecode(root, keep)
    assert (first.kept_files, first.removed_files) == (len(KEPT), len(GONE))
    assert first.removed_bytes > 0
    again = trim_bytecode(root, keep)
    assert (again.removed_files, again.kept_bytes) == (0, first.kept_bytes)
