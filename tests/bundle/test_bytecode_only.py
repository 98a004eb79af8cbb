"""Bytecode only for what importing the frameworks reads, proved by importing again: a
real interpreter walks real trees; whatever the proof does not hold keeps its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slml.bundle import bytecode_only
from slml.bundle.bytecode_only import (
    KEEP_SOURCES,
    WalkUnavailable,
    framework_roots,
    lock_scope,
    shrink,
    top_level_modules,
    trim_bytecode,
    walk_imports,
)

PYTHON = sys.executable
TAG = sys.implementation.cache_tag
SOURCES = {
    "fw/__init__.py": "from dep import used\n",
    "fw/api.py": "from fw import _core\n",  # public: walked; _core comes along
    "fw/_core.py": "CORE = 1\n\n\ndef boom():\n    raise ValueError('from the core')\n",
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


def layer(root: Path, sources: dict[str, str] = SOURCES, *, compiled: bool = True) -> Path:
    """``fw`` (requires ``dep``) and ``dep`` installed under ``root``, compiled."""
    for rel, text in sources.items():
        write(root / rel, text)
    distribution(root, "fw", [p for p in sources if p.startswith("fw/")], "dep>=1")
    distribution(root, "dep", [p for p in sources if p.startswith("dep/")])
    if compiled:
        subprocess.run([PYTHON, "-m", "compileall", "-q", str(root)], check=True)
    return root


def pyc(root: Path, module: str) -> Path:
    parent, _, name = module.rpartition("/")
    return root / parent / "__pycache__" / f"{name}.{TAG}.pyc"


def cached(root: Path) -> set[str]:
    """Modules with bytecode in ``__pycache__``."""
    return {
        f"{p.parent.parent.relative_to(root).as_posix()}/{p.name.split('.')[0]}"
        for p in root.rglob("__pycache__/*.pyc")
    }


def sourceless(root: Path) -> set[str]:
    """Modules shipped as bytecode only: ``NAME.pyc`` and no ``NAME.py``."""
    found = {p for p in root.rglob("*.pyc") if p.parent.name != "__pycache__"}
    assert not any(p.with_suffix(".py").exists() for p in found)
    return {p.relative_to(root).with_suffix("").as_posix() for p in found}


def sources(root: Path) -> set[str]:
    return {p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.py")}


def run(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh, isolated interpreter with only ``root`` on sys.path."""
    code = f"import sys; sys.path[:0] = [{str(root)!r}]\n" + code
    return subprocess.run([PYTHON, "-I", "-S", "-B", "-c", code], capture_output=True,
                          text=True, check=False)  # fmt: skip


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


# -- the walk --------------------------------------------------------------------------
def test_the_walk_records_the_bytecode_read_and_is_deterministic(tmp_path):
    first, second = layer(tmp_path / "a"), layer(tmp_path / "b")
    walked = walk_imports(PYTHON, first, ["fw"])
    assert walked.bytecode == {pyc(first, m).relative_to(first).as_posix() for m in KEPT}
    assert walked == walk_imports(PYTHON, second, ["fw"])
    assert not walked.sources and not walked.listed
    assert {"fw.api", "fw._core", "dep.deep_used"} <= walked.modules
    assert "fw.broken" not in walked.modules  # it raised: gone from sys.modules


