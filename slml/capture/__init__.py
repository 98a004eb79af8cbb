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
