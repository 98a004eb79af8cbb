"""Captured traffic, client side: the runtime setting a deploy passes on
(``capture_env``) and ``pull`` (slml/capture/pull.py) to download the records.

The runtime half (sampling, the queue, the sinks) is slml/runtime/capture.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slml.runtime.capture import ENV_VAR


def sink_url(config: Any, *, default: Path | None) -> str | None:
    """Where this project's capture goes: ``capture.sink``, else ``default`` (a local
    directory), else None. None also when there is no ``capture:`` section."""
    cap = getattr(config, "capture", None)
    if cap is None:
        return None
    if cap.sink:
        return str(cap.sink)
    return str(default) if default is not None else None


def capture_env(config: Any, *, default: Path | None) -> dict[str, str]:
    """``{"SLML_CAPTURE": json}`` for the runtime, or {} when capture is off. A cloud
    target without ``capture.sink`` (``default=None``) captures nothing."""
    url = sink_url(config, default=default)
    if url is None:
        return {}
    cap = config.capture
    value = {"sample": cap.sample, "inputs_only": cap.inputs_only, "sink": url,
             "max_file_mb": cap.max_file_mb}  # fmt: skip
    return {ENV_VAR: json.dumps(value, separators=(",", ":"))}


#: What the runtime's sink for each scheme imports (slml/runtime/capture_sinks.py);
#: S3 uses boto3, which every AWS target already has.
SINK_PACKAGES = {"gs": "google-cloud-storage>=2.14", "az": "azure-storage-blob>=12.19"}


def sink_scheme(config: Any) -> str | None:
    """``gs``, ``az``, ``s3`` or ``file`` for the configured ``capture.sink``; None
    without one."""
    cap = getattr(config, "capture", None)
    if cap is None or not cap.sink:
        return None
    scheme, sep, _ = str(cap.sink).partition("://")
    return scheme if sep else "file"


def requirements_with_sink(config: Any) -> Any:
    """slml.yaml's ``requirements:`` plus the package the capture sink needs in the
    bundle (google-cloud-storage for gs://, azure-storage-blob for az://), only then;
    a name the user already adds or pins stays as they wrote it."""
    changes = config.requirements
    package = SINK_PACKAGES.get(sink_scheme(config) or "")
    if package is None:
        return changes
    from slml.artifact.requirements import requirement_name

    name = requirement_name(package)
    if any(requirement_name(r) == name for r in [*changes.add, *changes.replace.values()]):
        return changes
    return changes.model_copy(update={"add": [*changes.add, package]})
