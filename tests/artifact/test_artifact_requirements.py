"""Requirements: from a pickle's GLOBAL opcodes to the distributions that provide them."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.artifact import pickled
from slml.artifact import requirements as reqs
from slml.errors import ArtifactError


@pytest.fixture
def fake_dists(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``make(name, version, files)`` installs a real (tiny) distribution on sys.path:
    a dist-info with METADATA and RECORD, and each file of ``files`` created."""
    site = tmp_path / "site"
    site.mkdir()
    sys.path.insert(0, str(site))

    def make(name: str, version: str, files: list[str]) -> None:
        for rel in files:
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_text("")
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
        (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))
        _clear_caches()

    try:
        yield make
    finally:
        sys.path.remove(str(site))
        _clear_caches()


def _clear_caches() -> None:
    for cached in (reqs._module_map, reqs._owner, reqs._files):
        cached.cache_clear()


def test_namespace_packages_map_to_the_distribution_owning_the_module() -> None:
    pytest.importorskip("google.protobuf")
    assert reqs.distribution_of("google.protobuf.message") == "protobuf"
    assert reqs.distribution_of("google.auth.credentials") == "google-auth"
    assert reqs.distribution_of("sklearn.ensemble._gb") == "scikit-learn"
    assert reqs.distribution_of("json.decoder") is None
    assert reqs.distribution_of("__main__") is None


def test_a_package_shared_by_two_distributions(fake_dists: Callable[..., None]) -> None:
    """Like mlflow and mlflow-tracing, which both install ``mlflow/``."""
    fake_dists("fakeflow-tracing", "1.0", ["fakeflow/__init__.py", "fakeflow/tracing/api.py"])
    fake_dists("fakeflow", "1.0", ["fakeflow/__init__.py", "fakeflow/pyfunc/__init__.py"])
    assert reqs.distribution_of("fakeflow.pyfunc") == "fakeflow"
    assert reqs.distribution_of("fakeflow.tracing.api") == "fakeflow-tracing"
    assert reqs.distribution_of("fakeflow") == "fakeflow"
    assert reqs.distribution_of("fakeflow.unknown") == "fakeflow"


def test_local_version_labels_are_dropped(fake_dists: Callable[..., None]) -> None:
    fake_dists("torchlike", "2.3.0+cpu", ["torchlike/__init__.py"])
    assert reqs.pin(["torchlike"]) == ["torchlike==2.3.0"]
    assert reqs.public_version("1.0+cu121") == "1.0"


def test_cpu_variant_is_recorded_under_the_canonical_name(
    fake_dists: Callable[..., None],
) -> None:
    if reqs.installed_version("xgboost") is None and reqs.installed_version("xgboost-cpu"):
        version = reqs.installed_version("xgboost-cpu")
        assert reqs.distribution_of("xgboost.sklearn") == "xgboost"
        assert reqs.pin(["xgboost"]) == [f"xgboost=={version}"]
        assert reqs.framework("xgboost") == {"name": "xgboost", "version": version}
    fake_dists("boostlike-cpu", "1.1", ["boostlike/__init__.py"])
    reqs.CANONICAL["boostlike-cpu"] = "boostlike"
    try:
        assert reqs.distribution_of("boostlike") == "boostlike"
        assert reqs.pin(["boostlike"]) == ["boostlike==1.1"]
    finally:
        del reqs.CANONICAL["boostlike-cpu"]


class _Pair:
    def __init__(self) -> None:
        self.a = np.arange(3)
        self.b = np.arange(4.0)  # numpy globals twice: the second is a memo GET


def test_globals_come_from_the_pickle_opcodes() -> None:
    found = pickled.referenced_globals(pickle.dumps(_Pair(), protocol=5))
    assert (__name__, "_Pair") in found
    assert any(module.startswith("numpy") for module, _ in found)
    protocol2 = pickled.referenced_globals(pickle.dumps(_Pair(), protocol=2))
    assert (__name__, "_Pair") in protocol2


@pytest.mark.parametrize(
    "make",
    [
        "sklearn.ensemble:GradientBoostingClassifier",
        "sklearn.ensemble:HistGradientBoostingRegressor",
        "sklearn.neighbors:KNeighborsRegressor",
        "sklearn.neural_network:MLPRegressor",
    ],
)
def test_cython_backed_estimators_need_only_real_modules(make: str) -> None:
    """Their Cython functions' type lives in a pseudo-module (``_cython_3_2_4``)."""
    import importlib

    module, name = make.split(":")
    X = np.random.default_rng(0).random((30, 3))
    y = (X[:, 0] > 0.5).astype(int)
    cls = getattr(importlib.import_module(module), name)
    params: dict[str, Any] = {"max_iter": 5} if "max_iter" in cls().get_params() else {}
    model = cls(**params).fit(X, y)
    modules = pickled.referenced_modules(model)
    assert not [m for m in modules if m.startswith("_cython")]
    assert {reqs.distribution_of(m) for m in modules} - {None} == {"scikit-learn", "numpy"}


def test_adjust_removes_replaces_and_adds() -> None:
    derived = ["xgboost==3.2.0", "numpy==2.4.6", "scipy==1.17.1"]
    assert reqs.adjust(
        derived, remove=["SciPy"], replace={"xgboost": "xgboost-cpu==3.2.0"},
        add=["numpy==2.3.0", "orjson==3.10.7"],
    ) == ["xgboost-cpu==3.2.0", "numpy==2.3.0", "orjson==3.10.7"]  # fmt: skip
    with pytest.raises(ArtifactError, match="cannot remove or replace tensorflow") as info:
        reqs.adjust(derived, remove=["tensorflow"])
    assert "xgboost, numpy, scipy" in str(info.value)
    assert reqs.merge(derived, ["xgboost-cpu==3.2.0"], ["xgboost"])[-1] == "xgboost-cpu==3.2.0"


def test_save_drops_a_derived_requirement(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from slml.artifact import save_model

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    info = save_model(model, tmp_path / "m", drop_requirements=["scipy"])
    assert not [r for r in info.manifest["requirements"] if r.startswith("scipy")]


def test_cpu_only_targets_get_the_cpu_variant() -> None:
    from slml.bundle.variants import prefer_cpu

    swapped, notes = prefer_cpu(["XGBoost==3.2.0", "numpy==2.4.6", "xgboost_cpu>=3"])
    assert swapped == ["xgboost-cpu==3.2.0", "numpy==2.4.6", "xgboost_cpu>=3"]
    assert len(notes) == 1 and "xgboost-cpu" in notes[0] and "CUDA" in notes[0]
