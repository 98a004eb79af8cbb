"""The transformers flavor's runtime: the saved pipeline, loaded from the artifact only.

``flavor_options``: ``dir`` (what ``save_pretrained`` wrote), ``task``. The hub is
never contacted: ``HF_HUB_OFFLINE=1`` (and ``TRANSFORMERS_OFFLINE``) are set before
transformers is imported, and the pipeline is built from local files only. Each
request row is a string; the answer per row is the pipeline's own output for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slml.runtime.manifest import ArtifactFormatError
from slml.runtime.validation import Batch

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip
TASKS = ("text-classification", "token-classification", "feature-extraction", "text-generation")


def go_offline(environ: Any = os.environ) -> None:
    """Forbid hub access for this process (before transformers is imported)."""
    for key, value in OFFLINE.items():
        environ[key] = value


def load_transformers(artifact_dir: Path, manifest: dict[str, Any]) -> Callable[[Batch], Any]:
    """The pipeline of ``flavor_options.task`` on CPU. Raises ArtifactFormatError."""
    go_offline()
    options = dict(manifest.get("flavor_options") or {})
    task = options.get("task")
    if task not in TASKS:
        raise ArtifactFormatError(f"{artifact_dir}: flavor_options.task {task!r} is not one of "
                                  f"{', '.join(TASKS)}")  # fmt: skip
    rel = str(options.get("dir", "model/pipeline"))
    path = (artifact_dir / rel).resolve()
    if not path.is_relative_to(Path(artifact_dir).resolve()) or not path.is_dir():
        raise ArtifactFormatError(f"{artifact_dir}: flavor_options.dir {rel!r} is not a "
                                  "directory inside the artifact")  # fmt: skip
    import transformers

    # typed here: transformers leaves it unannotated (and mypy may run without it)
    disable_progress_bar: Callable[[], None] = transformers.utils.logging.disable_progress_bar
    disable_progress_bar()
    pipe = transformers.pipeline(task, model=str(path), tokenizer=str(path), device="cpu")

    def predict(batch: Batch) -> Any:
        return list(pipe([str(text) for text in batch.rows]))

    return predict