def test_a_walk_that_times_out_or_dies_says_so(tmp_path):
    root = layer(tmp_path / "python")

    def slow(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    def dies(command, **kwargs):
        return subprocess.CompletedProcess(command, -9, "", "Killed\n")

    with pytest.raises(WalkUnavailable, match="ran past 5 s"):
        walk_imports(PYTHON, root, ["fw"], runner=slow, timeout=5)
    with pytest.raises(WalkUnavailable, match=r"failed \(Killed\)"):
        walk_imports(PYTHON, root, ["fw"], runner=dies)


def test_trim_is_idempotent_and_counts_what_it_removes(tmp_path):
    root = layer(tmp_path / "python")
    keep = frozenset(pyc(root, m).relative_to(root).as_posix() for m in KEPT)
    first = trim_bytecode(root, keep)
    assert (first.kept_files, first.removed_files) == (len(KEPT), len(GONE))
    assert first.removed_bytes > 0 and cached(root) == KEPT
    again = trim_bytecode(root, keep)
    assert (again.removed_files, again.kept_bytes) == (0, first.kept_bytes)


# -- bytecode only, proved -------------------------------------------------------------
def test_what_the_walk_reads_ships_as_bytecode_only_and_still_imports(tmp_path):
    root = layer(tmp_path / "python")
    done = shrink(PYTHON, root, ["fw==1.0", "dep"])
    assert (done.roots, done.kept_sources, done.sourceless) == (("fw",), "", len(KEPT))
    assert done.source_bytes == sum(len(SOURCES[f"{m}.py"]) for m in KEPT)
    assert sourceless(root) == KEPT and sources(root) == GONE
    assert not list(root.rglob("__pycache__"))  # the unread .pyc went, the read ones moved
    assert (root / "fw" / "__init__.pyc").is_file()  # a package's own module
    answer = run(root, "import fw.api, fw._private, dep.unused\n"
                 "print(fw.api._core.CORE, fw._private.PRIVATE, fw.__file__.endswith('.pyc'))")
    assert (answer.returncode, answer.stdout.split()) == (0, ["1", "1", "True"]), answer.stderr
    assert not list(root.rglob("__pycache__"))  # -B: nothing written


def test_a_traceback_through_a_sourceless_module_names_its_file_and_line(tmp_path):
    root = layer(tmp_path / "python")
    shrink(PYTHON, root, ["fw"])
    failed = run(root, "import fw._core\nfw._core.boom()")
    assert failed.returncode == 1
    assert f'File "{root / "fw" / "_core.py"}", line 5, in boom' in failed.stderr
    assert "ValueError: from the core" in failed.stderr


def test_a_module_whose_source_is_read_or_whose_directory_is_listed_keeps_its_source(tmp_path):
    """``inspect`` reading a source, a package globbing its own ``*.py`` for plugins: the
    walk sees both, and those modules keep their sources (with their bytecode)."""
    plugins = (
        "import glob, importlib, os\n"
        "here = os.path.dirname(__file__)\n"
        "FOUND = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(here, '*.py'))"
        " if not p.endswith('__init__.py'))\n"
        "for name in FOUND:\n    importlib.import_module(f'{__name__}.{name}')\n"
    )
    reads = "import inspect\nSOURCE = inspect.getsource(inspect.getmodule(lambda: 0))\n"
    extra = {"fw/plugins/__init__.py": plugins, "fw/plugins/one.py": "", "fw/plugins/two.py": "",
             "fw/reads.py": reads, "fw/sub/__init__.py": "import fw.plugins, fw.reads\n"}
    root = layer(tmp_path / "python", {**SOURCES, **extra})
    done = shrink(PYTHON, root, ["fw"])
    kept = {"fw/plugins/__init__", "fw/plugins/one", "fw/plugins/two", "fw/reads"}
    assert done.kept_sources == "" and sourceless(root) == KEPT
    assert kept <= cached(root) and kept <= sources(root)
    answer = run(root, "import fw.plugins; print(fw.plugins.FOUND)")
    assert answer.stdout.strip() == "['one', 'two']", answer.stderr


def test_the_packages_whose_jit_reads_their_source_at_run_time_keep_it(tmp_path):
    """torch scripts its own functions from their source when a model runs (TorchScript),
    which no import walk sees: a distribution named in SOURCE_READERS keeps its sources."""
    extra = {"torch/__init__.py": "", "torch/jit.py": "",
             "fw/sub/__init__.py": "import torch.jit\n"}
    root = layer(tmp_path / "python", {**SOURCES, **extra})
    distribution(root, "torch", ["torch/__init__.py", "torch/jit.py"])
    done = shrink(PYTHON, root, ["fw"])
    assert done.kept_sources == "" and sourceless(root) == KEPT
    assert {"torch/__init__", "torch/jit"} <= cached(root) & sources(root)


def test_a_module_that_fails_without_its_source_restores_every_source(tmp_path):
    """Nothing the walk can see ahead says ``checks`` needs its own ``.py``; importing
    again without the sources does, and every file goes back where it was."""
    checks = "assert __file__.endswith('.py'), 'needs its source'\n"
    root = layer(tmp_path / "python", {**SOURCES, "fw/checks.py": checks})
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    done = shrink(PYTHON, root, ["fw"])
    assert done.kept_sources == "importing again without the sources, fw.checks did not import"
    assert done.sourceless == 0 and not sourceless(root)
    assert cached(root) == KEPT | {"fw/checks"} and sources(root) == KEPT | GONE | {"fw/checks"}
    after = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert set(after) <= set(before)  # only the unread .pyc went
    assert not list(tmp_path.glob(".slml-sources-*"))  # the set-aside copies are gone


def test_keep_sources_stops_after_the_trim(tmp_path):
    root = layer(tmp_path / "python")
    done = shrink(PYTHON, root, ["fw"], keep_sources=True)
    assert done.kept_sources == KEEP_SOURCES == "requirements.source_code: keep"
    assert cached(root) == KEPT and sources(root) == KEPT | GONE and not sourceless(root)


@pytest.mark.parametrize(
    ("requirements", "files", "reason"),
    [
        (["absent"], SOURCES, "the model requires no installed distribution"),
        (["fw"], {**SOURCES, "fw/__init__.py": "raise RuntimeError('no')\n"}, "fw did not import"),
        (["fw"], {**SOURCES, "fw/__init__.py": "import sys\nsys.exit(0)\n"}, "fw did not import"),
    ],
)  # fmt: skip
def test_a_walk_that_cannot_tell_changes_nothing(tmp_path, requirements, files, reason):
    root = layer(tmp_path / "python", files)
    with pytest.raises(WalkUnavailable, match=reason):
        shrink(PYTHON, root, requirements)
    assert cached(root) == KEPT | GONE and sources(root) == KEPT | GONE


# -- in the image ----------------------------------------------------------------------
def test_the_image_script_runs_alone_and_changes_only_what_the_lock_installed(tmp_path):
    """As the image's dependency layer runs it: the file alone (standard library only,
    ``-I``: slml is not importable), on a tree holding a package the lock did not
    install (the base image's pip), which it leaves as it was."""
    root = layer(tmp_path / "site", {**SOURCES, "pip/__init__.py": "", "pip/cli.py": ""})
    lock = write(tmp_path / "requirements.lock", "--index-url https://example.org/simple\n"
                 "fw==1.0\n    # via -r requirements.in\ndep==1.0\n")  # fmt: skip
    assert lock_scope(root, lock) == {"fw", "dep"}
    script = write(tmp_path / "ctx" / "slml_bytecode.py",
                   Path(bytecode_only.__file__).read_text())  # fmt: skip
    done = subprocess.run(
        [PYTHON, "-I", str(script), "--root", str(root), "--lock", str(lock), "fw", "uvicorn"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{root}: {len(KEPT)} modules as bytecode only (proved), " \
                                  f"{len(GONE)} unread .pyc removed"  # fmt: skip
    assert sourceless(root) == KEPT and cached(root) == {"pip/__init__", "pip/cli"}
    nothing = subprocess.run([PYTHON, "-I", str(script), "--root", str(tmp_path / "ctx")],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert nothing.returncode == 0 and "bytecode and source for every module" in nothing.stdout
