"""The python flavor: an instance of your own class with ``predict(inputs)`` and,
optionally, ``load(data_dir)``.

The instance is NOT pickled. Its class's source (the module file, or the modules of its
top-level package when the module is inside one) is copied to ``model/code/`` with any
``code_paths``; files named in ``artifacts`` are copied to ``model/data/``. What is
copied, and what never is (dotfiles, VCS directories, caches, venvs, symlinks), is in
slml/artifact/codecopy.py; the manifest's ``files`` lists what was shipped. Modules
whose names the standard library or an installed package already uses are refused. The runtime
imports the module, calls ``cls()`` with no arguments, then ``load(<artifact>/model/data)``
if the class has it, so every piece of state must come from files in ``data_dir``.
Requirements are the installed distributions the shipped code imports.
"""

from __future__ import annotations

import inspect
import platform
import sys
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact import schema
from slml.artifact.codecopy import copy_source, shadowing
from slml.artifact.flavors import Saved, SaveOptions
from slml.errors import ArtifactError

NAME = "python"
EXPECTS = "the python flavor needs an instance of a class with a predict(inputs) method"
CODE_DIR = "model/code"
DATA_DIR = "model/data"


def matches(model: Any) -> bool:
    """Detected: an instance with ``predict`` that is not an estimator (no ``fit``)."""
    return accepts(model) and not callable(getattr(model, "fit", None))


def accepts(model: Any) -> bool:
    """With ``flavor="python"`` named: any instance with ``predict``."""
    return not isinstance(model, type) and callable(getattr(model, "predict", None))


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """Copy the class's code, code_paths and artifacts; check a fresh instance loads
    from the copied data and predicts on the sample. Raises ArtifactError."""
    cls = type(model)
    _check_constructible(cls)
    code_dir, data_dir = root / CODE_DIR, root / DATA_DIR
    code_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    class_source = _class_source(cls)
    sources = {_module_name(class_source): class_source}
    _copy_into(code_dir, class_source, what="class source", packages_only=class_source.is_dir())
    for path in options.code_paths:
        _copy_into(code_dir, path, what="code_paths entry")
        sources.setdefault(_module_name(Path(path)), Path(path))
    for name, path in options.artifacts.items():
        _copy_into(data_dir, Path(path), what=f"artifacts[{name!r}]", as_name=_data_name(name))
    _check_no_shadowing(code_dir, sources)
    dists = reqs.imported_distributions(code_dir)
    if schema.is_dataframe(options.sample_input):
        dists.append("pandas")
    return Saved(
        flavor=NAME,
        framework={"name": "python", "version": platform.python_version()},
        requirements=reqs.pin(dists),
        flavor_options={
            "module": cls.__module__,
            "class": cls.__qualname__,
            "code_dir": CODE_DIR,
            "data_dir": DATA_DIR,
        },
        signature=_signature(cls, data_dir, options.sample_input),
    )


def _class_source(cls: type) -> Path:
    """The file (plain module) or package directory that defines ``cls``."""
    name = cls.__module__
    if name == "__main__" or "<locals>" in cls.__qualname__:
        where = "a script run as __main__" if name == "__main__" else "a function body"
        raise ArtifactError(
            f"class {cls.__qualname__} is defined in {where}; the runtime cannot import it",
            hint="define the class at the top level of its own module file (e.g. my_model.py) "
            "and import it from there",
        )
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not file:
        raise ArtifactError(f"module {name} of class {cls.__qualname__} has no source file")
    source = Path(file)
    if source.name == "__init__.py":
        source = source.parent
    for _ in range(name.count(".")):  # a module inside a package: ship the top package
        source = source.parent
    return source


def _copy_into(
    dest_dir: Path, source: Path, *, what: str, as_name: str | None = None,
    packages_only: bool = False,
) -> None:  # fmt: skip
    source = Path(source)
    dest = dest_dir / (as_name or source.name)
    if dest.exists():
        raise ArtifactError(
            f"{what} {source} would overwrite {dest.relative_to(dest_dir.parent)} already "
            "shipped; names in model/code and model/data must be unique"
        )
    copy_source(source, dest, what=what, packages_only=packages_only)


def _module_name(path: Path) -> str:
    return path.stem if path.suffix == ".py" else path.name


def _check_no_shadowing(code_dir: Path, sources: dict[str, Path]) -> None:
    """Refuse shipped top-level modules that the standard library or an installed
    package also provides: at serving time one of the two would silently lose (the
    runtime keeps its own packages first, so your module would not be imported)."""
    clashes = shadowing(code_dir, sources)
    if clashes:
        raise ArtifactError(
            "the model's code ships modules whose names Python already knows: "
            + ", ".join(clashes),
            hint="rename those modules (or list the package in requirements instead of "
            "shipping a copy of it)",
        )


def _data_name(name: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name[0] == ".":
        raise ArtifactError(
            f"artifacts key {name!r} must be a plain file name (no slashes, not hidden); "
            "it becomes the name under model/data/"
        )
    return name


def _check_constructible(cls: type) -> None:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if required:
        raise ArtifactError(
            f"{cls.__qualname__}() needs arguments ({', '.join(required)}), but the runtime "
            "creates the model with no arguments",
            hint="give those parameters defaults and read state in load(data_dir) instead",
        )


def _signature(cls: type, data_dir: Path, sample: Any) -> dict[str, Any] | None:
    if sample is None:
        return None
    inputs = schema.infer_inputs(sample)
    try:
        fresh = cls()
        if callable(getattr(fresh, "load", None)):
            fresh.load(data_dir)
        output = fresh.predict(schema.as_rows(sample))
    except Exception as exc:
        raise ArtifactError(
            f"a fresh {cls.__qualname__}() loaded from the artifact's data failed on "
            f"sample_input ({type(exc).__name__}: {exc})",
            hint="state must come from load(data_dir): pass the files it needs as "
            "artifacts={'name': path}",
        ) from None
    return {"inputs": inputs, "outputs": schema.infer_outputs(output)}
