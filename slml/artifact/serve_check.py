"""The save-time serve check: load the saved artifact and predict the sample in a fresh
interpreter whose imports are limited to the manifest's requirements.

A model that works in the notebook can still fail where it is served: a helper module
that was importable only because it sat next to the notebook, a requirement dropped
by hand, a package imported by the model's code but never declared. The child runs
isolated (``python -I``: no current directory, no PYTHONPATH on ``sys.path``) with an
import guard that allows only the standard library, slml's runtime, the code shipped
in the artifact, and the modules of the required distributions and their own
dependencies. It fails naming the first module it could not import.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact import schema
from slml.errors import ArtifactError

TIMEOUT = 300
_CHILD = r"""
import importlib.abc, importlib.machinery, importlib.util, json, sys, sysconfig
from pathlib import Path

spec = json.loads(sys.stdin.read())
allowed, root = set(spec["allowed"]), Path(spec["artifact"]).resolve()
stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}


def _inside(found):
    places = [found.origin] if found.origin else []
    places += list(found.submodule_search_locations or [])
    for place in (Path(p).resolve() for p in places if p):
        if place.is_relative_to(root):
            return True
        if "site-packages" not in place.parts and any(place.is_relative_to(d) for d in stdlib):
            return True
    return False


class Guard(importlib.abc.MetaPathFinder):
    # takes PathFinder's place: a module outside the requirements is not found by a
    # probe (importlib.util.find_spec, as frameworks test for optional packages) and
    # fails to import with a message naming it
    find_distributions = staticmethod(importlib.machinery.PathFinder.find_distributions)
    invalidate_caches = staticmethod(importlib.machinery.PathFinder.invalidate_caches)

    def find_spec(self, name, path=None, target=None):
        found = importlib.machinery.PathFinder.find_spec(name, path, target)
        if "." in name or name in allowed or name in sys.stdlib_module_names:
            return found
        if found is None or _inside(found):
            return found
        if sys._getframe(2).f_code.co_filename.endswith("importlib.util>"):
            return None
        raise ModuleNotFoundError(
            f"No module named {name!r} among the artifact's requirements", name=name
        )


sys.meta_path[:] = [Guard() if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
import importlib.metadata, re
_version, dists = importlib.metadata.version, set(spec["dists"])


def _installed(name):  # metadata probes (torch's for optree) see only the required ones
    if re.sub(r"[-_.]+", "-", name).lower() not in dists:
        raise importlib.metadata.PackageNotFoundError(name)
    return _version(name)


importlib.metadata.version = _installed
from slml.runtime.loader import load

model = load(spec["artifact"])
if spec["rows"] is not None:
    model.predict(spec["rows"])
print("serve check ok")
"""


def run(artifact_dir: Path, manifest: dict[str, Any], sample: Any) -> None:
    """Load ``artifact_dir`` and predict ``sample`` (if any) in a clean child process.
    Raises ArtifactError naming the module or the error that stopped it."""
    required = manifest.get("requirements") or []
    job = {
        "artifact": str(artifact_dir),
        "allowed": sorted(allowed_modules(manifest.get("requirements") or [])),
        "dists": [*sorted(dependency_closure(map(reqs.requirement_name, required))), "slml"],
        "rows": None if sample is None else schema.as_rows(sample),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD], input=json.dumps(job, default=_plain),
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ArtifactError(
            f"the serve check (load and predict in a clean process) took over {TIMEOUT} s"
        ) from None
    if done.returncode != 0:
        raise _failure(done.stderr)


def _failure(stderr: str) -> ArtifactError:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "it exited without a message"
    missing = re.search(r"No module named '([^']+)'", last)
    if missing:
        name = missing.group(1)
        return ArtifactError(
            f"the saved model cannot be served: loading it in a clean process needs module "
            f"{name!r}, which is neither shipped with the model nor provided by its "
            "requirements",
            hint=f"if {name} is your own code, pass code_paths=[...] with it (python "
            f"flavor); if it is a package, add it to the requirements (-r {name})",
        )
    return ArtifactError(
        f"the saved model cannot be served: in a clean process it failed with {last}",
        hint="the model must load and predict with only what the artifact ships and its "
        "requirements",
    )


def allowed_modules(requirements: Iterable[str]) -> set[str]:
    """Top-level modules of the required distributions, their dependencies, and slml."""
    by_dist: dict[str, set[str]] = {}
    for top, dists in reqs._module_map().items():
        for dist in dists:
            by_dist.setdefault(reqs.normalise(dist), set()).add(top)
    allowed = {"slml"}
    for dist in dependency_closure(reqs.requirement_name(r) for r in requirements):
        allowed |= by_dist.get(dist, set())
    return allowed


def dependency_closure(names: Iterable[str]) -> set[str]:
    """The installed distributions ``names`` need (normalised), dependencies included;
    a canonical name stands for its installed CPU-only variant."""
    variants = {canonical: variant for variant, canonical in reqs.CANONICAL.items()}
    todo, seen = [reqs.normalise(n) for n in names], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name in variants:
                todo.append(variants[name])
            continue
        for line in dist.requires or []:
            if "extra ==" not in line and "extra==" not in line:
                todo.append(reqs.requirement_name(re.split(r"[;\s(]", line, maxsplit=1)[0]))
    return seen


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
