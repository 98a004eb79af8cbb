"""What ``slml build`` checks of the artifact before building: that its save-time serve
check was not skipped, and that slml.yaml's serve-time ``method:`` is one its flavor
serves (slml/runtime/serve_method.py).

``slml save --no-check`` (``save_model(check=False)``) writes ``serve_check: skipped``
in the manifest (which its digest covers). Such an artifact may miss a module, a helper
file or a requirement that would have failed at save; ``slml build``, ``preview`` and
``deploy`` refuse it until it is saved again with the check, or until the user says to
build it anyway: ``slml build --allow-unchecked`` or ``SLML_ALLOW_UNCHECKED=1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slml.errors import ArtifactError, ConfigError
from slml.runtime.manifest import ArtifactFormatError, ArtifactIntegrityError, read_manifest

ENV = "SLML_ALLOW_UNCHECKED"


def allowed() -> bool:
    """Whether the user asked to build unchecked artifacts (``SLML_ALLOW_UNCHECKED=1``)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes")


def _manifest(artifact_dir: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(Path(artifact_dir))
    except (ArtifactFormatError, ArtifactIntegrityError, OSError):
        return None  # the build reports an unreadable artifact


def check_served_method(artifact_dir: Path, method: str | None) -> None:
    """Raise ConfigError naming ``method:`` when the artifact's flavor cannot serve it."""
    from slml.runtime.serve_method import problem

    manifest = _manifest(artifact_dir) if method is not None else None
    found = problem(manifest, method) if manifest is not None and method is not None else None
    if found is not None:
        raise ConfigError(
            f"method: {method}: {found}",
            hint="remove method: from slml.yaml to serve the method saved in the artifact "
            f"({(manifest or {}).get('flavor_options', {}).get('method', 'predict')})",
        )


def refuse_unchecked(artifact_dir: Path) -> None:
    """Raise ArtifactError for an artifact saved with the serve check skipped, unless
    allowed. Artifacts checked at save, or saved before slml recorded it, pass; an
    unreadable manifest is left to the build to report."""
    manifest = _manifest(artifact_dir)
    if manifest is None or manifest.get("serve_check") != "skipped" or allowed():
        return
    raise ArtifactError(
        f"the artifact at {artifact_dir} was saved with the serve check skipped (--no-check / "
        "check=False), so nothing has shown it loads and predicts with only its "
        "requirements: refusing to build it",
        hint="save it again with the check (slml save MODEL --sample ROWS, without "
        "--no-check; or save_model(..., check=True)), or build it anyway with "
        f"`slml build --allow-unchecked` ({ENV}=1 for deploy and preview)",
    )
