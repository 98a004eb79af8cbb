"""Lambda bundles ship bytecode compiled by the target's own Python (unchecked-hash,
Lambda paths) when such an interpreter is here, and say why when they do not."""

from __future__ import annotations

import json
import marshal
import platform
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import slml.bundle.lambda_bundle as lb
from slml.bundle.bytecode import Interpreter, compile_tree, find_interpreter, probe
from slml.bundle.lambda_bundle import LambdaOptions, build_lambda_bundle, layer_key
from slml.bundle.lock import Lock, Target
from slml.config.sections import RequirementsConfig
from slml.errors import PackagingError
from tests.bundle.test_lambda_bundle import predict_event, run_isolated

TAG = sys.implementation.cache_tag  # this host: cpython-311
HOST = Target.here("aws-host")
HERE = Interpreter(sys.executable, platform.python_version())


def nowhere(minor: str) -> Interpreter | None:
    """An interpreter finder for a machine that has no other Python."""
    return None


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def build(artifact: Path, out: Path, cache: Path, *, target=HOST, finder=None, **options):
    return build_lambda_bundle(
        artifact, out, options=LambdaOptions(**options), cache_dir=cache, target=target,
        finder=finder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compiled(_iris_artifact_master, tmp_path_factory, cache):
    return build(_iris_artifact_master, tmp_path_factory.mktemp("auto"), cache)


@pytest.fixture(scope="module")
def plain(_iris_artifact_master, tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("never")
    return build(_iris_artifact_master, out, cache, bytecode="never")


@pytest.fixture(scope="module")
def full(_iris_artifact_master, tmp_path_factory, cache):
    return build(_iris_artifact_master, tmp_path_factory.mktemp("full"), cache, bytecode="full")


def pyc_header(path: Path) -> tuple[int, str]:
    """(flags word, co_filename) of a .pyc."""
    data = path.read_bytes()
    return int.from_bytes(data[4:8], "little"), marshal.loads(data[16:]).co_filename


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


# -- what ships ------------------------------------------------------------------------
@pytest.mark.slow
def test_auto_for_this_python_ships_unchecked_hash_bytecode_with_lambda_paths(compiled):
    layer, function = compiled.files["layer_dir"], compiled.files["function"]
    pyc = layer / "sklearn" / "__init__.pyc"  # bytecode only: where SourcelessFileLoader looks
    flags, filename = pyc_header(pyc)
    assert flags == 0b01  # hash-based, check_source off: valid whatever the mtimes
    assert filename == "/opt/python/sklearn/__init__.py"  # tracebacks name file and line
    assert not (layer / "sklearn" / "__init__.py").exists()
    app = function / "slml" / "runtime" / "__pycache__" / f"app.{TAG}.pyc"
    assert pyc_header(app) == (0b01, "/var/task/slml/runtime/app.py")
    assert (function / "slml" / "runtime" / "app.py").is_file()  # the runtime keeps sources
    assert pyc_header(function / "__pycache__" / f"slml_handler.{TAG}.pyc")[0] == 0b01
    layer_names = zip_names(compiled.files["layer"])
    assert "python/sklearn/__init__.pyc" in layer_names
    assert "python/sklearn/__init__.py" not in layer_names
    assert f"slml/runtime/__pycache__/app.{TAG}.pyc" in zip_names(compiled.files["zip"])
    assert not any("__pycache__" in n for n in layer_names)  # read: moved; unread: gone
    magic = {(layer.parent / n).read_bytes()[:4] for n in layer_names if n.endswith(".pyc")}
    assert magic == {pyc.read_bytes()[:4]}  # one interpreter's bytecode
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    note = f"bytecode compiled with Python {platform.python_version()} for python{minor}"
    assert any(n.startswith(note) and "unchecked-hash" in n for n in compiled.notes)


@pytest.mark.slow
def test_auto_keeps_the_bytecode_scikit_learn_reads_and_full_keeps_it_all(compiled, full):
    """SciPy's signal processing is nothing scikit-learn imports: source only under auto
    (what importing scikit-learn's public modules reads ships as bytecode only), compiled
    under full, which ships every source too."""
    unused = Path("scipy", "signal", "__pycache__", f"__init__.{TAG}.pyc")
    walked = next(n for n in compiled.notes if n.startswith("bytecode for the "))
    assert "importing scikit-learn and its public modules reads" in walked
    assert "ship as bytecode only" in walked and "proved by importing" in walked
    layer, everything = compiled.files["layer_dir"], full.files["layer_dir"]
    assert not (layer / unused).exists() and (everything / unused).is_file()
    assert (layer / "scipy" / "signal" / "__init__.py").is_file()
    assert not (layer / "scipy" / "signal" / "__init__.pyc").exists()
    logistic = Path("sklearn", "linear_model", "_logistic")
    assert (layer / logistic.with_suffix(".pyc")).is_file()
    assert not (layer / logistic.with_suffix(".py")).exists()
    assert (everything / logistic.with_suffix(".py")).is_file()
    assert "bytecode for every module: aws.bytecode: full" in full.notes
    assert full.size.parts["layer"] > compiled.size.parts["layer"] + 20 * 1024 * 1024
    assert full.files["layer_dir"] != layer  # a layer of its own: another key


@pytest.mark.slow
def test_source_code_keep_ships_every_source_beside_the_bytecode_read(
    _iris_artifact_master, tmp_path, cache, compiled, iris_rows
):
    """``requirements.source_code: keep``: the previous layout, every source and the
    bytecode the walk read, in its ``__pycache__``; a layer of its own."""
    changes = RequirementsConfig(source_code="keep")
    kept = build(_iris_artifact_master, tmp_path / "out", cache, requirements=changes)
    layer = kept.files["layer_dir"]
    assert (layer / "sklearn" / "__init__.py").is_file()
    assert (layer / "sklearn" / "__pycache__" / f"__init__.{TAG}.pyc").is_file()
    assert not [p for p in layer.rglob("*.pyc") if p.parent.name != "__pycache__"]
    assert any(n.endswith("every source kept: requirements.source_code: keep") for n in kept.notes)
    assert kept.size.parts["layer"] > compiled.size.parts["layer"] + 10 * 1024 * 1024
    done = run_isolated(kept, predict_event(iris_rows), flags=("-I", "-S", "-B"))
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_symbols_keep_ships_the_shared_libraries_as_the_wheels_have_them(
    _iris_artifact_master, tmp_path, cache, plain, iris_rows
):
    """``requirements.symbols: keep`` (for perf or gdb on a deployed function): no shared
    library loses its symbol table, in a layer of its own, and the bundle still answers."""
    from slml.bundle.elf_strip import stripped

    changes = RequirementsConfig(symbols="keep")
    kept = build(_iris_artifact_master, tmp_path / "out", cache, bytecode="never",
                 requirements=changes)  # fmt: skip
    layer, bare = kept.files["layer_dir"], plain.files["layer_dir"]
    assert layer != bare
    assert any(n.startswith("kept the native binaries' symbol tables") for n in kept.notes)
    assert any(n.startswith("stripped ") for n in plain.notes)

    def strippable(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.so*")
                      if p.is_file() and stripped(p.read_bytes()) is not None)  # fmt: skip

    assert strippable(layer), "no shared library in the layer kept a symbol table"
    assert strippable(bare) == []
    assert kept.size.parts["layer"] > plain.size.parts["layer"]
    done = run_isolated(kept, predict_event(iris_rows), flags=("-I", "-S", "-B"))
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_never_ships_no_bytecode_and_the_size_report_counts_it(compiled, plain):
    for zipped in (plain.files["layer"], plain.files["zip"]):
        assert not any(n.endswith(".pyc") or "__pycache__" in n for n in zip_names(zipped))
    assert "aws.bytecode: never" in " ".join(plain.notes)
    for bundle in (compiled, plain):  # every file counts, bytecode included
        layer = bundle.files["layer_dir"]
        assert bundle.size.parts["layer"] == sum(p.stat().st_size for p in layer.rglob("*")
                                                 if p.is_file())  # fmt: skip
    assert sum(1 for _ in compiled.files["layer_dir"].rglob("*.pyc")) > 900
    assert compiled.size.parts["function"] > plain.size.parts["function"]


@pytest.mark.slow
def test_python312_without_a_312_interpreter_ships_none_and_says_why(iris_artifact, tmp_path):
    bundle = build(iris_artifact, tmp_path / "out", tmp_path / "cache", target=None,
                   finder=nowhere)  # fmt: skip
    assert not any(n.endswith(".pyc") for n in zip_names(bundle.files["layer"]))
    assert not list(bundle.files["function"].rglob("*.pyc"))
    note = next(n for n in bundle.notes if "bytecode" in n)
    assert note.startswith("no Python 3.12 interpreter here: shipping without bytecode")
    assert "aws.bytecode: never" in note


@pytest.mark.parametrize("mode", ["always", "full"])
def test_always_without_an_interpreter_fails_before_any_work(iris_artifact, tmp_path, mode):
    with pytest.raises(PackagingError) as info:
        build(iris_artifact, tmp_path / "out", tmp_path / "cache", target=None,
              finder=nowhere, bytecode=mode, runtime="python3.13")  # fmt: skip
    assert f"aws.bytecode: {mode} needs a Python 3.13 interpreter" in info.value.message
    assert "uv python install 3.13" in info.value.hint
    assert not (tmp_path / "cache").exists()  # nothing resolved or installed


@pytest.mark.slow
def test_bytecode_that_alone_crosses_250_mb_is_left_out(
    _iris_artifact_master, tmp_path, cache, compiled, plain, monkeypatch
):
    limit = (compiled.size.unzipped + plain.size.unzipped) // 2
    monkeypatch.setattr(lb, "UNZIPPED_LIMIT", limit)
    bundle = build(_iris_artifact_master, tmp_path / "out", cache)
    assert bundle.size.unzipped == plain.size.unzipped <= limit
    assert not any(n.endswith(".pyc") for n in zip_names(bundle.files["layer"]))
    assert any(n.startswith("bytecode left out:") and "250 MB" in n for n in bundle.notes)


def test_the_layer_cache_key_says_whether_and_by_whom_bytecode_was_compiled(tmp_path):
    lock = Lock(path=tmp_path / "requirements.lock", hash="abc", pins=("numpy==2.0.0",))
    target = Target("aws-lambda", "3.11", "x86_64-manylinux_2_17")
    compiler = Interpreter("/usr/bin/python3.11", "3.11.7")
    keys = {
        layer_key(lock, target),
        layer_key(lock, target, compiler),
        layer_key(lock, target, Interpreter("/usr/bin/python3.11", "3.11.9")),
        layer_key(lock, target, compiler, full=True),  # every module compiled
        layer_key(lock, target, compiler, requirements=["numpy==2.0.0"]),  # what is walked
        layer_key(lock, target, compiler, keep_sources=True),  # no module sourceless
        layer_key(lock, target, compiler, keep_symbols=True),  # no library stripped
    }
    assert len(keys) == 7
    assert layer_key(lock, target, None) == layer_key(lock, target)
    assert layer_key(lock, target, None, full=True) == layer_key(lock, target)  # no bytecode
    assert layer_key(lock, target, compiler, requirements=["NumPy>=1", "scipy"]) == layer_key(
        lock, target, compiler, requirements=["scipy", "numpy"]
    )  # names, normalised, in any order


# -- it is used ------------------------------------------------------------------------
@pytest.mark.slow
def test_isolated_interpreter_answers_from_the_shipped_bytecode(compiled, iris_rows):
    """`python -I -S -B -v`: nothing new can be written, and -v logs where each code
    object came from. Every module imported from the layer or the function came from
    its .pyc; none was compiled from source."""
    after = (
        "import os\n"
        "cached = sys.modules['sklearn'].__spec__.cached\n"
        "print(json.dumps([cached, os.path.isfile(cached)]))"
    )
    done = run_isolated(compiled, predict_event(iris_rows), flags=("-I", "-S", "-B", "-v"),
                        after=after)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    *_, evidence, answer = done.stdout.strip().splitlines()
    assert json.loads(json.loads(answer)["body"])["predictions"] == [0, 2, 1]
    cached, exists = json.loads(evidence)
    assert exists and cached.startswith(str(compiled.files["layer_dir"]))
    ours, from_source = code_origins(done.stderr, compiled)
    assert len(ours) > 300 and not from_source, from_source[:5]


def code_origins(verbose: str, bundle) -> tuple[list[str], list[str]]:
    """From ``python -v``'s stderr: where each code object of the bundle's layer and
    function came from, and those compiled from source (a .py, not its .pyc)."""
    roots = (str(bundle.files["layer_dir"]), str(bundle.files["function"]))
    origins = re.findall(r"^# code object from (.+)$", verbose, flags=re.M)
    ours = [o.strip("'") for o in origins if o.strip("'").startswith(roots)]
    return ours, [o for o in ours if o.endswith(".py")]


# -- finding and compiling -------------------------------------------------------------
def test_find_interpreter_finds_this_python_and_nothing_that_is_absent():
    found = find_interpreter(f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert found == HERE
    assert find_interpreter("3.99") is None


def test_probe_rejects_a_shim_that_does_not_run_python(tmp_path):
    shim = tmp_path / "python3.12"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    assert probe(str(shim)) is None
    assert probe(str(tmp_path / "missing")) is None
    assert probe(sys.executable) == HERE


def test_compile_tree_lists_sources_that_do_not_compile_and_compiles_the_rest(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "pkg" / "legacy.py").write_text('print "python 2"\n')
    compiled = compile_tree(HERE, tmp_path, lambda_path="/opt/python")
    assert compiled.failed == ("pkg/legacy.py",)
    assert compiled.files == 1 and compiled.size > 0
    pyc = tmp_path / "pkg" / "__pycache__" / f"__init__.{TAG}.pyc"
    assert pyc_header(pyc) == (0b01, "/opt/python/pkg/__init__.py")


# -- wherever users keep their Pythons ------------------------------------------------
PYENV_312 = sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12"))
needs_pyenv_312 = pytest.mark.skipif(not PYENV_312, reason="no pyenv CPython 3.12 here")


def fake_python(path: Path, version: str) -> Path:
    """A script that answers the probe as CPython ``version`` would."""
    major, minor, _ = version.split(".")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho cpython-{major}{minor} {version}\n")
    path.chmod(0o755)
    return path


def broken_shim(directory: Path, minor: str) -> Path:
    """What pyenv puts on PATH for an installed but inactive version."""
    shim = directory / f"python{minor}"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(f"#!/bin/sh\necho 'pyenv: python{minor}: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    return shim


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No PATH hit, an empty uv install dir: only the layout a test builds is found."""
    broken_shim(tmp_path / "shims", "3.12")
    return {"PATH": str(tmp_path / "shims"), "UV_PYTHON_INSTALL_DIR": str(tmp_path / "uv"),
            **extra}  # fmt: skip


@needs_pyenv_312
def test_the_real_pyenv_312_is_found_past_its_shim(tmp_path):
    env = {**isolated_env(tmp_path), "PYENV_ROOT": "/root/.pyenv"}
    found = find_interpreter("3.12", env=env, home=tmp_path)
    assert found is not None and found.source == "pyenv"
    assert found.path == str(PYENV_312[-1]) and found.minor == "3.12"
    assert probe(found.path) == found  # it really runs and says 3.12


@needs_pyenv_312
def test_a_uv_managed_python_is_found(tmp_path):
    home = tmp_path / "uv" / "cpython-3.12.1-linux-x86_64-gnu" / "bin"
    home.mkdir(parents=True)
    (home / "python3.12").symlink_to(PYENV_312[-1])
    found = find_interpreter("3.12", env=isolated_env(tmp_path), home=tmp_path)
    assert found is not None and found.source == "uv"
    assert found.path == str(home / "python3.12")


@pytest.mark.parametrize(
    ("layout", "extra_env", "source"),
    [
        (".pyenv/versions/3.12.4/bin/python3.12", {}, "pyenv"),
        ("elsewhere/pyenv/versions/3.12.4/bin/python3.12", {"PYENV_ROOT": "elsewhere/pyenv"},
         "pyenv"),
        (".asdf/installs/python/3.12.4/bin/python3.12", {}, "asdf"),
        (".local/share/mise/installs/python/3.12.4/bin/python3.12", {}, "mise"),
        ("miniconda3/envs/ml/bin/python3.12", {}, "conda"),
        ("miniforge3/bin/python3.12", {}, "conda"),
        ("active/bin/python3.12", {"CONDA_PREFIX": "active"}, "conda"),
        ("onpath/python3.12", {"PATH": "onpath"}, "PATH"),
    ],
)  # fmt: skip
def test_each_manager_layout_is_searched(tmp_path, layout, extra_env, source):
    fake = fake_python(tmp_path / layout, "3.12.4")
    env = isolated_env(tmp_path, **{k: str(tmp_path / v) for k, v in extra_env.items()})
    found = find_interpreter("3.12", env=env, home=tmp_path)
    assert found == Interpreter(str(fake), "3.12.4") and found.source == source


def test_the_newest_patch_wins_and_a_liar_is_skipped(tmp_path):
    versions = tmp_path / ".asdf" / "installs" / "python"
    fake_python(versions / "3.12.3" / "bin" / "python3.12", "3.12.3")
    newest = fake_python(versions / "3.12.10" / "bin" / "python3.12", "3.12.10")
    fake_python(versions / "3.12.11" / "bin" / "python3.12", "3.11.9")  # says the wrong thing
    (versions / "3.12.12" / "bin").mkdir(parents=True)  # a half-removed install
    found = find_interpreter("3.12", env=isolated_env(tmp_path), home=tmp_path)
    assert found is not None and (found.path, found.version) == (str(newest), "3.12.10")


def test_nothing_anywhere_is_none_and_never_downloads(tmp_path):
    assert find_interpreter("3.12", env=isolated_env(tmp_path), home=tmp_path) is None
    assert not (tmp_path / "uv").exists()  # uv was told not to download


@pytest.mark.slow
@needs_pyenv_312
def test_the_default_python312_bundle_ships_312_bytecode_and_answers(iris_artifact, tmp_path,
                                                                     iris_rows):  # fmt: skip
    """The default target (python3.12) on this machine: compiled by pyenv's 3.12, the
    modules importing scikit-learn reads shipped as bytecode only, and that interpreter
    answers an event from the bundle's bytecode alone (-B: none written), every layer
    module it imports from a sourceless .pyc."""
    bundle = build(iris_artifact, tmp_path / "out", tmp_path / "cache", target=None)
    assert any(n.startswith("bytecode compiled with Python 3.12") for n in bundle.notes)
    walked = next(n for n in bundle.notes if n.startswith("bytecode for the "))
    assert "ship as bytecode only" in walked, walked
    layer = bundle.files["layer_dir"]
    assert (layer / "sklearn" / "__init__.pyc").is_file()
    assert not (layer / "sklearn" / "__init__.py").exists()
    code = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(bundle.files['function'])!r}, {str(layer)!r}]\n"
        "import slml_handler\n"
        "print(json.dumps(slml_handler.handler(json.loads(sys.stdin.read()), None)))\n"
    )
    env = {"SLML_MODEL_DIR": str(bundle.files["function"] / "model"), "PATH": ""}
    done = subprocess.run([str(PYENV_312[-1]), "-I", "-S", "-B", "-v", "-c", code], env=env,
                          input=json.dumps(predict_event(iris_rows)), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(json.loads(done.stdout.strip().splitlines()[-1])["body"])
    assert body["predictions"] == [0, 2, 1]
    ours, from_source = code_origins(done.stderr, bundle)  # the trimmed layer covers init
    assert len(ours) > 300 and not from_source, from_source[:5]
    in_layer = [o for o in ours if o.startswith(str(layer))]
    assert len(in_layer) > 300 and not [o for o in in_layer if "__pycache__" in o]
