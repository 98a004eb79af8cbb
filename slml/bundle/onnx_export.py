"""Automatic ONNX export of heavy models for function targets (Lambda zips).

The torch CPU wheel alone unpacks to about 750 MB, CatBoost's to 268 MB: a model whose
requirements include either can never fit Lambda's 250 MB unzipped limit. At build
time such a model is exported to ONNX where a converter exists, checked for parity on
the sample saved in the artifact, and the exported artifact (onnxruntime, numpy,
tokenizers: no torch, no transformers, no catboost) is what the function serves. Where
no converter exists the build says why, and the caller takes the container-image path
(``aws.large_bundle: image``).

Converters:

- torch programs (TorchScript ``.pt``, ``torch.export`` ``.pt2``) and Keras 3 models on
  the torch backend: ``torch.onnx.export`` on the saved sample, dynamic batch, outputs
  within ``ATOL`` (slml/bundle/onnx_torch.py);

- CatBoost classifiers and regressors without categorical features: CatBoost's own
  ONNX writer, labels equal and values within a relative 1e-5 on the saved sample
  (slml/bundle/onnx_catboost.py);

- transformers ``text-classification`` pipelines: the model's logits exported with
  ``torch.onnx.export`` (inputs ``input_ids``/``attention_mask``/``token_type_ids``,
  batch and sequence dynamic), the fast tokenizer's ``tokenizer.json`` run by the
  ``tokenizers`` library in the runtime, and the ``label_score`` post-processing
  (softmax, then the top label from ``config.id2label``), so the function answers what
  the pipeline answers. Parity: the same labels on every sample row, logits within
  ``ATOL`` (max abs diff reported).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slml.bundle import onnx_catboost, onnx_torch
from slml.bundle.lock import requirement_name
from slml.bundle.onnx_torch import ATOL, readable_ir
from slml.errors import ArtifactError

HEAVY = ("torch", "catboost")  # distributions that alone exceed a 250 MB function package
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Export:
    """The outcome: ``artifact`` is the exported artifact (None when not exported),
    ``notes`` say what happened and why, ``parity`` the figures of the check."""

    artifact: Path | None
    notes: tuple[str, ...]
    parity: dict[str, Any] = field(default_factory=dict)


def needs_export(manifest: dict[str, Any]) -> str | None:
    """The heavy distribution that rules a zip out, or None."""
    names = {requirement_name(r) for r in manifest.get("requirements") or []}
    return next((h for h in HEAVY if h in names), None)


def export_for_function(artifact_dir: Path, manifest: dict[str, Any], out_dir: Path) -> Export:
    """Export ``artifact_dir`` to ONNX under ``out_dir/onnx-export`` if it needs it and
    a converter exists. Never raises for a model that cannot be exported: the notes say
    why (the caller decides between an image and PackageTooLarge)."""
    heavy = needs_export(manifest)
    if heavy is None:
        return Export(None, ())
    why = f"{heavy} alone unpacks to far more than Lambda's 250 MB limit"
    reason = _no_converter(manifest)
    if reason is not None:
        return Export(None, (f"no ONNX export: {reason} ({why})",))
    target = Path(out_dir) / "onnx-export"
    if target.exists():
        shutil.rmtree(target)
    try:
        if manifest.get("flavor") == "transformers":
            exported, parity = export_text_classifier(artifact_dir, manifest, target)
        elif manifest.get("flavor") == "catboost":
            exported, parity = onnx_catboost.export_model(artifact_dir, manifest, target)
            _record(exported, manifest, parity)
        else:
            exported, parity = onnx_torch.export_program(artifact_dir, manifest, target)
            _record(exported, manifest, parity)
    except ArtifactError as exc:
        return Export(None, (f"no ONNX export: {exc.message} ({why})",))
    return Export(exported, (_note(manifest, heavy, why, parity),), parity)


def _note(manifest: dict[str, Any], heavy: str, why: str, parity: dict[str, Any]) -> str:
    if manifest.get("flavor") == "transformers":
        return (
            f"exported to ONNX ({why}): served with onnxruntime and tokenizers, no torch; "
            f"parity on {parity['rows']} sample rows: labels equal, logits max abs diff "
            f"{parity['max_abs_diff']:.3g} (allowed {ATOL})"
        )
    return (
        f"exported to ONNX with {parity['exporter']} ({why}): served with onnxruntime, "
        f"no {heavy}; parity on {parity['rows']} sample rows and on one row: max "
        f"{'relative' if heavy == 'catboost' else 'abs'} diff {parity['max_abs_diff']:.3g} "
        f"(allowed {parity.get('atol', ATOL)})"
    )


def _no_converter(manifest: dict[str, Any]) -> str | None:
    options = manifest.get("flavor_options") or {}
    flavor = manifest.get("flavor")
    if flavor in ("torch", "keras"):
        return onnx_torch.no_converter(manifest)
    if flavor == "catboost":
        return onnx_catboost.no_converter(manifest)
    if flavor != "transformers":
        return f"slml has no ONNX converter for the {flavor} flavor"
    if options.get("task") != "text-classification":
        return (f"the {options.get('task')} task has no ONNX converter in slml (only "
                "text-classification)")  # fmt: skip
    if not options.get("sample"):
        return "the artifact has no saved sample to check parity on (save it with sample_input)"
    return None


def export_text_classifier(
    artifact_dir: Path, manifest: dict[str, Any], target: Path
) -> tuple[Path, dict[str, Any]]:
    """Export, save as an onnx-flavor artifact at ``target / "artifact"``, check parity.
    Raises ArtifactError naming what failed."""
    from slml.artifact.flavors.transformers import load_dir

    options = manifest["flavor_options"]
    pipe = load_dir(artifact_dir / options["dir"])
    texts = json.loads((artifact_dir / options["sample"]).read_text(encoding="utf-8"))
    tokenizer, model = pipe.tokenizer, pipe.model
    if not getattr(tokenizer, "is_fast", False):
        raise ArtifactError("the pipeline's tokenizer is not a fast (tokenizers) tokenizer")
    problem = getattr(model.config, "problem_type", None)
    if problem == "multi_label_classification" or model.config.num_labels < 2:
        raise ArtifactError("only single-label classifiers (softmax) are exported")
    target.mkdir(parents=True)
    graph = target / "model.onnx"
    names = _export_logits(model, tokenizer, texts, graph)
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    wrapped = _onnx_model(graph, tokenizer, labels, target / "tokenizer.json")
    from slml.artifact import save_model

    info = save_model(wrapped, target / "artifact", sample_input=texts,
                      name=manifest["name"], version=manifest["version"])  # fmt: skip
    parity = check_parity(pipe, texts, info.path, graph, names)
    _record(info.path, manifest, parity)
    return info.path, parity


def _onnx_model(graph: Path, tokenizer: Any, labels: list[str], tokenizer_file: Path) -> Any:
    from slml.artifact.flavors.onnx import OnnxModel

    max_length = int(min(getattr(tokenizer, "model_max_length", 512) or 512, 512))
    return OnnxModel(graph, postprocess="label_score", labels=labels, tokenizer=tokenizer_file,
                     max_length=max_length, pad_token=str(tokenizer.pad_token or "[PAD]"),
                     pad_id=int(tokenizer.pad_token_id or 0))  # fmt: skip


def _export_logits(model: Any, tokenizer: Any, texts: list[str], path: Path) -> list[str]:
    """``torch.onnx.export`` of the model's logits; returns the input names."""
    import torch

    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    names = [n for n in TOKEN_INPUTS if n in encoded]

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors, strict=True))).logits

    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    try:
        with torch.inference_mode():
            torch.onnx.export(Logits().eval(), tuple(encoded[n] for n in names), str(path),
                              input_names=names, output_names=["logits"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)  # fmt: skip
    except Exception as exc:
        raise ArtifactError(f"torch.onnx.export failed ({type(exc).__name__}: {exc})") from None
    readable_ir(path)
    return names


def check_parity(
    pipe: Any, texts: list[str], exported: Path, graph: Path, names: list[str]
) -> dict[str, Any]:
    """The pipeline and the exported artifact on the sample: labels must agree and the
    logits be within ATOL. Raises ArtifactError saying how they differ."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from slml.artifact import load_model

    encoded = pipe.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = pipe.model(**{n: encoded[n] for n in names}).logits.numpy()
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {n: encoded[n].numpy() for n in names})[0]
    diff = float(np.max(np.abs(got.astype("float64") - expected.astype("float64"))))
    want = list(pipe(texts))
    served = load_model(exported).predict({"instances": texts})
    labels_equal = [w["label"] for w in want] == [s["label"] for s in served]
    score_diff = max(abs(float(w["score"]) - float(s["score"])) for w, s in zip(want, served,
                                                                              strict=True))
    if not labels_equal or diff > ATOL:
        raise ArtifactError(
            f"the ONNX export differs from the pipeline on the sample (labels equal: "
            f"{labels_equal}, logits max abs diff {diff:.3g}, allowed {ATOL})"
        )
    return {"rows": len(texts), "check": "labels equal, logits allclose", "atol": ATOL,
            "max_abs_diff": diff, "score_max_abs_diff": score_diff}  # fmt: skip


def _record(artifact: Path, source: dict[str, Any], parity: dict[str, Any]) -> None:
    """Write ``exported_from`` (the source flavor, framework, digest, parity) into the
    exported artifact's manifest."""
    from slml.runtime.manifest import artifact_digest

    def add(manifest: dict[str, Any]) -> None:
        manifest["exported_from"] = {
            "flavor": source["flavor"], "framework": source.get("framework"),
            "sha256": artifact_digest(source), "parity": parity,
        }  # fmt: skip

    edit_manifest(artifact, add)


def edit_manifest(artifact: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to an exported artifact's manifest in place (the manifest is not
    among its hashed files)."""
    from slml.runtime.manifest import MANIFEST_FILE

    path = artifact / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
