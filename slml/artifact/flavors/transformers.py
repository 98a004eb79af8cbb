"""The transformers flavor: a ``transformers.pipeline`` written with ``save_pretrained``
(weights as safetensors, config, tokenizer) to ``model/pipeline/`` and served by the
same pipeline task (slml/runtime/transformers_flavor.py), with no hub access.

Tasks served: text-classification, token-classification, feature-extraction and
text-generation. Requests are strings (``{"instances": ["text", ...]}``); answers are
the pipeline's own structured outputs, one per string. The sample (a few strings) is
run through the pipeline at save, kept as ``model/sample.json`` (the parity check of
the ONNX export for function targets, slml/bundle/onnx_export.py, runs on it) and
gives the output schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from slml.artifact import requirements as reqs
from slml.artifact.flavors import Saved, SaveOptions
from slml.errors import ArtifactError

NAME = "transformers"
PRIORITY = 15
EXPECTS = "the transformers flavor needs a transformers.pipeline(...) object"
SUPPORTS = ("Hugging Face transformers pipelines (text-classification, token-classification, "
            "feature-extraction, text-generation)")  # fmt: skip
LOADER = "slml.runtime.transformers_flavor:load_transformers"
DIR = "model/pipeline"
SAMPLE_FILE = "model/sample.json"
TASKS = ("text-classification", "token-classification", "feature-extraction", "text-generation")
REQUIREMENTS = ("transformers", "torch", "tokenizers", "safetensors", "numpy")
STRING_INPUTS = {"kind": "tensor", "dtype": "string", "shape": [-1]}
OUTPUTS: dict[str, dict[str, Any]] = {
    "text-classification": {"kind": "records", "fields": [
        {"name": "label", "dtype": "string"}, {"name": "score", "dtype": "float64"}]},
    "token-classification": {"kind": "records_per_row", "fields": [
        {"name": "entity", "dtype": "string"}, {"name": "score", "dtype": "float64"},
        {"name": "index", "dtype": "int64"}, {"name": "word", "dtype": "string"},
        {"name": "start", "dtype": "int64"}, {"name": "end", "dtype": "int64"}]},
    "feature-extraction": {"kind": "tensor", "dtype": "float32", "shape": [-1, 1, -1, -1]},
    "text-generation": {"kind": "records_per_row", "fields": [
        {"name": "generated_text", "dtype": "string"}]},
}  # fmt: skip


def matches(model: Any) -> bool:
    return any(
        cls.__name__ == "Pipeline" and cls.__module__.startswith("transformers.")
        for cls in type(model).__mro__
    )


ARCHITECTURE_TASKS = (("ForSequenceClassification", "text-classification"),
                      ("ForTokenClassification", "token-classification"),
                      ("ForCausalLM", "text-generation"), ("LMHeadModel", "text-generation"),
                      ("Model", "feature-extraction"))  # fmt: skip


def load_dir(path: Path) -> Any:
    """The pipeline saved in a ``save_pretrained`` directory (``config.json`` and a
    tokenizer), its task from the architecture; None for another directory. Loaded
    from local files only. Raises ArtifactError when the task cannot be told."""
    config_file = path / "config.json"
    if not config_file.is_file():
        return None
    try:
        architectures = json.loads(config_file.read_text(encoding="utf-8")).get("architectures")
    except (ValueError, AttributeError):
        return None
    arch = str((architectures or [""])[0])
    task = next((t for suffix, t in ARCHITECTURE_TASKS if arch.endswith(suffix)), None)
    if task is None:
        raise ArtifactError(
            f"{path}: slml cannot tell the pipeline task of architecture {arch or '(none)'}",
            hint="save it from Python: slml.save_model(transformers.pipeline(TASK, model=...))",
        )
    from slml.runtime.transformers_flavor import go_offline

    go_offline()
    quiet()
    import transformers

    try:
        return transformers.pipeline(task, model=str(path), tokenizer=str(path),
                                     device="cpu")  # type: ignore[call-overload]
    except Exception as exc:
        raise ArtifactError(f"{path}: transformers cannot load it as a {task} pipeline "
                            f"({type(exc).__name__}: {exc})") from None  # fmt: skip


def save(model: Any, root: Path, *, options: SaveOptions) -> Saved:
    """``save_pretrained`` into ``model/pipeline``; run the sample once. Raises
    ArtifactError for a task slml does not serve or a sample that is not strings."""
    import transformers

    task = getattr(model, "task", None)
    if task not in TASKS:
        raise ArtifactError(
            f"the transformers flavor serves the tasks {', '.join(TASKS)}, not {task!r}",
            hint="wrap other pipelines in your own class (the python flavor)",
        )
    if getattr(model, "tokenizer", None) is None:
        raise ArtifactError("the pipeline has no tokenizer: slml serves pipelines on text")
    texts = sample_texts(options.sample_input)
    quiet()
    target = root / DIR
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    if texts is not None:
        run_sample(model, texts)
        (root / SAMPLE_FILE).write_text(json.dumps(texts), encoding="utf-8")
    return Saved(
        flavor=NAME,
        framework={"name": "transformers", "version": str(transformers.__version__)},
        requirements=reqs.pin(REQUIREMENTS),
        flavor_options={"dir": DIR, "task": task, "loader": LOADER,
                        "architecture": type(model.model).__name__,
                        **({"sample": SAMPLE_FILE} if texts is not None else {})},
        signature={"inputs": STRING_INPUTS, "outputs": OUTPUTS[task]},
    )


def quiet() -> None:
    """No progress bars, no hub calls from here on (the pipeline is in memory)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging

        logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # an older transformers
        pass


def sample_texts(sample: Any) -> list[str] | None:
    """The sample as a list of strings. Raises ArtifactError for anything else."""
    if sample is None:
        return None
    if isinstance(sample, str):
        return [sample]
    values = sample.tolist() if hasattr(sample, "tolist") else sample
    if not isinstance(values, list | tuple) or not values or not all(
        isinstance(v, str) for v in values
    ):
        raise ArtifactError(
            "a transformers pipeline's sample_input must be a few strings "
            '(["a sentence", ...]), as requests will send them'
        )
    return [str(v) for v in values]


def run_sample(model: Any, texts: list[str]) -> Any:
    try:
        return model(list(texts))
    except Exception as exc:
        raise ArtifactError(
            f"the pipeline failed on sample_input ({type(exc).__name__}: {exc})"
        ) from None
