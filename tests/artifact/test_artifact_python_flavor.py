"""python flavor: your own class, its code shipped in the artifact, state from data files.

The decisive test loads the artifact in a fresh interpreter whose working directory
and sys.path know nothing of the original source: the code must travel with it."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from slml.artifact import load_model, save_model
from slml.errors import ArtifactError

MODEL_SOURCE = """
import json
from pathlib import Path

import numpy as np

from {helper} import scale


class WeightedSum:
    def __init__(self):
        self.weights = None

    def load(self, data_dir):
        self.weights = json.loads((Path(data_dir) / "weights.json").read_text())

    def predict(self, inputs):
        return [scale(float(np.dot(self.weights, row))) for row in inputs]
"""

LOAD_AND_PREDICT = """
import json, sys
from slml.artifact import load_model
model = load_model(sys.argv[1])
print(json.dumps({"predictions": model.predict(json.loads(sys.argv[2])),
                  "module_file": sys.modules[model.manifest["flavor_options"]["module"]].__file__}))
"""


def predict_in_fresh_process(artifact: Path, rows: list[list[float]], cwd: Path) -> dict:
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(artifact), json.dumps(rows)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def weighted_sum(tmp_path: Path, user_modules: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An instance of WeightedSum (its module in tmp/src), its helper module in tmp/lib
    (shipped with code_paths) and its weights file (shipped with artifacts)."""
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / f"{helper}.py").write_text("def scale(value):\n    return value * 10\n")
    monkeypatch.syspath_prepend(str(lib))
    module = user_modules(MODEL_SOURCE.format(helper=helper))
    weights = tmp_path / "weights.json"
    weights.write_text("[0.5, 2.0]")
    yield module.WeightedSum(), lib / f"{helper}.py", weights
    sys.modules.pop(helper, None)


def test_code_travels_with_the_artifact(tmp_path: Path, weighted_sum: Any) -> None:
    model, helper_file, weights = weighted_sum
    info = save_model(
        model,
        tmp_path / "artifacts" / "ws",
        sample_input=[[1.0, 2.0]],
        code_paths=[helper_file],
        artifacts={"weights.json": weights},
    )
    manifest = info.manifest
    module = type(model).__module__
    assert info.flavor == "python"
    assert manifest["flavor_options"] == {
        "module": module,
        "class": "WeightedSum",
        "code_dir": "model/code",
        "data_dir": "model/data",
    }
    assert set(manifest["files"]) == {
        f"model/code/{module}.py",
        f"model/code/{helper_file.name}",
        "model/data/weights.json",
    }
    assert manifest["requirements"] == [f"numpy=={metadata.version('numpy')}"]
    assert manifest["signature"]["outputs"] == {"kind": "tensor", "dtype": "float64", "shape": [-1]}
    out = predict_in_fresh_process(info.path, [[1.0, 2.0], [3.0, 4.0]], tmp_path / "elsewhere")
    assert out["predictions"] == [45.0, 95.0]
    assert Path(out["module_file"]).is_relative_to(info.path / "model" / "code")


def _save_doubler(src: Path, pkg: str, dest: Path, monkeypatch: Any) -> Any:
    """Save ``pkg.model.Doubler`` from ``src``, then forget the package again."""
    import importlib

    monkeypatch.syspath_prepend(str(src))
    try:
        model = importlib.import_module(f"{pkg}.model").Doubler()
        return save_model(model, dest, sample_input=[[2]])
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == pkg]:
            del sys.modules[name]


def test_a_class_inside_a_package_ships_the_package(tmp_path: Path, monkeypatch: Any) -> None:
    pkg = f"pkg_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    (src / pkg).mkdir(parents=True)
    (src / pkg / "__init__.py").write_text("")
    (src / pkg / "util.py").write_text("def double(x):\n    return 2 * x\n")
    (src / pkg / "model.py").write_text(
        "from .util import double\n\n"
        "class Doubler:\n    def predict(self, inputs):\n"
        "        return [double(row[0]) for row in inputs]\n"
    )
    info = _save_doubler(src, pkg, tmp_path / "d", monkeypatch)
    assert info.manifest["flavor_options"]["module"] == f"{pkg}.model"
    assert f"model/code/{pkg}/util.py" in info.manifest["files"]
    out = predict_in_fresh_process(info.path, [[3], [4]], tmp_path / "elsewhere")
    assert out["predictions"] == [6, 8]


def test_state_must_come_from_data_files(tmp_path: Path, user_modules: Any) -> None:
    module = user_modules(
        """
        class Fitted:
            def __init__(self):
                self.coef = None
            def predict(self, inputs):
                return [self.coef * row[0] for row in inputs]
        """
    )
    model = module.Fitted()
    model.coef = 3  # set in memory only: the runtime would never see it
    with pytest.raises(ArtifactError, match=r"load\(data_dir\)"):
        save_model(model, tmp_path / "f", sample_input=[[1.0]])
    assert not (tmp_path / "f").exists()


def test_unimportable_or_unconstructible_classes_are_refused(
    tmp_path: Path, user_modules: Any
) -> None:
    class Local:
        def predict(self, inputs: Any) -> Any:
            return inputs

    with pytest.raises(ArtifactError, match="function body"):
        save_model(Local(), tmp_path / "a")
    scripted = type("Scripted", (), {"predict": lambda self, x: x, "__module__": "__main__"})
    with pytest.raises(ArtifactError, match="__main__") as info:
        save_model(scripted(), tmp_path / "b")
    assert "own module file" in str(info.value)
    module = user_modules(
        "class NeedsArgs:\n    def __init__(self, path):\n        self.path = path\n"
        "    def predict(self, inputs):\n        return inputs\n"
    )
    with pytest.raises(ArtifactError, match=r"needs arguments \(path\)"):
        save_model(module.NeedsArgs("x"), tmp_path / "c")


