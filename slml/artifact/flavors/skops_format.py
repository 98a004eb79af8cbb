"""skops serialization for the sklearn flavor (``serialization="skops"``).

skops writes the estimator as a zip of JSON and numpy arrays, not a pickle: loading it
runs no code from the file, and builds only types someone declared trusted. At save,
the types skops does not trust by default (``skops.io.get_untrusted_types``) are
recorded in ``flavor_options.trusted_types``; the manifest, and so the artifact's
digest, covers that list. The runtime (slml/runtime/flavors.py) refuses a file that
needs any type beyond it. Use it for models from people you do not fully trust: review
the list (``slml save`` prints it) before you deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slml.errors import ArtifactError

FILE = "model/model.skops"
REQUIREMENTS = ("skops",)


def dump(model: Any, root: Path) -> dict[str, Any]:
    """Write ``model`` to ``root/model/model.skops``, load it back with exactly the types
    it needs, and return the flavor options that declare them. Raises ArtifactError for
    an object skops cannot store (a lambda, a class defined in ``__main__``)."""
    sio = _skops()
    path = root / FILE
    try:
        sio.dump(model, path)
        trusted = sorted(sio.get_untrusted_types(file=path))
        sio.load(path, trusted=trusted)
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise ArtifactError(
            f"skops cannot store this {type(model).__name__} ({type(exc).__name__}: {exc})",
            hint="skops stores estimators and functions defined at module level of an "
            "installed package; for anything else save with the default joblib serialization",
        ) from None
    return {"file": FILE, "serialization": "skops", "trusted_types": trusted}


def trusted_types_of(path: Path) -> list[str]:
    """The types a ``.skops`` file needs beyond those skops trusts by default."""
    return sorted(_skops().get_untrusted_types(file=path))


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise ArtifactError(
            "serialization='skops' needs the skops package, which is not installed",
            hint="pip install 'slml[skops]'",
        ) from None
    return sio
