"""Flavors are plug-ins of the ``slml.flavors`` entry-point group: the built-ins register
there, a third-party package adds one without touching slml, and a plug-in with the
wrong shape is named in a clear error. A class from an installed package is never
saved as the user's own code."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slml.artifact import flavors, load_model, save_model
from slml.artifact import requirements as reqs
from slml.errors import ArtifactError, UnsupportedModel

ACME = '''
import json
from pathlib import Path
from slml.artifact.flavors import Saved

NAME = "acme"
EXPECTS = "the acme flavor needs an acme.Summer"
SUPPORTS = "Acme summers"
PRIORITY = 5
LOADER = "acme.serve:load"

class Summer:
    def __init__(self, offset=0):
        self.offset = offset

    def predict(self, rows):
        return [sum(r) + self.offset for r in rows]

def matches(model):
    return isinstance(model, Summer)

def save(model, root, *, options):
    (root / "model").mkdir(parents=True)
    (root / "model" / "acme.json").write_text(json.dumps({"offset": model.offset}))
    return Saved(flavor=NAME, framework={"name": "acme", "version": "0.1"},
                 requirements=["acme==0.1"], flavor_options={"file": "model/acme.json"},
                 signature=None)
'''

ACME_SERVE = '''
import json

def load(artifact_dir, manifest):
    offset = json.loads((artifact_dir / manifest["flavor_options"]["file"]).read_text())["offset"]
    return lambda batch: [sum(r) + offset for r in batch.rows]
'''


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``install(dist, modules, entry_points)``: a real distribution on sys.path, with
    its modules and an ``entry_points.txt``; the flavor registry is re-read."""
    site = tmp_path / "site-packages"
    site.mkdir()
    sys.path.insert(0, str(site))
    added: list[str] = []

    def make(dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
        for rel, source in modules.items():
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_text(textwrap.dedent(source))
            added.append(rel.split("/")[0].removesuffix(".py"))
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in modules))
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[slml.flavors]\n{lines}")
        _reset()

    try:
        yield make
    finally:
        sys.path.remove(str(site))
        for name in added:
            for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
                del sys.modules[key]
        _reset()


def _reset() -> None:
    importlib.invalidate_caches()
    flavors.registered.cache_clear()
    for cached in (reqs._module_map, reqs._owner, reqs._files):
        cached.cache_clear()


def test_builtin_flavors_register_through_the_entry_point_group() -> None:
    assert set(flavors.registered()) >= {
        "sklearn", "onnx", "python", "xgboost", "lightgbm", "catboost", "statsmodels",
    }  # fmt: skip
    order = list(flavors.registered())
    assert order.index("xgboost") < order.index("python") < order.index("sklearn")


def test_a_third_party_flavor_saves_and_serves(
    tmp_path: Path, install: Callable[..., None]
) -> None:
    install("acme", {"acme/__init__.py": ACME, "acme/serve.py": ACME_SERVE}, {"acme": "acme"})
    import acme

    info = save_model(acme.Summer(offset=10), tmp_path / "m")
    assert info.flavor == "acme"
    assert info.manifest["flavor_options"]["loader"] == "acme.serve:load"
    assert load_model(info.path).predict([[1, 2], [3, 4]]) == [13, 17]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("NAME = 'broken'\n", "EXPECTS is missing"),
        ("NAME = 'other'\nEXPECTS = 'x'\ndef matches(m): ...\ndef save(m, r, *, options): ...\n",
         "not the entry point's name"),
        ("import not_a_module_anywhere\n", "cannot be imported"),
    ],
)  # fmt: skip
def test_a_plugin_with_the_wrong_shape_is_named(
    install: Callable[..., None], source: str, problem: str
) -> None:
    install("brokenflavor", {"brokenflavor.py": source}, {"broken": "brokenflavor"})
    with pytest.raises(ArtifactError, match=problem) as info:
        flavors.registered()
    assert "package brokenflavor" in str(info.value)


def test_an_installed_class_is_not_user_code(
    tmp_path: Path, install: Callable[..., None]
) -> None:
    """A class from site-packages with predict and no fit (as a native Booster) would be
    shipped as source by the python flavor: refused, naming the package."""
    install("fancyml", {"fancyml/__init__.py": "class Model:\n    def predict(self, x):\n"
                        "        return x\n"}, {})  # fmt: skip
    import fancyml

    for flavor in (None, "python"):
        with pytest.raises(UnsupportedModel, match="installed package fancyml") as info:
            save_model(fancyml.Model(), tmp_path / "m", flavor=flavor)
        assert "not from your own code" in str(info.value)
        assert "ONNX" in (info.value.hint or "")
    assert not (tmp_path / "m").exists()


def test_messages_say_an_before_a_vowel() -> None:
    import slml
    from slml.errors import UnsupportedModel, a_or_an

    assert (a_or_an("IrisNet"), a_or_an("Booster")) == ("an IrisNet", "a Booster")

    class IrisNet:  # neither an estimator nor a class with predict
        pass

    with pytest.raises(UnsupportedModel, match="cannot be saved with flavor 'sklearn'") as info:
        slml.save_model(IrisNet(), "unused", flavor="sklearn")
    assert info.value.message.startswith("an IrisNet")