def test_bad_code_paths_and_artifacts(tmp_path: Path, user_modules: Any, iris_clf: Any) -> None:
    model = user_modules(
        "class Echo:\n    def predict(self, inputs):\n        return inputs\n"
    ).Echo()
    with pytest.raises(ArtifactError, match="does not exist"):
        save_model(model, tmp_path / "a", code_paths=[tmp_path / "nope.py"])
    (tmp_path / "w.bin").write_bytes(b"1")
    with pytest.raises(ArtifactError, match="plain file name"):
        save_model(model, tmp_path / "b", artifacts={"../escape": tmp_path / "w.bin"})
    with pytest.raises(ArtifactError, match="python flavor only"):
        save_model(iris_clf, tmp_path / "c", flavor="sklearn", code_paths=[tmp_path / "w.bin"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "w.bin"]


def test_naming_the_flavor_ships_an_estimator_as_code(tmp_path: Path, user_modules: Any) -> None:
    source = (
        "class Constant:\n    def fit(self, X, y):\n        return self\n"
        "    def predict(self, inputs):\n        return [7 for _ in inputs]\n"
    )
    model = user_modules(source).Constant()
    info = save_model(model, tmp_path / "p", flavor="python", sample_input=[[1, 2]])
    assert info.flavor == "python"
    assert info.manifest["signature"]["inputs"] == {
        "kind": "tensor",
        "dtype": "int64",
        "shape": [-1, 2],
    }
    assert load_model(info.path).predict([[1, 2], [3, 4]]) == [7, 7]


def _package_with_clutter(src: Path, pkg: str) -> None:
    """A package as it sits in a working copy: modules, package data, and what must never
    be shipped (secrets, VCS, caches, a venv, node_modules, a non-package directory)."""
    (src / pkg / "sub").mkdir(parents=True)
    (src / pkg / "__init__.py").write_text("")
    (src / pkg / "model.py").write_text(
        "from .sub.util import double\n\n"
        "class Doubler:\n    def predict(self, inputs):\n"
        "        return [double(row[0]) for row in inputs]\n"
    )
    (src / pkg / "sub" / "__init__.py").write_text("")
    (src / pkg / "sub" / "util.py").write_text("def double(x):\n    return 2 * x\n")
    (src / pkg / "vocab.json").write_text("{}")
    (src / pkg / ".env").write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    (src / pkg / ".git").mkdir()
    (src / pkg / ".git" / "config").write_text("[remote]\n")
    (src / pkg / "__pycache__").mkdir()
    (src / pkg / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0" * 16)
    (src / pkg / "venv" / "lib").mkdir(parents=True)
    (src / pkg / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (src / pkg / "venv" / "lib" / "site.py").write_text("")
    (src / pkg / "node_modules").mkdir()
    (src / pkg / "node_modules" / "x.js").write_text("")
    (src / pkg / "notebooks").mkdir()
    (src / pkg / "notebooks" / "explore.ipynb").write_text("{}")


def test_a_package_ships_its_modules_and_nothing_beside_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """D9: never dotfiles, VCS directories, caches or venvs; the files are listed."""
    pkg = f"pkg_{uuid.uuid4().hex[:8]}"
    _package_with_clutter(tmp_path / "src", pkg)
    info = _save_doubler(tmp_path / "src", pkg, tmp_path / "d", monkeypatch)
    code = f"model/code/{pkg}"
    assert info.files == tuple(sorted(
        f"{code}/{rel}"
        for rel in ("__init__.py", "model.py", "sub/__init__.py", "sub/util.py", "vocab.json")
    ))  # fmt: skip
    assert info.files == tuple(sorted(info.manifest["files"]))
    out = predict_in_fresh_process(info.path, [[3]], tmp_path / "elsewhere")
    assert out["predictions"] == [6]


def test_code_paths_never_ship_dotfiles_or_caches(tmp_path: Path, user_modules: Any) -> None:
    model = user_modules("class Echo:\n    def predict(self, inputs):\n        return inputs\n")
    lib = tmp_path / "extra"
    (lib / ".git").mkdir(parents=True)
    (lib / ".git" / "HEAD").write_text("ref: main\n")
    (lib / ".env").write_text("TOKEN=1\n")
    (lib / "helpers.txt").write_text("kept\n")
    info = save_model(model.Echo(), tmp_path / "e", code_paths=[lib])
    assert "model/code/extra/helpers.txt" in info.files
    assert not [f for f in info.files if "/." in f]


@pytest.mark.parametrize("name", ["h11", "json"])
def test_shipped_modules_may_not_shadow_installed_or_standard_ones(
    tmp_path: Path, user_modules: Any, name: str
) -> None:
    """D7: a model's h11.py would replace the server's own h11 (or be replaced by it)."""
    model = user_modules("class Echo:\n    def predict(self, inputs):\n        return inputs\n")
    shadow = tmp_path / f"{name}.py"
    shadow.write_text("raise RuntimeError('shadowed')\n")
    with pytest.raises(ArtifactError, match=rf"names Python already knows: {name} \("):
        save_model(model.Echo(), tmp_path / "s", code_paths=[shadow])
    assert not (tmp_path / "s").exists()
