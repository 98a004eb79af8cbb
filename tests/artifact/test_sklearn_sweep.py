"""Every scikit-learn estimator with ``predict`` saves, loads in a fresh process and
predicts what it predicted in memory.

The sweep covers ``sklearn.utils.all_estimators()`` of type classifier, regressor and
cluster. Each is fit on a tiny dataset shaped for it (meta-estimators get a small base
estimator, multi-output ones a two-column target); the fresh-process part runs once for
the whole batch so the sweep stays well within two minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slml.artifact import save_model

pytestmark = pytest.mark.slow

# Estimators left out, and why. Clusterers without ``predict`` (they only label the
# data they were fit on) are left out by the sweep's filter itself.
EXCLUDED: dict[str, str] = {}

_RNG = np.random.default_rng(0)
X = _RNG.integers(0, 5, (40, 4)).astype(float)  # non-negative counts suit the NB models
Y_CLASSES = np.array([0, 1, 2, 1] * 10)
Y_BINARY = np.array([0, 1] * 20)
Y_REAL = Y_CLASSES + 1.0 + _RNG.random(40)  # strictly positive (Gamma, Poisson)
Y_TWO = np.column_stack([Y_BINARY, Y_CLASSES % 2])


def _instance(name: str, cls: type, classifier: bool) -> tuple[Any, Any, Any]:
    """``(estimator, X, y)`` for one sweep entry."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    base = LogisticRegression(max_iter=200) if classifier else Ridge()
    tree = DecisionTreeClassifier(random_state=0) if classifier else DecisionTreeRegressor()
    if name.startswith(("Voting", "Stacking")):
        return cls(estimators=[("a", base), ("b", tree)]), X, Y_CLASSES if classifier else Y_REAL
    if name in ("ClassifierChain", "MultiOutputClassifier"):
        return cls(base), X, Y_TWO
    if name in ("RegressorChain", "MultiOutputRegressor") or name.startswith("MultiTask"):
        return cls(Ridge()) if "Chain" in name or "Output" in name else cls(), X, Y_TWO + 0.5
    if name in ("FixedThresholdClassifier", "TunedThresholdClassifierCV"):
        return cls(base), X, Y_BINARY
    if name in ("OneVsOneClassifier", "OneVsRestClassifier", "OutputCodeClassifier"):
        return cls(base), X, Y_CLASSES
    if name == "SelfTrainingClassifier":
        return cls(base), X, Y_CLASSES
    if name in ("CCA", "PLSCanonical"):
        return cls(n_components=1), X, Y_REAL
    if name == "IsotonicRegression":
        return cls(), X[:, :1], Y_REAL
    params = {"random_state": 0} if "random_state" in cls().get_params() else {}
    return cls(**params), X, Y_CLASSES if classifier else Y_REAL


def _sweep() -> list[tuple[str, type, bool]]:
    """``(name, class, is_classifier)`` for every estimator swept."""
    from sklearn.utils import all_estimators

    classifiers = {name for name, _ in all_estimators(type_filter="classifier")}
    return [
        (name, cls, name in classifiers)
        for name, cls in all_estimators(type_filter=["classifier", "regressor", "cluster"])
        if hasattr(cls, "predict") and name not in EXCLUDED
    ]


_CHILD = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from slml.runtime.loader import load
jobs = json.loads(sys.stdin.read())
out = {}
for name, (path, rows) in jobs.items():
    try:
        out[name] = load(path).predict(rows)
    except Exception as exc:
        out[name] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out))
"""


def test_every_estimator_saves_and_serves_in_a_fresh_process(tmp_path: Path) -> None:
    expected: dict[str, Any] = {}
    jobs: dict[str, tuple[str, list[Any]]] = {}
    failures: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls, classifier in _sweep():
            model, features, target = _instance(name, cls, classifier)
            try:
                model.fit(features, target)
                info = save_model(model, tmp_path / name, sample_input=features[:5])
            except Exception as exc:
                failures[name] = f"save: {type(exc).__name__}: {exc}"
                continue
            expected[name] = np.asarray(model.predict(features[:6])).tolist()
            jobs[name] = (str(info.path), features[:6].tolist())
    assert len(jobs) + len(failures) >= 90, "all_estimators() found too few estimators"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], input=json.dumps(jobs), capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout)
    for name, want in expected.items():
        got = served[name]
        if isinstance(got, dict):
            failures[name] = f"serve: {got['error']}"
        elif not np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float)):
            failures[name] = f"predictions differ: {got} != {want}"
    assert not failures, "\n".join(f"{k}: {v}" for k, v in sorted(failures.items()))
